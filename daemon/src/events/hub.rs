//! One session's event hub. Publishing is synchronous and never waits on a
//! subscriber: each subscriber has a bounded queue, and one that is full is cut off
//! and catches up from the replay window (or gets `resync`) when it reads again.

use super::partial::PartialTurn;
use super::published::Published;
use super::window::{Kept, ReplayWindow};
use sessiond_protocol::{CloseReason, Event, EventEnvelope, SessionId};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;

/// Called with every published envelope (outside the hub's lock), e.g. to persist it.
pub type EventSink = Box<dyn Fn(&Published) + Send + Sync>;

/// The hub was closed: the session was unloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubClosed;

struct Sub {
    id: u64,
    tx: mpsc::Sender<Arc<Published>>,
    lagged: Arc<AtomicBool>,
}

struct Inner {
    next_seq: u64,
    window: ReplayWindow,
    subs: Vec<Sub>,
    next_sub_id: u64,
    closed: bool,
    /// The running turn's content so far, consistent with `next_seq`.
    partial: Option<PartialTurn>,
}

/// Sequence numbers, replay window and subscribers of one session.
pub struct EventHub {
    session_id: SessionId,
    sub_cap: usize,
    inner: Mutex<Inner>,
    sink: Option<EventSink>,
}

/// A live subscription: first `replay`, then whatever arrives on `rx`.
pub struct Subscription {
    pub replay: Vec<Arc<Published>>,
    pub rx: mpsc::Receiver<Arc<Published>>,
    /// Set when the hub cut this subscriber off for falling behind.
    pub lagged: Arc<AtomicBool>,
    pub id: u64,
    /// The seq of the last event published when the subscription began: the replay
    /// ends there (`replay_complete {head_seq}`).
    pub head_seq: u64,
}

impl EventHub {
    /// A hub whose next event gets `last_seq + 1`, primed with `history` (oldest first).
    pub fn new(
        session_id: SessionId,
        last_seq: u64,
        history: Vec<EventEnvelope>,
        window_cap: usize,
        sub_cap: usize,
        sink: Option<EventSink>,
    ) -> EventHub {
        let mut window = ReplayWindow::new(window_cap);
        let history: Vec<EventEnvelope> =
            history.into_iter().filter(|e| e.seq <= last_seq).collect();
        let skip = history.len().saturating_sub(window_cap);
        for e in history.into_iter().skip(skip) {
            let seq = e.seq;
            let p = Published::new(e);
            if let Some(json) = p.json() {
                window.push(seq, json);
            }
        }
        EventHub {
            session_id,
            sub_cap: sub_cap.max(1),
            inner: Mutex::new(Inner {
                next_seq: last_seq + 1,
                window,
                subs: Vec::new(),
                next_sub_id: 1,
                closed: false,
                partial: None,
            }),
            sink,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave it inconsistent (each step is
        // a single push/pop), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session this hub belongs to.
    pub fn session_id(&self) -> &SessionId {
        &self.session_id
    }

    /// The seq of the last published event (0: none).
    pub fn last_seq(&self) -> u64 {
        self.lock().next_seq - 1
    }

    /// The seq of the last published event together with the running turn's content
    /// up to exactly that event (read under one lock).
    pub fn snapshot(&self) -> (u64, Option<PartialTurn>) {
        let inner = self.lock();
        (inner.next_seq - 1, inner.partial.clone())
    }

    /// Number of current subscribers.
    pub fn subscriber_count(&self) -> usize {
        self.lock().subs.len()
    }

    /// Publishes an event; returns its envelope, or `None` when the hub is closed.
    pub fn publish(&self, event: Event) -> Option<Arc<Published>> {
        let env = {
            let mut inner = self.lock();
            if inner.closed {
                return None;
            }
            let env = Arc::new(Published::new(EventEnvelope {
                session_id: self.session_id.clone(),
                seq: inner.next_seq,
                at: crate::util::now_rfc3339(),
                event,
            }));
            inner.next_seq += 1;
            PartialTurn::apply(&mut inner.partial, &env.event);
            // The window keeps the JSON only (serialised here once, for the writer
            // and the subscribers too).
            if let Some(json) = env.json() {
                inner.window.push(env.seq, json);
            }
            inner.subs.retain(|s| match s.tx.try_send(env.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    s.lagged.store(true, Ordering::Release);
                    crate::metrics::subscriber_cut_off();
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
            env
        };
        crate::metrics::event_published(&env.event);
        if let Some(sink) = &self.sink {
            sink(&env);
        }
        Some(env)
    }

    /// Subscribes. With `since_seq`, every retained event after it is replayed first
    /// (preceded by `resync` when events after it are no longer retained); live events
    /// follow with no gap and no duplicate.
    pub fn subscribe(&self, since_seq: Option<u64>) -> Result<Subscription, HubClosed> {
        let mut inner = self.lock();
        if inner.closed {
            return Err(HubClosed);
        }
        let replay = match since_seq {
            None => Replay::default(),
            Some(since) => replay_after(&self.session_id, &inner, since),
        };
        let (tx, rx) = mpsc::channel(self.sub_cap);
        let lagged = Arc::new(AtomicBool::new(false));
        let id = inner.next_sub_id;
        let head_seq = inner.next_seq - 1;
        inner.next_sub_id += 1;
        inner.subs.push(Sub {
            id,
            tx,
            lagged: lagged.clone(),
        });
        drop(inner);
        Ok(Subscription {
            replay: replay.parse(),
            rx,
            lagged,
            id,
            head_seq,
        })
    }

    /// The retained events after `since`, also once the hub is closed: how a
    /// subscriber that was cut off for lagging catches up to `session_closed`.
    pub fn replay_since(&self, since: u64) -> Vec<Arc<Published>> {
        let replay = replay_after(&self.session_id, &self.lock(), since);
        replay.parse()
    }

    /// Removes a subscriber (unsubscribe).
    pub fn unsubscribe(&self, id: u64) {
        self.lock().subs.retain(|s| s.id != id);
    }

    /// Ends every subscription without an event: the daemon is stopping, and the
    /// session is not closed (a client resumes it after the restart).
    pub fn close_quietly(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        inner.subs.clear();
    }

    /// Publishes `session_closed` as the last event and ends every subscription.
    pub fn close(&self, reason: CloseReason) {
        self.publish(Event::SessionClosed { reason });
        let mut inner = self.lock();
        inner.closed = true;
        inner.subs.clear();
    }
}

/// What a subscriber is replayed, taken under the hub's lock and parsed after it.
#[derive(Default)]
struct Replay {
    resync: Option<Arc<Published>>,
    kept: Kept,
}

impl Replay {
    fn parse(self) -> Vec<Arc<Published>> {
        self.resync.into_iter().chain(self.kept.parse()).collect()
    }
}

fn replay_after(session_id: &SessionId, inner: &Inner, since: u64) -> Replay {
    let last = inner.next_seq - 1;
    if since >= last {
        return Replay::default();
    }
    let first_retained = inner.window.first_seq().unwrap_or(inner.next_seq);
    let mut resync = None;
    if since + 1 < first_retained {
        crate::metrics::resync();
        resync = Some(Arc::new(Published::new(EventEnvelope {
            session_id: session_id.clone(),
            seq: first_retained - 1,
            at: crate::util::now_rfc3339(),
            event: Event::Resync {
                from_seq: first_retained,
            },
        })));
    }
    Replay {
        resync,
        kept: inner.window.after(since),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_protocol::TurnId;

    fn chunk(n: usize) -> Event {
        Event::AgentMessageChunk {
            turn_id: TurnId("t".into()),
            text: n.to_string(),
        }
    }

    fn hub(window: usize, buf: usize) -> EventHub {
        EventHub::new(SessionId("s".into()), 0, Vec::new(), window, buf, None)
    }

    #[test]
    fn seq_increases_by_one() {
        let h = hub(16, 16);
        let a = h.publish(chunk(0)).unwrap();
        let b = h.publish(chunk(1)).unwrap();
        assert_eq!((a.seq, b.seq), (1, 2));
        assert_eq!(h.last_seq(), 2);
    }

    #[test]
    fn replay_then_live_without_gap_or_duplicate() {
        let h = hub(16, 16);
        for i in 0..5 {
            h.publish(chunk(i));
        }
        let mut sub = h.subscribe(Some(2)).unwrap();
        h.publish(chunk(5));
        let replayed: Vec<u64> = sub.replay.iter().map(|e| e.seq).collect();
        assert_eq!(replayed, vec![3, 4, 5]);
        assert_eq!(sub.rx.try_recv().unwrap().seq, 6);
        assert!(sub.rx.try_recv().is_err());
    }

    #[test]
    fn replay_past_window_starts_with_resync() {
        let h = hub(4, 16);
        for i in 0..10 {
            h.publish(chunk(i));
        }
        let sub = h.subscribe(Some(0)).unwrap();
        match &sub.replay[0].event {
            Event::Resync { from_seq } => assert_eq!(*from_seq, 7),
            other => panic!("expected resync, got {other:?}"),
        }
        let seqs: Vec<u64> = sub.replay[1..].iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![7, 8, 9, 10]);
    }

    #[test]
    fn full_subscriber_is_cut_off_without_blocking() {
        let h = hub(64, 2);
        let slow = h.subscribe(None).unwrap();
        let mut fast = h.subscribe(None).unwrap();
        for i in 0..3 {
            h.publish(chunk(i));
            assert_eq!(fast.rx.try_recv().unwrap().seq, i as u64 + 1);
        }
        assert!(slow.lagged.load(Ordering::Acquire));
        assert_eq!(h.subscriber_count(), 1);
    }

    #[test]
    fn snapshot_reflects_exactly_the_events_up_to_its_seq() {
        let h = hub(2, 16);
        let t = TurnId("t".into());
        h.publish(Event::TurnStarted {
            turn_id: t.clone(),
            generation: 1,
        });
        for i in 0..5 {
            h.publish(Event::AgentMessageChunk {
                turn_id: t.clone(),
                text: i.to_string(),
            });
        }
        // The window holds 2 events; the running turn is still whole.
        let (seq, partial) = h.snapshot();
        assert_eq!(seq, 6);
        assert_eq!(partial.unwrap().content, "01234");
        let sub = h.subscribe(Some(seq)).unwrap();
        assert!(sub.replay.is_empty());
        assert_eq!(sub.head_seq, 6);
    }

    #[test]
    fn close_sends_session_closed_last() {
        let h = hub(8, 8);
        let mut sub = h.subscribe(None).unwrap();
        h.close(CloseReason::Evicted);
        let last = sub.rx.try_recv().unwrap();
        assert!(matches!(
            last.event,
            Event::SessionClosed {
                reason: CloseReason::Evicted
            }
        ));
        assert!(h.publish(chunk(0)).is_none());
        assert!(h.subscribe(None).is_err());
    }

    #[test]
    fn a_lagging_subscriber_can_catch_up_after_close() {
        let h = hub(64, 2);
        let slow = h.subscribe(None).unwrap();
        for i in 0..5 {
            h.publish(chunk(i));
        }
        assert!(slow.lagged.load(Ordering::Acquire));
        h.close(CloseReason::Killed);
        let rest = h.replay_since(2);
        let seqs: Vec<u64> = rest.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![3, 4, 5, 6]);
        assert!(matches!(
            rest.last().unwrap().event,
            Event::SessionClosed {
                reason: CloseReason::Killed
            }
        ));
    }
}
