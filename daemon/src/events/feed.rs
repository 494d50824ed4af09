//! The daemon-wide session feed behind `daemon/subscribe`: which sessions changed
//! since each subscriber last read. Marking is synchronous and never waits; each
//! subscriber holds at most one mark per session (coalesced by id), so a lagging one
//! gets the latest state of each changed session and its queue never outgrows the
//! number of sessions.

use sessiond_protocol::{CloseReason, Event, EventEnvelope, SessionId};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// What happened to a session, as far as the feed cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Read the session's current record and send it.
    Changed,
    Deleted,
}

/// One subscriber's pending marks, oldest first.
#[derive(Default)]
pub struct FeedQueue {
    marks: Mutex<Marks>,
    notify: Notify,
}

#[derive(Default)]
struct Marks {
    order: VecDeque<SessionId>,
    kind: HashMap<SessionId, Change>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each step under these locks is a single push or pop: a poisoned lock is usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FeedQueue {
    fn mark(&self, id: &SessionId, change: Change) {
        let mut m = lock(&self.marks);
        match m.kind.get_mut(id) {
            Some(k) => {
                if change == Change::Deleted {
                    *k = Change::Deleted;
                }
            }
            None => {
                m.kind.insert(id.clone(), change);
                m.order.push_back(id.clone());
            }
        }
        drop(m);
        self.notify.notify_one();
    }

    /// The oldest pending mark, if any.
    pub fn pop(&self) -> Option<(SessionId, Change)> {
        let mut m = lock(&self.marks);
        let id = m.order.pop_front()?;
        let change = m.kind.remove(&id).unwrap_or(Change::Changed);
        Some((id, change))
    }

    /// How many sessions are marked.
    pub fn len(&self) -> usize {
        lock(&self.marks).order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until something was marked since the last wait.
    pub async fn wait(&self) {
        self.notify.notified().await
    }
}

/// Every feed subscriber of the daemon.
#[derive(Default)]
pub struct Feed {
    subs: Mutex<Vec<Arc<FeedQueue>>>,
}

impl Feed {
    /// A new subscriber's queue.
    pub fn register(&self) -> Arc<FeedQueue> {
        let q = Arc::new(FeedQueue::default());
        lock(&self.subs).push(q.clone());
        q
    }

    pub fn unregister(&self, q: &Arc<FeedQueue>) {
        lock(&self.subs).retain(|s| !Arc::ptr_eq(s, q));
    }

    /// Marks a session for every subscriber.
    pub fn touch(&self, id: &SessionId, change: Change) {
        let subs = lock(&self.subs);
        for q in subs.iter() {
            q.mark(id, change);
        }
    }

    /// Marks the session of an event that may change what `SessionInfo` says (turn
    /// state, owner, overrides, title, residency); stream content is not such an event.
    pub fn on_event(&self, env: &EventEnvelope) {
        let change = match &env.event {
            Event::AgentMessageChunk { .. }
            | Event::AgentThoughtChunk { .. }
            | Event::ToolCall { .. }
            | Event::ToolResult { .. }
            | Event::ReplayComplete { .. }
            | Event::Resync { .. } => return,
            Event::SessionClosed {
                reason: CloseReason::Deleted,
            } => Change::Deleted,
            _ => Change::Changed,
        };
        if lock(&self.subs).is_empty() {
            return;
        }
        self.touch(&env.session_id, change);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> SessionId {
        SessionId(s.into())
    }

    #[test]
    fn marks_coalesce_by_session_and_deleted_wins() {
        let feed = Feed::default();
        let q = feed.register();
        for _ in 0..1000 {
            feed.touch(&id("a"), Change::Changed);
            feed.touch(&id("b"), Change::Changed);
        }
        feed.touch(&id("a"), Change::Deleted);
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop(), Some((id("a"), Change::Deleted)));
        assert_eq!(q.pop(), Some((id("b"), Change::Changed)));
        assert_eq!(q.pop(), None);
        feed.unregister(&q);
        feed.touch(&id("c"), Change::Changed);
        assert!(q.is_empty());
    }
}
