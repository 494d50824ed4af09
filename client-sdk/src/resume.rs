//! [`ResumingEventStream`]: a session's events across reconnects, with no gap and no
//! duplicate, and the bookkeeping behind it ([`Resume`]).

use crate::error::{Error, Result};
use crate::events::{EventStream, StreamEnd};
use crate::reconnect::ReconnectingClient;
use futures::Stream;
use sessiond_protocol::{Event, EventEnvelope, RequestId, SessionId, TurnId};
use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// Events of one session, in `seq` order, across dropped connections and daemon
/// restarts.
///
/// Implements `Stream<Item = Result<EventEnvelope, Error>>`. When the connection drops
/// (or the client's buffer overflows), the stream waits for the
/// [`ReconnectingClient`] to reconnect, subscribes again with `since_seq` = the last
/// `seq` it yielded, and drops what it already yielded; the consumer sees one
/// continuous stream. `resync` events pass through as they are (the daemon no longer
/// held the missed events: reload the transcript with `session/messages`). A pending
/// `request` that the daemon delivers again after a reconnect is yielded only if this
/// stream has not yielded it yet.
///
/// The stream ends after `session_closed`; with an error item and then the end if
/// subscribing again fails for a reason other than the connection (e.g. the session
/// was deleted meanwhile) or the client gives up reconnecting. Note that a graceful
/// daemon stop closes every session with `session_closed {reason: "closed"}`, so such a
/// stream ends there; after a crash (no `session_closed`) it continues.
///
/// Dropping the stream unsubscribes (best effort).
pub struct ResumingEventStream {
    session_id: SessionId,
    progress: Arc<Mutex<Progress>>,
    boundary: Arc<AtomicBool>,
    inner: Pin<Box<dyn Stream<Item = Result<EventEnvelope>> + Send>>,
}

/// What the consumer can ask the stream about.
#[derive(Debug, Clone, Default)]
struct Progress {
    last_seq: Option<u64>,
    resumes: u64,
    end: Option<StreamEnd>,
}

impl std::fmt::Debug for ResumingEventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumingEventStream")
            .field("session_id", &self.session_id)
            .field("progress", &*self.lock())
            .finish_non_exhaustive()
    }
}

impl ResumingEventStream {
    pub(crate) fn new(
        rc: ReconnectingClient,
        first: EventStream,
        generation: u64,
        since_seq: Option<u64>,
    ) -> ResumingEventStream {
        let session_id = first.session_id().clone();
        let progress = Arc::new(Mutex::new(Progress {
            last_seq: since_seq,
            ..Progress::default()
        }));
        let boundary = Arc::new(AtomicBool::new(false));
        let follower = Follower {
            boundary: boundary.clone(),
            rc,
            session_id: session_id.clone(),
            current: Some((first, generation)),
            resume: Resume::new(since_seq),
            progress: progress.clone(),
            done: false,
        };
        let inner = futures::stream::unfold(follower, step);
        ResumingEventStream {
            session_id,
            progress,
            boundary,
            inner: Box::pin(inner),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session this stream follows.
    pub fn session_id(&self) -> &SessionId {
        &self.session_id
    }

    /// Also yields the `replay_complete` marker after the replay of every subscription
    /// the stream makes (the first and each one after a reconnect): what follows it is
    /// live. Without this the markers are consumed silently.
    pub fn with_replay_boundary(self) -> ResumingEventStream {
        self.boundary.store(true, Ordering::Release);
        self
    }

    /// The highest `seq` yielded (or the `since_seq` the stream was opened with).
    pub fn last_seq(&self) -> Option<u64> {
        self.lock().last_seq
    }

    /// How many times the stream has subscribed again (after drops or overflows).
    pub fn resumes(&self) -> u64 {
        self.lock().resumes
    }

    /// Why the stream ended, once it has.
    pub fn end_reason(&self) -> Option<StreamEnd> {
        self.lock().end
    }

    /// The next event; `None` when the stream has ended.
    pub async fn next_event(&mut self) -> Option<Result<EventEnvelope>> {
        futures::StreamExt::next(self).await
    }
}

impl Stream for ResumingEventStream {
    type Item = Result<EventEnvelope>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// The state the stream's steps carry.
struct Follower {
    /// Shared with the stream: whether subscriptions yield `replay_complete`.
    boundary: Arc<AtomicBool>,
    rc: ReconnectingClient,
    session_id: SessionId,
    /// The current subscription and the generation of the connection it is on.
    current: Option<(EventStream, u64)>,
    resume: Resume,
    progress: Arc<Mutex<Progress>>,
    done: bool,
}

impl Follower {
    fn set(&self, f: impl FnOnce(&mut Progress)) {
        f(&mut self.progress.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn finish(&mut self, end: StreamEnd) {
        self.done = true;
        self.current = None;
        self.set(|p| p.end = Some(end));
    }

    /// Subscribes again on a connection of generation `min` or later.
    async fn resubscribe(&mut self, mut min: u64) -> Result<()> {
        loop {
            let (client, generation) = self.rc.connected_from(min).await?;
            let since = self.resume.resubscribing();
            match client.subscribe(&self.session_id, since).await {
                Ok(s) => {
                    self.current = Some((s, generation));
                    self.set(|p| p.resumes += 1);
                    return Ok(());
                }
                Err(e) if e.is_disconnect() => min = generation + 1,
                Err(e) => return Err(e),
            }
        }
    }
}

/// One step of the stream: the next item to yield, or the end.
async fn step(mut f: Follower) -> Option<(Result<EventEnvelope>, Follower)> {
    loop {
        if f.done {
            return None;
        }
        // `current` is `None` only once the stream has finished.
        let (stream, generation) = f.current.as_mut()?;
        let generation = *generation;
        stream.set_replay_boundary(f.boundary.load(Ordering::Acquire));
        match stream.next_event().await {
            Some(Ok(env)) => {
                if !f.resume.admit(&env) {
                    continue;
                }
                let seq = f.resume.high;
                f.set(|p| p.last_seq = seq);
                if let Event::SessionClosed { reason } = env.event {
                    f.finish(StreamEnd::SessionClosed(reason));
                }
                return Some((Ok(env), f));
            }
            // The client's buffer overflowed: subscribe again on the same connection.
            Some(Err(Error::Lagged)) => {
                f.current = None;
                if let Err(e) = f.resubscribe(generation).await {
                    return give_up(f, e);
                }
            }
            Some(Err(e)) => return Some((Err(e), f)),
            // The connection is gone: subscribe again once a newer one is up.
            None => {
                f.current = None;
                if let Err(e) = f.resubscribe(generation + 1).await {
                    return give_up(f, e);
                }
            }
        }
    }
}

fn give_up(mut f: Follower, e: Error) -> Option<(Result<EventEnvelope>, Follower)> {
    f.finish(StreamEnd::Closed);
    Some((Err(e), f))
}

/// Which events to pass on, so that subscribing again yields no duplicate.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Resume {
    /// The highest seq yielded (or the first `since_seq`).
    pub(crate) high: Option<u64>,
    /// The `since_seq` of the current subscription. Events at or below it were
    /// yielded already, except pending requests this stream has not yielded.
    floor: Option<u64>,
    /// Requests yielded and not yet resolved, by seq.
    open_requests: BTreeMap<u64, (TurnId, RequestId)>,
}

impl Resume {
    pub(crate) fn new(since_seq: Option<u64>) -> Resume {
        Resume {
            high: since_seq,
            floor: since_seq,
            open_requests: BTreeMap::new(),
        }
    }

    /// A new subscription starts: returns its `since_seq`.
    pub(crate) fn resubscribing(&mut self) -> Option<u64> {
        self.floor = self.high;
        self.high
    }

    /// Whether to yield `env`; records it if so.
    pub(crate) fn admit(&mut self, env: &EventEnvelope) -> bool {
        let seen_before = self.floor.is_some_and(|f| env.seq <= f);
        match &env.event {
            // Each subscription's replay boundary is passed on (after a resubscribe
            // too: what follows is live again); it is not a session event.
            Event::ReplayComplete { .. } => return true,
            // A pending request is delivered again with its original seq: pass it on
            // only if this stream never yielded it.
            Event::Request {
                turn_id,
                request_id,
                ..
            } => {
                if self.open_requests.contains_key(&env.seq) {
                    return false;
                }
                self.open_requests
                    .insert(env.seq, (turn_id.clone(), request_id.clone()));
            }
            _ if seen_before => return false,
            Event::RequestResolved { request_id, .. } => {
                self.open_requests.retain(|_, (_, r)| r != request_id);
            }
            Event::TurnComplete { verdict } => {
                self.open_requests.retain(|_, (t, _)| *t != verdict.turn_id);
            }
            _ => {}
        }
        self.high = Some(self.high.map_or(env.seq, |h| h.max(env.seq)));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_protocol::types::{RequestKind, StopReason, TurnVerdict};
    use sessiond_protocol::Usage;

    fn env(seq: u64, event: Event) -> EventEnvelope {
        EventEnvelope {
            session_id: SessionId::from("s"),
            seq,
            at: "2026-11-21T00:00:00Z".into(),
            event,
        }
    }

    fn chunk(seq: u64) -> EventEnvelope {
        env(
            seq,
            Event::AgentMessageChunk {
                turn_id: TurnId::from("t"),
                text: "x".into(),
            },
        )
    }

    fn request(seq: u64, id: &str) -> EventEnvelope {
        env(
            seq,
            Event::Request {
                turn_id: TurnId::from("t"),
                request_id: RequestId::from(id),
                kind: RequestKind::Question,
                prompt: "?".into(),
                options: serde_json::Value::Null,
            },
        )
    }

    fn resolved(seq: u64, id: &str) -> EventEnvelope {
        env(
            seq,
            Event::RequestResolved {
                request_id: RequestId::from(id),
                response: serde_json::json!("yes"),
                by_tui_id: None,
            },
        )
    }

    fn admitted(r: &mut Resume, evs: &[EventEnvelope]) -> Vec<u64> {
        evs.iter().filter(|e| r.admit(e)).map(|e| e.seq).collect()
    }

    #[test]
    fn a_replay_after_a_resubscribe_repeats_nothing() {
        let mut r = Resume::new(None);
        assert_eq!(admitted(&mut r, &[chunk(1), chunk(2), chunk(3)]), [1, 2, 3]);
        assert_eq!(r.resubscribing(), Some(3));
        // The daemon replays after 3; anything at or below it is dropped.
        assert_eq!(admitted(&mut r, &[chunk(3), chunk(4), chunk(5)]), [4, 5]);
        assert_eq!(r.high, Some(5));
    }

    #[test]
    fn the_first_since_seq_is_the_floor() {
        let mut r = Resume::new(Some(10));
        assert_eq!(r.high, Some(10));
        assert_eq!(admitted(&mut r, &[chunk(11)]), [11]);
        assert_eq!(r.resubscribing(), Some(11));
    }

    #[test]
    fn a_request_delivered_again_is_yielded_once() {
        let mut r = Resume::new(None);
        assert_eq!(admitted(&mut r, &[chunk(1), request(2, "r1")]), [1, 2]);
        assert_eq!(r.resubscribing(), Some(2));
        // Pending requests are delivered again with their original seq.
        assert_eq!(admitted(&mut r, &[request(2, "r1"), chunk(3)]), [3]);
        assert_eq!(r.resubscribing(), Some(3));
        assert_eq!(admitted(&mut r, &[request(2, "r1")]), Vec::<u64>::new());
    }

    #[test]
    fn an_unseen_pending_request_below_the_floor_is_yielded() {
        // Opened with since_seq 10 while r1 (seq 4) is pending.
        let mut r = Resume::new(Some(10));
        assert_eq!(admitted(&mut r, &[request(4, "r1"), chunk(11)]), [4, 11]);
        assert_eq!(r.high, Some(11));
    }

    #[test]
    fn requests_are_forgotten_once_resolved_or_their_turn_completes() {
        let mut r = Resume::new(None);
        admitted(
            &mut r,
            &[request(1, "r1"), request(2, "r2"), resolved(3, "r1")],
        );
        assert_eq!(r.open_requests.len(), 1);
        let done = env(
            4,
            Event::TurnComplete {
                verdict: TurnVerdict {
                    turn_id: TurnId::from("t"),
                    stop_reason: StopReason::EndTurn,
                    cancel_cause: None,
                    error: None,
                    usage: Usage::default(),
                    content: String::new(),
                },
            },
        );
        assert!(r.admit(&done));
        assert!(r.open_requests.is_empty());
    }

    #[test]
    fn every_replay_boundary_passes_and_moves_nothing() {
        let mut r = Resume::new(Some(5));
        let boundary = env(5, Event::ReplayComplete { head_seq: 5 });
        assert!(r.admit(&boundary));
        assert_eq!(r.high, Some(5));
        assert_eq!(admitted(&mut r, &[chunk(6)]), [6]);
        r.resubscribing();
        assert!(r.admit(&env(6, Event::ReplayComplete { head_seq: 6 })));
        assert_eq!(r.high, Some(6));
    }

    #[test]
    fn resync_passes_and_moves_the_mark() {
        let mut r = Resume::new(Some(2));
        r.resubscribing();
        let resync = env(99, Event::Resync { from_seq: 100 });
        assert_eq!(admitted(&mut r, &[resync, chunk(100)]), [99, 100]);
        assert_eq!(r.high, Some(100));
    }
}
