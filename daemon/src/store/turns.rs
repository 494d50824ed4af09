//! `session/prompt` (admission in two steps around the commit of the turn record),
//! `session/cancel` and `session/respond`, each through the turn transitions.

use super::entry::QueuedTurn;
use super::{Caller, Store, StoreError};
use crate::persist::Op;
use crate::record::TurnRecord;
use crate::util::{now_rfc3339, random_id};
use sessiond_protocol::{RequestId, SessionId, TurnId, TurnVerdict};
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
    /// `session/prompt`: loads the session if needed (only for a caller that may
    /// prompt it), admits the turn and commits its record, then queues it and
    /// starts the session's runner if none runs. A failed commit leaves the session
    /// as it was; a session taken away in between is loaded again.
    pub async fn prompt(
        self: &Arc<Self>,
        caller: &Caller,
        id: &SessionId,
        req: PromptRequest,
    ) -> Result<Accepted, StoreError> {
        if req.text.trim().is_empty() && req.attachments.is_empty() {
            return Err(StoreError::InvalidParams("prompt text is empty".into()));
        }
        if self.draining.load(std::sync::atomic::Ordering::Acquire) {
            return Err(StoreError::ShuttingDown);
        }
        self.check_owner(caller, id).await?;
        if !req.attachments.is_empty() {
            self.check_attachments(id, &req.attachments).await?;
        }
        // Bounded: a teardown holds the gate that `ensure_live_for` waits on, and
        // finishes in bounded time.
        for _ in 0..100u32 {
            self.ensure_live_for(Some(caller), id).await?;
            let turn_id = TurnId(random_id("turn_", 12));
            let record = TurnRecord {
                turn_id: turn_id.0.clone(),
                session_id: id.clone(),
                generation: 0,
                prompt: req.text.clone(),
                started_at: now_rfc3339(),
            };
            let max = self.limits.max_queued_turns();
            let admitted = self.step(id, |e| {
                let incarnation = e.incarnation;
                Ok(e.admit(caller, record, max)?.map(|()| incarnation))
            });
            let (incarnation, pending) = match admitted {
                Ok(a) => a,
                // Unloaded or being taken away meanwhile: load it again.
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            self.settle(pending).await?;
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
            let interrupt = req.interrupt;
            match self.step(id, |e| Ok(e.enqueue(incarnation, queued, interrupt))) {
                Ok((Some((queued_behind, spawn)), _detached)) => {
                    if spawn {
                        crate::turn::runner::spawn(self.clone(), id.clone(), incarnation);
                    }
                    return Ok(Accepted {
                        turn_id,
                        queued_behind,
                        verdict: rx,
                    });
                }
                Ok((None, _)) | Err(_) => {
                    if let Err(e) = self.db.write(vec![Op::DiscardTurn(turn_id)]).await {
                        tracing::warn!(session_id = %id, error = %e, "cannot discard a turn record");
                    }
                }
            }
        }
        Err(StoreError::Internal("session kept being unloaded".into()))
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
        match self.apply(id, |e| e.cancel(caller)).await {
            Err(StoreError::NotFound(_)) => {
                self.check_owner(caller, id).await?;
                Ok((false, None))
            }
            r => r,
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
        match self
            .apply(id, |e| e.respond(caller, request_id, response))
            .await
        {
            Err(StoreError::NotFound(_)) => {
                self.check_owner(caller, id).await?;
                Err(StoreError::NoPendingRequest(id.clone()))
            }
            r => r,
        }
    }

    /// Pending request events of a session, to deliver again to a returning subscriber.
    pub fn pending_envelopes(&self, id: &SessionId) -> Vec<Arc<crate::events::Published>> {
        self.sessions
            .get(id)
            .and_then(|e| {
                e.turn.as_ref().map(|t| {
                    t.pending
                        .iter()
                        .filter_map(|p| p.envelope.clone())
                        .collect()
                })
            })
            .unwrap_or_default()
    }
}
