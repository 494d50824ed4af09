//! The store as the turn runner's host: starting and finishing turns through the
//! turn transitions, the sink a turn's agent publishes into, and the storage
//! backlog that slows a turn down. The runner and the agents never see the store.

use super::{Store, StoreError};
use crate::agent::emit::TurnSink;
use crate::agent::{Emitter, HistoryMessage, TurnInput};
use crate::events::EventHub;
use crate::turn::cancel::CancelSlot;
use crate::turn::runner::{StartedTurn, TurnHost};
use futures::future::BoxFuture;
use sessiond_protocol::{
    CancelCause, Event, PendingRequest, SessionId, StopReason, TurnId, TurnVerdict, UploadEntry,
};
use std::sync::Arc;

/// Where one running turn's agent publishes: chunks straight to the hub, requests
/// through the `add_request` transition.
struct StoreSink {
    store: Arc<Store>,
    id: SessionId,
    incarnation: u64,
    hub: Arc<EventHub>,
    /// The turn's cancel slot, where the cause of a fired cancel is recorded.
    slot: CancelSlot,
}

impl TurnSink for StoreSink {
    fn publish(&self, event: Event) {
        self.hub.publish(event);
    }

    fn request(&self, request: PendingRequest) {
        let incarnation = self.incarnation;
        let step = self
            .store
            .step(&self.id, |e| Ok(e.add_request(incarnation, request)));
        // Nothing to commit: the entry may be gone, then the turn is ending anyway.
        drop(step);
    }

    fn cancel_cause(&self) -> Option<CancelCause> {
        self.slot.cause()
    }
}

impl TurnHost for Store {
    fn start_next(self: &Arc<Self>, id: &SessionId, incarnation: u64) -> Option<StartedTurn> {
        let generation = self.next_generation();
        let (start, hub) = match self.step(id, |e| {
            let hub = e.hub.clone();
            Ok(e.start_next(incarnation, generation).map(|s| (s, hub)))
        }) {
            Ok(((Some(start), hub), _detached)) => (start, hub),
            _ => return None,
        };
        let sink = StoreSink {
            store: self.clone(),
            id: id.clone(),
            incarnation,
            hub,
            slot: start.slot.clone(),
        };
        let store = self.clone();
        let session_id = id.clone();
        let turn_id = start.turn_id.clone();
        let agent = self
            .agents
            .get(&start.agent_alias)
            .map_err(|e| e.to_string());
        let spec = start_input(&start);
        let input = Box::pin(async move { store.turn_input(session_id, turn_id, spec).await });
        Some(StartedTurn {
            turn_id: start.turn_id.clone(),
            slot: start.slot.clone(),
            emit: Emitter::new(start.turn_id.clone(), Arc::new(sink)),
            responses: start.responses,
            agent,
            input,
            max_secs: self.limits.max_turn_secs(),
        })
    }

    fn fire(&self, slot: &CancelSlot, cause: CancelCause) -> bool {
        Store::fire(self, slot, cause)
    }

    fn backlog_full(self: &Arc<Self>, id: &SessionId) -> Option<BoxFuture<'static, ()>> {
        let writer = self.sessions.get(id).map(|e| e.writer.clone())?;
        writer.full()
    }

    fn finish(
        self: &Arc<Self>,
        id: &SessionId,
        incarnation: u64,
        slot: &CancelSlot,
        verdict: TurnVerdict,
    ) -> BoxFuture<'static, ()> {
        let store = self.clone();
        let id = id.clone();
        let generation = slot.generation;
        let slot = slot.clone();
        Box::pin(async move {
            let mut verdict = verdict;
            let stepped = store.step(&id, |e| {
                // A cancel that fired after the runner read the slot, but before this
                // step removed the token, was counted: the verdict says so too (every
                // fired token has its cancelled verdict, and only one cause).
                if verdict.stop_reason != StopReason::Cancelled {
                    if let Some(cause) = slot.cause() {
                        verdict.stop_reason = StopReason::Cancelled;
                        verdict.cancel_cause = Some(cause);
                    }
                }
                let hub = e.hub.clone();
                let live = e.incarnation == incarnation;
                let s = e.finish(incarnation, generation, &verdict);
                Ok(s.map(|w| (w, live.then_some(hub))))
            });
            let (waiters, hub) = match stepped {
                Ok(((waiters, hub), pending)) => {
                    if let Err(e) = store.settle(pending).await {
                        tracing::error!(session_id = %id, turn_id = %verdict.turn_id, error = %e, "cannot persist a turn verdict");
                    }
                    (waiters, hub)
                }
                // The session was unloaded meanwhile: the verdict is still recorded.
                Err(_) => {
                    let op = crate::persist::Op::FinishTurn {
                        turn_id: verdict.turn_id.clone(),
                        verdict: verdict.clone(),
                    };
                    if let Err(e) = store.db.write(vec![op]).await {
                        tracing::error!(session_id = %id, turn_id = %verdict.turn_id, error = %e, "cannot persist a turn verdict");
                    }
                    (Vec::new(), None)
                }
            };
            if let Some(hub) = hub {
                hub.publish(Event::TurnComplete {
                    verdict: verdict.clone(),
                });
            }
            for w in waiters {
                let _ = w.send(verdict.clone());
            }
        })
    }
}

/// What the input of a turn is built from.
struct InputSpec {
    text: String,
    attachments: Vec<String>,
    user_index: u64,
    overrides: sessiond_protocol::Overrides,
    cwd: Option<String>,
}

fn start_input(s: &super::turn_fsm::Start) -> InputSpec {
    InputSpec {
        text: s.text.clone(),
        attachments: s.attachments.clone(),
        user_index: s.user_index,
        overrides: s.overrides.clone(),
        cwd: s.cwd.clone(),
    }
}

impl Store {
    /// The agent's input: the transcript before this turn's prompt, and the prompt
    /// followed by its attachments' markers.
    async fn turn_input(
        &self,
        id: SessionId,
        turn_id: TurnId,
        s: InputSpec,
    ) -> Result<TurnInput, String> {
        let internal = |e: StoreError| e.to_string();
        let history = self
            .db
            .messages(&id, 0, u32::MAX)
            .await
            .map_err(|e| internal(e.into()))?
            .into_iter()
            .filter(|m| m.index < s.user_index)
            .map(|m| HistoryMessage {
                role: m.role,
                content: m.content,
            })
            .collect();
        let mut attachments: Vec<UploadEntry> = Vec::new();
        let mut text = s.text;
        if !s.attachments.is_empty() {
            let index = self.db.uploads(&id).await.map_err(|e| internal(e.into()))?;
            for r in &s.attachments {
                if let Some(u) = index.iter().find(|u| format!("sha256:{}", u.hash) == *r) {
                    let entry = crate::uploads::entry_for(&self.blobs_dir, u, false);
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(&entry.marker);
                    attachments.push(entry);
                }
            }
        }
        Ok(TurnInput {
            session_id: id,
            turn_id,
            text,
            attachments,
            history,
            overrides: s.overrides,
            cwd: s.cwd,
        })
    }
}
