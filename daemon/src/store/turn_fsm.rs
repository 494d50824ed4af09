//! The turn transitions of a session's state machine: admit and enqueue a prompt,
//! start the next turn, make a request pending, answer it, cancel, finish. Each is
//! synchronous, checks its own preconditions (ownership included) and returns the
//! writes and events it needs; `Store::step` applies them.
//!
//! A turn: admitted (its record is being committed) -> queued -> running
//! (-> awaiting_response while requests are pending) -> complete. A queued turn
//! dropped by a teardown goes straight to complete (cancelled).

use super::entry::{Pending, QueuedTurn, RunningTurn};
use super::step::Step;
use super::{Caller, Entry, StoreError};
use crate::agent::RequestResponse;
use crate::persist::Op;
use crate::record::{MessageRecord, TurnRecord};
use crate::turn::cancel::CancelSlot;
use crate::turn::runner::cancelled_response;
use crate::util::now_rfc3339;
use sessiond_protocol::{
    CancelCause, Event, Overrides, PendingRequest, RequestId, Role, SessionStatus, StopReason,
    TurnId, TurnVerdict,
};
use tokio::sync::{mpsc, oneshot};

/// What the runner needs of a turn that became the running one.
pub struct Start {
    pub turn_id: TurnId,
    pub slot: CancelSlot,
    pub responses: mpsc::UnboundedReceiver<RequestResponse>,
    /// The alias of the agent that runs it (the `model_provider` override, if any).
    pub agent_alias: String,
    pub text: String,
    pub attachments: Vec<String>,
    /// The transcript index of its prompt (earlier messages are its history).
    pub user_index: u64,
    pub overrides: Overrides,
    pub cwd: Option<String>,
}

/// A queued turn's ending, from a teardown: its verdict and who waits for it.
pub type Dropped = (TurnVerdict, Vec<oneshot::Sender<TurnVerdict>>);

impl Entry {
    fn running(&self) -> bool {
        self.turn.is_some() || *self.busy.borrow()
    }

    /// `session/prompt`, first step: ownership, status and the queue cap (which
    /// holds for interrupting prompts too); records the turn. Nothing is queued yet,
    /// so a failed commit leaves the session as it was.
    pub fn admit(
        &mut self,
        caller: &Caller,
        turn: TurnRecord,
        max_queued: usize,
    ) -> Result<Step<()>, StoreError> {
        if self.retiring {
            // Being taken away: the caller loads the session again (or learns why not).
            return Err(StoreError::NotFound(self.rec.id.clone()));
        }
        self.check_owner(caller)?;
        if self.rec.status.is_terminal() {
            return Err(StoreError::Terminated(self.rec.id.clone(), self.rec.status));
        }
        let waiting = self.queue.len() + self.admitting;
        if self.running() && waiting >= max_queued {
            return Err(StoreError::Busy(self.rec.id.clone(), waiting));
        }
        self.admitting += 1;
        Ok(Step::none(()).op(Op::StartTurn(turn)).undo(|e| {
            e.admitting = e.admitting.saturating_sub(1);
            Vec::new()
        }))
    }

    /// `session/prompt`, second step once the turn record is durable: queue it
    /// (first, cancelling the running turn, when it interrupts). Returns how many
    /// turns are ahead and whether a runner must be spawned; `None` when the session
    /// started being taken away meanwhile (the caller discards the record and retries).
    pub fn enqueue(
        &mut self,
        incarnation: u64,
        queued: QueuedTurn,
        interrupt: bool,
    ) -> Step<Option<(u32, bool)>> {
        if self.incarnation != incarnation {
            return Step::none(None);
        }
        self.admitting = self.admitting.saturating_sub(1);
        if self.retiring {
            return Step::none(None);
        }
        let running = self.running();
        let mut cancels = Vec::new();
        let queued_behind = if interrupt {
            if let Some(slot) = self.tokens.current() {
                if slot.fire(CancelCause::Superseded) {
                    cancels.push(CancelCause::Superseded);
                }
            }
            self.queue.push_front(queued);
            u32::from(running)
        } else {
            self.queue.push_back(queued);
            u32::from(running) + self.queue.len() as u32 - 1
        };
        let now = now_rfc3339();
        self.rec.last_active_at = now.clone();
        self.rec.updated_at = now;
        let spawn = !self.busy.send_replace(true);
        let mut step = Step::none(Some((queued_behind, spawn)))
            .op(Op::UpdateSession(self.rec.clone()))
            .detached();
        step.cancels = cancels;
        step
    }

    /// The runner takes the next queued turn; with nothing to run (or the session
    /// being taken away) `busy` clears and the value is `None`.
    pub fn start_next(&mut self, incarnation: u64, generation: u64) -> Step<Option<Start>> {
        if self.incarnation != incarnation {
            return Step::none(None);
        }
        if self.retiring || self.queue.is_empty() {
            self.busy.send_replace(false);
            return Step::none(None);
        }
        let Some(mut queued) = self.queue.pop_front() else {
            return Step::none(None);
        };
        let slot = CancelSlot::new(generation);
        let mut cancels = Vec::new();
        if let Some((_, true)) = self.tokens.register(slot.clone()) {
            cancels.push(CancelCause::Superseded);
        }
        let now = now_rfc3339();
        let (tx, rx) = mpsc::unbounded_channel();
        self.turn = Some(RunningTurn {
            turn_id: queued.turn_id.clone(),
            generation,
            started_at: now.clone(),
            waiters: std::mem::take(&mut queued.waiters),
            pending: Vec::new(),
            responses: tx,
        });
        let user_index = self.rec.message_count;
        self.rec.message_count += 1;
        if self.rec.status == SessionStatus::Created {
            self.rec.status = SessionStatus::Active;
        }
        if self.rec.title.is_none() {
            let t = super::cut_title(&queued.text);
            if !t.is_empty() {
                self.rec.title = Some(t);
            }
        }
        self.rec.updated_at = now.clone();
        self.rec.last_active_at = now.clone();
        let agent_alias = self
            .rec
            .overrides
            .model_provider
            .clone()
            .unwrap_or_else(|| self.rec.agent.clone());
        let mut step = Step::none(Some(Start {
            turn_id: queued.turn_id.clone(),
            slot,
            responses: rx,
            agent_alias,
            text: queued.text.clone(),
            attachments: queued.attachments.clone(),
            user_index,
            overrides: self.rec.overrides.clone(),
            cwd: self.rec.cwd.clone(),
        }))
        .op(Op::InsertMessage(MessageRecord {
            session_id: self.rec.id.clone(),
            index: user_index,
            role: Role::User,
            content: queued.text.clone(),
            turn_id: Some(queued.turn_id.0.clone()),
            created_at: now,
        }))
        .op(Op::SetTurnGeneration {
            turn_id: queued.turn_id.clone(),
            generation,
        })
        .op(Op::UpdateSession(self.rec.clone()))
        .detached()
        .event(Event::UserMessage {
            turn_id: queued.turn_id.clone(),
            text: queued.text,
            attachments: queued.attachments,
        })
        .event(Event::TurnStarted {
            turn_id: queued.turn_id,
            generation,
        });
        step.cancels = cancels;
        step
    }

    /// The running turn asks the owner a question: it becomes pending (and the
    /// turn `awaiting_response`) in the same step as its `request` event.
    pub fn add_request(&mut self, incarnation: u64, request: PendingRequest) -> Step<()> {
        if self.incarnation != incarnation {
            return Step::none(());
        }
        let Some(turn) = self.turn.as_mut() else {
            return Step::none(());
        };
        if turn.turn_id != request.turn_id {
            return Step::none(());
        }
        let event = Event::Request {
            turn_id: request.turn_id.clone(),
            request_id: request.request_id.clone(),
            kind: request.kind,
            prompt: request.prompt.clone(),
            options: request.options.clone(),
        };
        turn.pending.push(Pending {
            request,
            envelope: None,
        });
        Step::none(()).event(event)
    }

    /// `session/respond`: answers one pending request; returns how many remain.
    pub fn respond(
        &mut self,
        caller: &Caller,
        request_id: Option<RequestId>,
        response: serde_json::Value,
    ) -> Result<Step<u32>, StoreError> {
        self.check_owner(caller)?;
        let id = self.rec.id.clone();
        let Some(turn) = self.turn.as_mut() else {
            return Err(StoreError::NoPendingRequest(id));
        };
        let idx = match &request_id {
            Some(rid) => turn
                .pending
                .iter()
                .position(|p| &p.request.request_id == rid)
                .ok_or(StoreError::NoPendingRequest(id))?,
            None => match turn.pending.len() {
                0 => return Err(StoreError::NoPendingRequest(id)),
                1 => 0,
                n => {
                    return Err(StoreError::InvalidParams(format!(
                        "{n} requests are pending: name one with request_id"
                    )))
                }
            },
        };
        let pending = turn.pending.remove(idx);
        let rid = pending.request.request_id;
        let _ = turn.responses.send(RequestResponse {
            request_id: rid.clone(),
            response: response.clone(),
        });
        Ok(
            Step::none(turn.pending.len() as u32).event(Event::RequestResolved {
                request_id: rid,
                response,
                by_tui_id: caller.tui.clone(),
            }),
        )
    }

    /// `session/cancel`: fires the running turn's token with cause `client_rpc`.
    pub fn cancel(&mut self, caller: &Caller) -> Result<Step<(bool, Option<TurnId>)>, StoreError> {
        self.check_owner(caller)?;
        let (Some(slot), Some(turn)) = (self.tokens.current(), self.turn.as_ref()) else {
            return Ok(Step::none((false, None)));
        };
        let fired = slot.fire(CancelCause::ClientRpc);
        let mut step = Step::none((fired, Some(turn.turn_id.clone())));
        if fired {
            step.cancels.push(CancelCause::ClientRpc);
        }
        Ok(step)
    }

    /// A teardown: fires the running turn's token with `cause` and ends every queued
    /// turn as cancelled with that cause (each counted as a cancelled verdict).
    /// Returns the cancelled running turn and the dropped ones (whose `turn_complete`
    /// is published once their verdicts are committed).
    pub fn cancel_all(&mut self, cause: CancelCause) -> Step<(Option<TurnId>, Vec<Dropped>)> {
        let mut cancels = Vec::new();
        let mut cancelled = None;
        if let Some(slot) = self.tokens.current() {
            if slot.fire(cause) {
                cancels.push(cause);
                cancelled = self.turn.as_ref().map(|t| t.turn_id.clone());
            }
        }
        let dropped: Vec<Dropped> = self
            .queue
            .drain(..)
            .map(|q| {
                cancels.push(cause);
                let verdict = TurnVerdict {
                    turn_id: q.turn_id,
                    stop_reason: StopReason::Cancelled,
                    cancel_cause: Some(cause),
                    error: None,
                    usage: Default::default(),
                    content: String::new(),
                };
                (verdict, q.waiters)
            })
            .collect();
        let mut step = Step::none((cancelled, Vec::new()));
        for (verdict, _) in &dropped {
            step.ops.push(Op::FinishTurn {
                turn_id: verdict.turn_id.clone(),
                verdict: verdict.clone(),
            });
        }
        step.value.1 = dropped;
        step.cancels = cancels;
        step
    }

    /// The running turn ended: its token is removed if the generation still
    /// matches, its pending requests resolve as cancelled, its verdict and reply are
    /// recorded. Returns who waits for the verdict; `turn_complete` is published by
    /// the caller once the commit is done.
    pub fn finish(
        &mut self,
        incarnation: u64,
        generation: u64,
        verdict: &TurnVerdict,
    ) -> Step<Vec<oneshot::Sender<TurnVerdict>>> {
        let finish = Op::FinishTurn {
            turn_id: verdict.turn_id.clone(),
            verdict: verdict.clone(),
        };
        if self.incarnation != incarnation {
            return Step::none(Vec::new()).op(finish);
        }
        let now = now_rfc3339();
        self.tokens.remove(generation);
        let mut step = Step::none(Vec::new()).op(finish);
        if let Some(mut t) = self.turn.take() {
            step.value = std::mem::take(&mut t.waiters);
            for p in t.pending.drain(..) {
                step.events.push(Event::RequestResolved {
                    request_id: p.request.request_id,
                    response: cancelled_response(),
                    by_tui_id: None,
                });
            }
        }
        // Each tool call with its result is one `tool` message, before the reply.
        for tool in crate::events::tools_of(&self.hub, &verdict.turn_id) {
            let index = self.rec.message_count;
            self.rec.message_count += 1;
            step.ops.push(Op::InsertMessage(MessageRecord {
                session_id: self.rec.id.clone(),
                index,
                role: Role::Tool,
                content: tool.message_content(),
                turn_id: Some(verdict.turn_id.0.clone()),
                created_at: now.clone(),
            }));
        }
        if !verdict.content.is_empty() || verdict.stop_reason == StopReason::EndTurn {
            let index = self.rec.message_count;
            self.rec.message_count += 1;
            step.ops.push(Op::InsertMessage(MessageRecord {
                session_id: self.rec.id.clone(),
                index,
                role: Role::Assistant,
                content: verdict.content.clone(),
                turn_id: Some(verdict.turn_id.0.clone()),
                created_at: now.clone(),
            }));
        }
        self.rec.round_count += 1;
        self.rec.usage.add(verdict.usage);
        self.rec.updated_at = now.clone();
        self.rec.last_active_at = now;
        step.ops.push(Op::UpdateSession(self.rec.clone()));
        step
    }
}
