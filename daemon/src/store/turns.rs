//! Turn admission, cancel and answers to the agent's questions.

use super::entry::QueuedTurn;
use super::{Caller, Store, StoreError};
use crate::persist::Op;
use crate::store::record::TurnRecord;
use crate::util::{now_rfc3339, random_id};
use sessiond_protocol::{CancelCause, Event, RequestId, SessionId, TurnId, TurnVerdict};
use std::sync::Arc;
use tokio::sync::oneshot;

/// An accepted prompt.
pub struct Accepted {
    pub turn_id: TurnId,
    pub queued_behind: u32,
    /// Resolves with the verdict when `wait` was asked for.
    pub verdict: Option<oneshot::Receiver<TurnVerdict>>,
}

/// A prompt as the RPC layer hands it over.
pub struct PromptRequest {
    pub text: String,
    pub attachments: Vec<String>,
    pub interrupt: bool,
    pub wait: bool,
}

impl Store {
    /// `session/prompt`: loads the session if needed, queues the turn (durably),
    /// starts the session's runner if none runs.
    pub async fn prompt(
        self: &Arc<Self>,
        caller: &Caller,
        id: &SessionId,
        req: PromptRequest,
    ) -> Result<Accepted, StoreError> {
        if req.text.trim().is_empty() && req.attachments.is_empty() {
            return Err(StoreError::InvalidParams("prompt text is empty".into()));
        }
        self.check_owner(caller, id).await?;
        if !req.attachments.is_empty() {
            self.check_attachments(id, &req.attachments).await?;
        }
        // An eviction may unload the session between loading it and queuing, and a
        // close in progress finishes its unload first; then the session is loaded
        // again. Bounded: a close waits for its turn to stop, which is quick.
        for attempt in 0..1000u32 {
            self.ensure_live(id).await?;
            match self.try_enqueue(caller, id, &req)? {
                Some((accepted, commit, spawn)) => {
                    commit.await?;
                    if let Some(incarnation) = spawn {
                        crate::turn::runner::spawn(self.clone(), id.clone(), incarnation);
                    }
                    return Ok(accepted);
                }
                None if attempt < 8 => tokio::task::yield_now().await,
                None => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        }
        Err(StoreError::Internal("session kept being unloaded".into()))
    }

    #[allow(clippy::type_complexity)]
    fn try_enqueue(
        &self,
        caller: &Caller,
        id: &SessionId,
        req: &PromptRequest,
    ) -> Result<Option<(Accepted, crate::persist::Commit, Option<u64>)>, StoreError> {
        let Some(mut e) = self.sessions.get_mut(id) else {
            return Ok(None);
        };
        if e.retiring {
            return Ok(None);
        }
        if !caller.may_mutate(e.rec.owner.as_ref()) {
            return Err(StoreError::NotOwned(id.clone()));
        }
        if e.rec.status.is_terminal() {
            return Err(StoreError::Terminated(id.clone(), e.rec.status));
        }
        let max = self.limits.max_queued_turns();
        let running = e.turn.is_some() || *e.busy.borrow();
        if running && !req.interrupt && e.queue.len() >= max {
            return Err(StoreError::Busy(id.clone(), e.queue.len()));
        }
        let turn_id = TurnId(random_id("turn_", 12));
        let (tx, rx) = if req.wait {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let queued = QueuedTurn {
            turn_id: turn_id.clone(),
            text: req.text.clone(),
            attachments: req.attachments.clone(),
            waiters: tx.into_iter().collect(),
        };
        let queued_behind = if req.interrupt {
            if let Some(slot) = e.tokens.current().cloned() {
                self.fire(&slot, CancelCause::Superseded);
            }
            e.queue.push_front(queued);
            u32::from(running)
        } else {
            e.queue.push_back(queued);
            u32::from(running) + e.queue.len() as u32 - 1
        };
        let now = now_rfc3339();
        e.rec.last_active_at = now.clone();
        e.rec.updated_at = now.clone();
        let commit = self.db.submit(vec![
            Op::StartTurn(TurnRecord {
                turn_id: turn_id.0.clone(),
                session_id: id.clone(),
                generation: 0,
                prompt: req.text.clone(),
                started_at: now,
            }),
            Op::UpdateSession(e.rec.clone()),
        ]);
        let spawn = if *e.busy.borrow() {
            None
        } else {
            e.busy.send_replace(true);
            Some(e.incarnation)
        };
        Ok(Some((
            Accepted {
                turn_id,
                queued_behind,
                verdict: rx,
            },
            commit,
            spawn,
        )))
    }

    async fn check_attachments(&self, id: &SessionId, refs: &[String]) -> Result<(), StoreError> {
        let index = self.db.uploads(id).await?;
        for r in refs {
            let hash = r.strip_prefix("sha256:").unwrap_or("");
            if !index.iter().any(|u| u.hash == hash) {
                return Err(StoreError::InvalidParams(format!(
                    "attachment {r} is not in this session's uploads"
                )));
            }
        }
        Ok(())
    }

    /// `session/cancel`: fires the running turn's token with cause `client_rpc`.
    /// With nothing running it returns `(false, None)` and records no cause.
    pub async fn cancel(
        &self,
        caller: &Caller,
        id: &SessionId,
    ) -> Result<(bool, Option<TurnId>), StoreError> {
        self.check_owner(caller, id).await?;
        let Some(e) = self.sessions.get(id) else {
            return Ok((false, None));
        };
        if !caller.may_mutate(e.rec.owner.as_ref()) {
            return Err(StoreError::NotOwned(id.clone()));
        }
        let (Some(slot), Some(turn)) = (e.tokens.current(), e.turn.as_ref()) else {
            return Ok((false, None));
        };
        if self.fire(slot, CancelCause::ClientRpc) {
            Ok((true, Some(turn.turn_id.clone())))
        } else {
            // Already cancelled by someone else: nothing new happened.
            Ok((false, Some(turn.turn_id.clone())))
        }
    }

    /// `session/respond`: answers one pending request of the running turn.
    pub async fn respond(
        &self,
        caller: &Caller,
        id: &SessionId,
        request_id: Option<RequestId>,
        response: serde_json::Value,
    ) -> Result<u32, StoreError> {
        self.check_owner(caller, id).await?;
        let mut e = self
            .sessions
            .get_mut(id)
            .ok_or_else(|| StoreError::NoPendingRequest(id.clone()))?;
        if !caller.may_mutate(e.rec.owner.as_ref()) {
            return Err(StoreError::NotOwned(id.clone()));
        }
        let hub = e.hub.clone();
        let Some(turn) = e.turn.as_mut() else {
            return Err(StoreError::NoPendingRequest(id.clone()));
        };
        let idx = match &request_id {
            Some(rid) => turn
                .pending
                .iter()
                .position(|p| &p.request.request_id == rid)
                .ok_or_else(|| StoreError::NoPendingRequest(id.clone()))?,
            None => match turn.pending.len() {
                0 => return Err(StoreError::NoPendingRequest(id.clone())),
                1 => 0,
                n => {
                    return Err(StoreError::InvalidParams(format!(
                        "{n} requests are pending: name one with request_id"
                    )))
                }
            },
        };
        let pending = turn.pending.remove(idx);
        let rid = pending.request.request_id.clone();
        let _ = turn.responses.send(crate::agent::RequestResponse {
            request_id: rid.clone(),
            response: response.clone(),
        });
        let remaining = turn.pending.len() as u32;
        hub.publish(Event::RequestResolved {
            request_id: rid,
            response,
            by_tui_id: caller.tui.clone(),
        });
        Ok(remaining)
    }

    /// Pending request events of a session, to deliver again to a returning subscriber.
    pub fn pending_envelopes(&self, id: &SessionId) -> Vec<Arc<sessiond_protocol::EventEnvelope>> {
        self.sessions
            .get(id)
            .and_then(|e| {
                e.turn
                    .as_ref()
                    .map(|t| t.pending.iter().map(|p| p.envelope.clone()).collect())
            })
            .unwrap_or_default()
    }
}
