//! Runs a session's queued turns one after another: register the cancel token
//! (generation), run the agent, persist the verdict, publish `turn_complete`.

use super::emitter::Emitter;
use crate::agent::{HistoryMessage, TurnInput, TurnIo};
use crate::persist::Op;
use crate::store::cancel::CancelSlot;
use crate::store::entry::{QueuedTurn, RunningTurn};
use crate::store::record::MessageRecord;
use crate::store::Store;
use crate::util::now_rfc3339;
use sessiond_protocol::{
    CancelCause, Event, Role, SessionId, SessionStatus, StopReason, TurnVerdict, UploadEntry,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Response sent for requests still pending when their turn ends.
pub fn cancelled_response() -> serde_json::Value {
    serde_json::json!({ "outcome": "cancelled" })
}

/// Spawns the runner of a session (its entry's `busy` flag is already set).
pub fn spawn(store: Arc<Store>, id: SessionId, incarnation: u64) {
    tokio::spawn(run(store, id, incarnation));
}

struct Started {
    queued: QueuedTurn,
    slot: CancelSlot,
    emitter: Emitter,
    responses: mpsc::UnboundedReceiver<crate::agent::RequestResponse>,
    agent_alias: String,
    overrides: sessiond_protocol::Overrides,
    cwd: Option<String>,
    user_index: u64,
}

async fn run(store: Arc<Store>, id: SessionId, incarnation: u64) {
    while let Some(started) = start_next(&store, &id, incarnation) {
        run_turn(&store, &id, started, incarnation).await;
    }
}

/// Pops the next queued turn and makes it the running one; clears `busy` and
/// returns `None` when there is nothing (more) to run.
fn start_next(store: &Arc<Store>, id: &SessionId, incarnation: u64) -> Option<Started> {
    let mut e = store.sessions.get_mut(id)?;
    if e.incarnation != incarnation {
        return None;
    }
    if e.retiring || e.queue.is_empty() {
        e.busy.send_replace(false);
        return None;
    }
    let queued = e.queue.pop_front()?;
    let generation = store.next_generation();
    let slot = CancelSlot::new(generation);
    if let Some((_, fired)) = e.tokens.register(slot.clone()) {
        if fired {
            store.stats.count_cancel(CancelCause::Superseded);
        }
    }
    let now = now_rfc3339();
    let (tx, rx) = mpsc::unbounded_channel();
    e.turn = Some(RunningTurn {
        turn_id: queued.turn_id.clone(),
        generation,
        started_at: now.clone(),
        waiters: Vec::new(),
        pending: Vec::new(),
        responses: tx,
    });
    let user_index = e.rec.message_count;
    e.rec.message_count += 1;
    if e.rec.status == SessionStatus::Created {
        e.rec.status = SessionStatus::Active;
    }
    if e.rec.title.is_none() {
        let t = crate::store::cut_title(&queued.text);
        if !t.is_empty() {
            e.rec.title = Some(t);
        }
    }
    e.rec.updated_at = now.clone();
    e.rec.last_active_at = now.clone();
    e.hub.publish(Event::UserMessage {
        turn_id: queued.turn_id.clone(),
        text: queued.text.clone(),
        attachments: queued.attachments.clone(),
    });
    e.hub.publish(Event::TurnStarted {
        turn_id: queued.turn_id.clone(),
        generation,
    });
    store.db.write_detached(vec![
        Op::InsertMessage(MessageRecord {
            session_id: id.clone(),
            index: user_index,
            role: Role::User,
            content: queued.text.clone(),
            turn_id: Some(queued.turn_id.0.clone()),
            created_at: now,
        }),
        Op::SetTurnGeneration {
            turn_id: queued.turn_id.clone(),
            generation,
        },
        Op::UpdateSession(e.rec.clone()),
    ]);
    let emitter = Emitter::new(
        store.clone(),
        id.clone(),
        incarnation,
        queued.turn_id.clone(),
        e.hub.clone(),
    );
    let agent_alias = e
        .rec
        .overrides
        .model_provider
        .clone()
        .unwrap_or_else(|| e.rec.agent.clone());
    let mut queued = queued;
    if let Some(t) = e.turn.as_mut() {
        t.waiters = std::mem::take(&mut queued.waiters);
    }
    Some(Started {
        queued,
        slot,
        emitter,
        responses: rx,
        agent_alias,
        overrides: e.rec.overrides.clone(),
        cwd: e.rec.cwd.clone(),
        user_index,
    })
}

async fn run_turn(store: &Arc<Store>, id: &SessionId, s: Started, incarnation: u64) {
    let turn_id = s.queued.turn_id.clone();
    let token = s.slot.token();
    let result = match prepare_input(store, id, &s).await {
        Err(e) => Err(e),
        Ok(input) => match store.agents.get(&s.agent_alias) {
            Err(e) => Err(e.to_string()),
            Ok(agent) => {
                let io = TurnIo {
                    emit: s.emitter.clone(),
                    responses: s.responses,
                    cancel: token.clone(),
                };
                // A panicking provider fails its turn instead of wedging the session.
                let fut = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(
                    agent.run(input, io),
                ));
                let fut = async move {
                    fut.await
                        .unwrap_or_else(|_| Err("the agent crashed".to_owned()))
                };
                let max = store.limits.max_turn_secs();
                if max == 0 {
                    fut.await
                } else {
                    tokio::pin!(fut);
                    tokio::select! {
                        r = &mut fut => r,
                        _ = tokio::time::sleep(Duration::from_secs(max)) => {
                            store.fire(&s.slot, CancelCause::Timeout);
                            fut.await
                        }
                    }
                }
            }
        },
    };
    let acc = s.emitter.snapshot();
    let (stop_reason, cancel_cause, error) = match (s.slot.cause(), result) {
        (Some(cause), _) => (StopReason::Cancelled, Some(cause), None),
        (None, Ok(())) => (StopReason::EndTurn, None, None),
        (None, Err(e)) => (StopReason::Failed, None, Some(e)),
    };
    let verdict = TurnVerdict {
        turn_id: turn_id.clone(),
        stop_reason,
        cancel_cause,
        error,
        usage: acc.usage,
        content: acc.content.clone(),
    };
    finish(store, id, incarnation, &s.slot, verdict, acc.content).await;
}

async fn prepare_input(
    store: &Arc<Store>,
    id: &SessionId,
    s: &Started,
) -> Result<TurnInput, String> {
    let history = store
        .db
        .messages(id, 0, u32::MAX)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|m| m.index < s.user_index)
        .map(|m| HistoryMessage {
            role: m.role,
            content: m.content,
        })
        .collect();
    let mut attachments: Vec<UploadEntry> = Vec::new();
    let mut text = s.queued.text.clone();
    if !s.queued.attachments.is_empty() {
        let index = store.db.uploads(id).await.map_err(|e| e.to_string())?;
        for r in &s.queued.attachments {
            if let Some(u) = index.iter().find(|u| format!("sha256:{}", u.hash) == *r) {
                let entry = crate::uploads::entry_for(&store.blobs_dir, u, false);
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&entry.marker);
                attachments.push(entry);
            }
        }
    }
    Ok(TurnInput {
        session_id: id.clone(),
        turn_id: s.queued.turn_id.clone(),
        text,
        attachments,
        history,
        overrides: s.overrides.clone(),
        cwd: s.cwd.clone(),
    })
}

/// Ends a turn: resolve pending requests as cancelled, remove the token if the
/// generation matches, persist verdict and reply, publish `turn_complete`.
async fn finish(
    store: &Arc<Store>,
    id: &SessionId,
    incarnation: u64,
    slot: &CancelSlot,
    verdict: TurnVerdict,
    content: String,
) {
    let now = now_rfc3339();
    let mut waiters = Vec::new();
    let mut hub = None;
    let commit = {
        let mut ops = vec![Op::FinishTurn {
            turn_id: verdict.turn_id.clone(),
            verdict: verdict.clone(),
        }];
        match store.sessions.get_mut(id) {
            Some(mut e) if e.incarnation == incarnation => {
                e.tokens.remove(slot.generation);
                if let Some(mut t) = e.turn.take() {
                    waiters = std::mem::take(&mut t.waiters);
                    for p in t.pending.drain(..) {
                        e.hub.publish(Event::RequestResolved {
                            request_id: p.request.request_id,
                            response: cancelled_response(),
                            by_tui_id: None,
                        });
                    }
                }
                if !content.is_empty() || verdict.stop_reason == StopReason::EndTurn {
                    let index = e.rec.message_count;
                    e.rec.message_count += 1;
                    ops.push(Op::InsertMessage(MessageRecord {
                        session_id: id.clone(),
                        index,
                        role: Role::Assistant,
                        content,
                        turn_id: Some(verdict.turn_id.0.clone()),
                        created_at: now.clone(),
                    }));
                }
                e.rec.round_count += 1;
                e.rec.usage.add(verdict.usage);
                e.rec.updated_at = now.clone();
                e.rec.last_active_at = now;
                ops.push(Op::UpdateSession(e.rec.clone()));
                hub = Some(e.hub.clone());
                store.db.submit(ops)
            }
            _ => store.db.submit(ops),
        }
    };
    if let Err(e) = commit.await {
        tracing::error!(error = %e, "cannot persist a turn verdict");
    }
    if let Some(hub) = hub {
        hub.publish(Event::TurnComplete {
            verdict: verdict.clone(),
        });
    }
    for w in waiters {
        let _ = w.send(verdict.clone());
    }
}
