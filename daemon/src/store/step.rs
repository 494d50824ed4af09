//! The one way a live session changes: [`Store::step`] locks the session's entry,
//! runs one transition of its state machine (a synchronous method of [`Entry`] that
//! checks its own preconditions, ownership included, and does no I/O), queues the
//! writes it returns, publishes its events, counts its cancels, and hands back the
//! commit to await once the lock is released. When that commit fails, the
//! transition's `undo` puts the entry back as if the call never happened.

use super::{Entry, Store, StoreError};
use crate::persist::{Commit, Op};
use sessiond_protocol::{CancelCause, Event, SessionId};

/// Reverts a transition whose writes failed (runs under the entry's lock).
pub type Undo = Box<dyn FnOnce(&mut Entry) -> Vec<Event> + Send>;

/// What a transition asks for, besides the change it made to the entry.
#[must_use]
pub struct Step<T> {
    pub value: T,
    /// Writes, committed in one transaction in the order of the entry's lock.
    pub ops: Vec<Op>,
    /// Whether the caller waits for the commit (else it is queued detached).
    pub durable: bool,
    /// Events published, in order, under the entry's lock.
    pub events: Vec<Event>,
    /// Tokens the transition fired, by cause (counted in `admin/stats`).
    pub cancels: Vec<CancelCause>,
    pub undo: Option<Undo>,
}

impl<T> Step<T> {
    /// A step that changed nothing.
    pub fn none(value: T) -> Step<T> {
        Step {
            value,
            ops: Vec::new(),
            durable: true,
            events: Vec::new(),
            cancels: Vec::new(),
            undo: None,
        }
    }

    /// The same step with its value mapped.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Step<U> {
        Step {
            value: f(self.value),
            ops: self.ops,
            durable: self.durable,
            events: self.events,
            cancels: self.cancels,
            undo: self.undo,
        }
    }

    pub fn op(mut self, op: Op) -> Self {
        self.ops.push(op);
        self
    }

    pub fn event(mut self, e: Event) -> Self {
        self.events.push(e);
        self
    }

    pub fn detached(mut self) -> Self {
        self.durable = false;
        self
    }

    pub fn undo(mut self, f: impl FnOnce(&mut Entry) -> Vec<Event> + Send + 'static) -> Self {
        self.undo = Some(Box::new(f));
        self
    }

    /// This step followed by `next` (run on the same entry under the same lock):
    /// their writes, events and cancels in order; durable if either is; undone
    /// `next` first, then this one.
    pub fn then<U>(self, next: Step<U>) -> Step<U> {
        let mut ops = self.ops;
        ops.extend(next.ops);
        let mut events = self.events;
        events.extend(next.events);
        let mut cancels = self.cancels;
        cancels.extend(next.cancels);
        let undo: Option<Undo> = match (self.undo, next.undo) {
            (None, None) => None,
            (Some(u), None) | (None, Some(u)) => Some(u),
            (Some(first), Some(second)) => Some(Box::new(move |e: &mut Entry| {
                let mut evs = second(e);
                evs.extend(first(e));
                evs
            })),
        };
        Step {
            value: next.value,
            ops,
            durable: self.durable || next.durable,
            events,
            cancels,
            undo,
        }
    }
}

/// A queued step's commit, with what to do if it fails.
#[must_use = "await the commit where durability is promised"]
pub struct Pending {
    commit: Commit,
    undo: Option<(SessionId, u64, Undo)>,
}

impl Store {
    /// Runs `transition` on the live entry `id` under its lock (see the module doc).
    /// The returned [`Pending`] must be awaited with [`Store::settle`].
    pub(crate) fn step<T>(
        &self,
        id: &SessionId,
        transition: impl FnOnce(&mut Entry) -> Result<Step<T>, StoreError>,
    ) -> Result<(T, Pending), StoreError> {
        let mut e = self
            .sessions
            .get_mut(id)
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        let mut step = transition(&mut e)?;
        // The step's writes are queued before its events, whose history writes
        // follow them in commit order.
        let commit = match (step.ops.is_empty(), step.durable) {
            (true, _) => Commit::done(),
            (false, true) => self.db.submit(std::mem::take(&mut step.ops)),
            (false, false) => {
                self.db.write_detached(std::mem::take(&mut step.ops));
                Commit::done()
            }
        };
        self.publish_locked(&mut e, &mut step);
        let undo = step.undo.map(|u| (id.clone(), e.incarnation, u));
        Ok((step.value, Pending { commit, undo }))
    }

    /// As [`Store::step`] for one of many sessions changed together (the graceful
    /// stop): the transition's writes are appended to `batch`, which the caller
    /// commits in one transaction for all of them, instead of being queued on their
    /// own; they are not undone if that commit fails. Only for transitions whose
    /// writes no later step of the same session must follow in commit order.
    pub(crate) fn step_into<T>(
        &self,
        id: &SessionId,
        transition: impl FnOnce(&mut Entry) -> Result<Step<T>, StoreError>,
        batch: &mut Vec<Op>,
    ) -> Result<T, StoreError> {
        let mut e = self
            .sessions
            .get_mut(id)
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        let mut step = transition(&mut e)?;
        batch.append(&mut step.ops);
        self.publish_locked(&mut e, &mut step);
        Ok(step.value)
    }

    /// The part of a step done under the entry's lock whatever becomes of its
    /// writes: its cancels are counted and its events published, in order.
    fn publish_locked<T>(&self, e: &mut Entry, step: &mut Step<T>) {
        for cause in &step.cancels {
            self.stats.count_cancel(*cause);
        }
        if !step.events.is_empty() {
            let envs: Vec<_> = std::mem::take(&mut step.events)
                .into_iter()
                .filter_map(|ev| e.hub.publish(ev))
                .collect();
            e.published(&envs);
        }
    }

    /// Waits for a step's commit; on failure undoes the step (if the same residency
    /// is still live) and returns the error.
    pub(crate) async fn settle(&self, p: Pending) -> Result<(), StoreError> {
        let Err(err) = p.commit.await else {
            return Ok(());
        };
        if let Some((id, incarnation, undo)) = p.undo {
            if let Some(mut e) = self.sessions.get_mut(&id) {
                if e.incarnation == incarnation {
                    for ev in undo(&mut e) {
                        e.hub.publish(ev);
                    }
                }
            }
        }
        Err(err.into())
    }

    /// [`Store::step`] then [`Store::settle`].
    pub(crate) async fn apply<T>(
        &self,
        id: &SessionId,
        transition: impl FnOnce(&mut Entry) -> Result<Step<T>, StoreError>,
    ) -> Result<T, StoreError> {
        let (value, pending) = self.step(id, transition)?;
        self.settle(pending).await?;
        Ok(value)
    }
}
