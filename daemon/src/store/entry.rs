//! A live session's entry: its record plus residency-related running state, all in
//! one place so "is it idle?" and "unload it" are one atomic step under the map's lock.
//! Its transitions (the session's state machine) are in `session_fsm.rs` and
//! `turn_fsm.rs`; the store runs them through `Store::step`.

use super::event_writer::EventWriter;
use super::listed::LiveState;
use super::{Caller, StoreError};
use crate::agent::RequestResponse;
use crate::events::EventHub;
use crate::record::SessionRecord;
use crate::turn::cancel::TokenRegistry;
use sessiond_protocol::{PendingRequest, SessionInfo, TurnId, TurnInfo, TurnState, TurnVerdict};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

/// A prompt waiting for its turn.
pub struct QueuedTurn {
    pub turn_id: TurnId,
    /// The prompt as given (stored in the transcript).
    pub text: String,
    /// Attachment ref ids (validated at enqueue).
    pub attachments: Vec<String>,
    /// `session/prompt` calls with `wait: true`.
    pub waiters: Vec<oneshot::Sender<TurnVerdict>>,
}

/// A question of the running turn that awaits the owner's answer.
pub struct Pending {
    pub request: PendingRequest,
    /// The `request` event as first published, delivered again to returning subscribers.
    pub envelope: Option<Arc<crate::events::Published>>,
}

/// The turn that is running.
pub struct RunningTurn {
    pub turn_id: TurnId,
    pub generation: u64,
    pub started_at: String,
    pub waiters: Vec<oneshot::Sender<TurnVerdict>>,
    pub pending: Vec<Pending>,
    pub responses: mpsc::UnboundedSender<RequestResponse>,
}

/// The `busy` flag of an entry, changed only under the entry's lock. Waiting for it
/// to clear needs a watch channel, which costs a few hundred bytes; it is created on
/// the first `subscribe` (only a teardown waits), not for every idle session.
#[derive(Debug, Default)]
pub struct Busy {
    value: bool,
    watch: Option<watch::Sender<bool>>,
}

impl Busy {
    /// The current value (named like `watch::Sender::borrow`, which this replaces).
    #[allow(clippy::should_implement_trait)]
    pub fn borrow(&self) -> &bool {
        &self.value
    }

    /// Sets the value, waking whoever waits on it; returns the previous value.
    pub fn send_replace(&mut self, value: bool) -> bool {
        if let Some(w) = &self.watch {
            w.send_replace(value);
        }
        std::mem::replace(&mut self.value, value)
    }

    /// A receiver that sees every later change.
    pub fn subscribe(&mut self) -> watch::Receiver<bool> {
        let value = self.value;
        self.watch
            .get_or_insert_with(|| watch::Sender::new(value))
            .subscribe()
    }
}

/// One live session.
pub struct Entry {
    pub rec: SessionRecord,
    /// Distinguishes this residency from an earlier or later load of the same session.
    pub incarnation: u64,
    pub hub: Arc<EventHub>,
    /// Writes the hub's events to the history (bounded backlog, coalesced chunks).
    pub writer: Arc<EventWriter>,
    pub tokens: TokenRegistry,
    pub turn: Option<RunningTurn>,
    pub queue: VecDeque<QueuedTurn>,
    /// Prompts admitted whose turn record is being committed: they count against
    /// `max_queued_turns` and keep the session from being idle.
    pub admitting: usize,
    /// True while the session's turn runner task exists (from spawn until after it
    /// published the last `turn_complete`).
    pub busy: Busy,
    /// Set when close, kill, delete or shutdown is taking this entry away: no new turn starts.
    pub retiring: bool,
    /// The `SessionInfo` text last listed, with what it was made from ([`super::listed`]).
    pub listed: std::sync::Mutex<Option<Box<super::listed::Listed>>>,
}

impl Entry {
    pub fn new(
        rec: SessionRecord,
        incarnation: u64,
        hub: Arc<EventHub>,
        writer: Arc<EventWriter>,
    ) -> Entry {
        Entry {
            rec,
            incarnation,
            hub,
            writer,
            tokens: TokenRegistry::default(),
            turn: None,
            queue: VecDeque::new(),
            admitting: 0,
            busy: Busy::default(),
            retiring: false,
            listed: std::sync::Mutex::new(None),
        }
    }

    /// No running or queued turn, no pending request, no runner finishing up.
    pub fn is_idle(&self) -> bool {
        self.turn.is_none() && self.queue.is_empty() && self.admitting == 0 && !*self.busy.borrow()
    }

    /// Ownership precondition of every change a client asks for.
    pub fn check_owner(&self, caller: &Caller) -> Result<(), StoreError> {
        if caller.may_mutate(self.rec.owner.as_ref()) {
            Ok(())
        } else {
            Err(StoreError::NotOwned(self.rec.id.clone()))
        }
    }

    /// Called by `Store::step` with the envelopes of the events a transition just
    /// published: a `request` keeps its envelope for returning subscribers.
    pub fn published(&mut self, envs: &[Arc<crate::events::Published>]) {
        let Some(turn) = self.turn.as_mut() else {
            return;
        };
        for env in envs {
            if let sessiond_protocol::Event::Request { request_id, .. } = &env.event {
                if let Some(p) = turn
                    .pending
                    .iter_mut()
                    .find(|p| &p.request.request_id == request_id)
                {
                    p.envelope = Some(env.clone());
                }
            }
        }
    }

    pub fn pending_count(&self) -> u32 {
        self.turn.as_ref().map_or(0, |t| t.pending.len() as u32)
    }

    /// The record as clients see it.
    pub fn info(&self) -> SessionInfo {
        Entry::info_from(&self.rec, self.live_state())
    }

    /// What `SessionInfo` shows besides the record.
    pub(crate) fn live_state(&self) -> LiveState {
        let turn = self.turn.as_ref().map(|t| TurnInfo {
            turn_id: t.turn_id.clone(),
            generation: t.generation,
            started_at: t.started_at.clone(),
            state: if t.pending.is_empty() {
                TurnState::Running
            } else {
                TurnState::AwaitingResponse
            },
        });
        LiveState {
            turn,
            queued_turns: self.queue.len() as u32,
            pending_requests: self.pending_count(),
            watchers: self.hub.subscriber_count() as u32,
        }
    }

    /// A live session's `SessionInfo`: a function of its record and running state only
    /// (the listing's kept texts rely on it).
    pub(crate) fn info_from(rec: &SessionRecord, s: LiveState) -> SessionInfo {
        let mut info = info_from_record(rec, true, s.turn, s.queued_turns, s.pending_requests);
        info.watchers = s.watchers;
        info
    }
}

/// Builds `SessionInfo` from a record and its derived state.
pub fn info_from_record(
    rec: &SessionRecord,
    live: bool,
    turn: Option<TurnInfo>,
    queued_turns: u32,
    pending_requests: u32,
) -> SessionInfo {
    SessionInfo {
        session_id: rec.id.clone(),
        agent: rec.agent.clone(),
        mode: rec.mode,
        title: rec.title.clone(),
        cwd: rec.cwd.clone(),
        owner_tui_id: rec.owner.clone(),
        status: rec.status,
        live,
        turn,
        queued_turns,
        pending_requests,
        overrides: rec.overrides.clone(),
        created_at: rec.created_at.clone(),
        updated_at: rec.updated_at.clone(),
        last_active_at: rec.last_active_at.clone(),
        message_count: rec.message_count,
        round_count: rec.round_count,
        usage: rec.usage,
        ttl_secs: rec.ttl_secs,
        watchers: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::Busy;

    #[test]
    fn busy_allocates_no_watch_until_someone_waits() {
        let mut b = Busy::default();
        assert!(!b.send_replace(true));
        assert!(b.send_replace(false));
        assert!(
            b.watch.is_none(),
            "an idle entry must not hold a watch channel"
        );
    }

    #[test]
    fn busy_waiter_sees_the_later_clear() {
        let mut b = Busy::default();
        b.send_replace(true);
        let mut rx = b.subscribe();
        assert!(*rx.borrow_and_update());
        b.send_replace(false);
        assert!(rx.has_changed().unwrap());
        assert!(!*rx.borrow_and_update());
        assert!(!*b.borrow());
    }
}
