//! One turn of an ACP agent: start (or reuse) the session's agent, apply the model
//! override, send `session/prompt`, relay permission requests, and on cancel send
//! `session/cancel` with its cause, then end the process group after the grace period.

use super::conn::{self, Live, Opened, PermissionAsk, TurnSink};
use super::updates;
use super::Inner;
use crate::agent::{RequestResponse, TurnInput, TurnIo};
use crate::turn::emitter::Emitter;
use agent_client_protocol::v1::schema::{
    BlobResourceContents, CancelNotification, ContentBlock, EmbeddedResource,
    EmbeddedResourceResource, PromptRequest, PromptResponse, RequestPermissionOutcome,
    RequestPermissionResponse, ResourceLink, SelectedPermissionOutcome,
    SetSessionConfigOptionRequest, TextContent, TextResourceContents,
};
use agent_client_protocol::{Responder, V1};
use base64::Engine;
use serde_json::json;
use sessiond_protocol::{RequestAnswer, RequestId, RequestKind, RequestOption, Usage};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// After the agent's output ends, how long its process may take to exit.
const EXIT_AFTER_EOF: Duration = Duration::from_secs(5);

/// How the prompt loop ended.
enum Ending {
    Answered(Result<PromptResponse, agent_client_protocol::Error>),
    /// Cancelled, and the agent did not end the prompt within the grace period.
    GraceOver,
    /// The agent process exited (status).
    Exited(String),
}

pub async fn run(inner: Arc<Inner>, input: TurnInput, io: TurnIo) -> Result<(), String> {
    let TurnIo {
        emit,
        mut responses,
        cancel,
    } = io;
    if cancel.is_cancelled() {
        return Ok(());
    }
    let slot = inner.slot(&input.session_id);
    let mut guard = slot.lock().await;
    // An agent that died since the last turn is started again (and loads its session).
    if guard.as_mut().is_some_and(|live| live.process.has_exited()) {
        *guard = None;
    }
    if guard.is_none() {
        let stored = inner.stored_id(&input.session_id).await;
        let started = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            r = conn::start(&inner.settings, input.session_id.as_str(), input.cwd.as_deref(), stored.as_deref()) => r?,
        };
        let (live, opened) = started;
        if let Opened::New { had_stored } = opened {
            inner.store_id(&input.session_id, &live.acp_session.0).await;
            if had_stored {
                emit.agent_update(
                    "session_started_fresh".to_owned(),
                    json!({
                        "reason": if live.init.agent_capabilities.load_session {
                            "the agent could not load its earlier session"
                        } else {
                            "the agent cannot load sessions"
                        },
                        "acp_session_id": live.acp_session.0.to_string(),
                    }),
                );
            }
        }
        *guard = Some(live);
    }
    let Some(live) = guard.as_mut() else {
        return Err("the acp agent is not running".to_owned());
    };
    apply_model(live, &input, &emit).await;

    let (ask_tx, mut asks) = mpsc::unbounded_channel();
    live.shared.attach(TurnSink {
        emit: emit.clone(),
        asks: ask_tx,
    });
    let embed = live
        .init
        .agent_capabilities
        .prompt_capabilities
        .embedded_context;
    let prompt = PromptRequest::new(live.acp_session.clone(), prompt_blocks(&input, embed).await);
    let answer = live.cx.send_request(prompt).block_task();
    tokio::pin!(answer);
    let mut pending: HashMap<
        RequestId,
        (Responder<RequestPermissionResponse, V1>, Vec<RequestOption>),
    > = HashMap::new();
    let mut asked = 0u64;
    let mut grace_until: Option<Instant> = None;
    let ending = loop {
        tokio::select! {
            r = &mut answer => break match r {
                // The agent's stdout ended: report how the process went, with its stderr.
                Err(e) if agent_client_protocol::is_incoming_transport_closed(&e) || agent_client_protocol::is_connection_terminated(&e) => {
                    match tokio::time::timeout(EXIT_AFTER_EOF, live.process.wait()).await {
                        Ok(status) => Ending::Exited(status),
                        Err(_) => Ending::Answered(Err(e)),
                    }
                }
                r => Ending::Answered(r),
            },
            _ = cancel.cancelled(), if grace_until.is_none() => {
                send_cancel(live, &emit);
                answer_all_cancelled(&mut pending);
                grace_until = Some(Instant::now() + Duration::from_millis(inner.settings.cancel_grace_ms));
            }
            _ = sleep_until(grace_until), if grace_until.is_some() => break Ending::GraceOver,
            status = live.process.wait() => break Ending::Exited(status),
            Some(ask) = asks.recv() => {
                if grace_until.is_some() {
                    let _ = ask.responder.respond(cancelled());
                    continue;
                }
                asked += 1;
                let id = RequestId::from(format!("{}-p{asked}", input.turn_id.as_str()));
                publish_ask(&emit, id, ask, &mut pending);
            }
            Some(r) = responses.recv() => answer_one(&mut pending, r),
        }
    };
    live.shared.detach();
    answer_all_cancelled(&mut pending);
    let cancelled_turn = cancel.is_cancelled();
    match ending {
        Ending::Answered(Ok(response)) => {
            report(&emit, &response);
            Ok(())
        }
        Ending::Answered(Err(e)) if cancelled_turn => {
            tracing::debug!(error = %e, "acp prompt ended with an error after cancel");
            Ok(())
        }
        Ending::Answered(Err(e)) => Err(format!("the acp agent failed the prompt: {e}")),
        Ending::GraceOver => {
            if let Some(mut live) = guard.take() {
                live.process.kill().await;
            }
            Ok(())
        }
        Ending::Exited(status) => {
            let suffix = live.process.stderr_suffix().await;
            *guard = None;
            if cancelled_turn {
                Ok(())
            } else {
                Err(format!(
                    "the acp agent exited during the turn ({status}){suffix}"
                ))
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The largest attachment embedded in a prompt; larger ones are linked.
const EMBED_MAX_BYTES: u64 = 1024 * 1024;

/// The prompt text, then per attachment its content embedded (when the agent takes
/// embedded context and the file is small) or a `resource_link`.
async fn prompt_blocks(input: &TurnInput, embed: bool) -> Vec<ContentBlock> {
    let mut blocks = vec![ContentBlock::Text(TextContent::new(input.text.clone()))];
    for a in &input.attachments {
        let uri = format!("file://{}", a.workspace_path);
        if embed && a.size_bytes <= EMBED_MAX_BYTES {
            if let Ok(bytes) = tokio::fs::read(&a.workspace_path).await {
                let resource = match String::from_utf8(bytes) {
                    Ok(text) => {
                        let mut t = TextResourceContents::new(text, uri.clone());
                        t.mime_type = a.mime_type.clone();
                        EmbeddedResourceResource::TextResourceContents(t)
                    }
                    Err(e) => {
                        let data = base64::engine::general_purpose::STANDARD.encode(e.into_bytes());
                        let mut b = BlobResourceContents::new(data, uri.clone());
                        b.mime_type = a.mime_type.clone();
                        EmbeddedResourceResource::BlobResourceContents(b)
                    }
                };
                blocks.push(ContentBlock::Resource(EmbeddedResource::new(resource)));
                continue;
            }
        }
        let mut link = ResourceLink::new(
            if a.name.is_empty() {
                a.ref_id.clone()
            } else {
                a.name.clone()
            },
            uri,
        );
        link.mime_type = a.mime_type.clone();
        link.size = i64::try_from(a.size_bytes).ok();
        blocks.push(ContentBlock::ResourceLink(link));
    }
    blocks
}

/// `session/cancel`, with the cause in `_meta.sessiond.cancel_cause`.
fn send_cancel(live: &Live, emit: &Emitter) {
    let mut note = CancelNotification::new(live.acp_session.clone());
    if let Some(cause) = emit.cancel_cause() {
        let mut meta = serde_json::Map::new();
        meta.insert(
            "sessiond".to_owned(),
            json!({ "cancel_cause": cause.as_str() }),
        );
        note.meta = Some(meta);
    }
    if let Err(e) = live.cx.send_notification(note) {
        tracing::debug!(error = %e, "cannot send session/cancel");
    }
}

fn cancelled() -> RequestPermissionResponse {
    RequestPermissionResponse::new(RequestPermissionOutcome::Cancelled)
}

fn answer_all_cancelled(
    pending: &mut HashMap<
        RequestId,
        (Responder<RequestPermissionResponse, V1>, Vec<RequestOption>),
    >,
) {
    for (_, (responder, _)) in pending.drain() {
        let _ = responder.respond(cancelled());
    }
}

/// Publishes the agent's permission request as a `request` event.
fn publish_ask(
    emit: &Emitter,
    id: RequestId,
    ask: PermissionAsk,
    pending: &mut HashMap<
        RequestId,
        (Responder<RequestPermissionResponse, V1>, Vec<RequestOption>),
    >,
) {
    let options = updates::request_options(&ask.request.options);
    let fields = &ask.request.tool_call.fields;
    let prompt = fields.title.clone().unwrap_or_else(|| {
        format!(
            "permission for tool call {}",
            ask.request.tool_call.tool_call_id.0
        )
    });
    let options_json = serde_json::to_value(&options).unwrap_or_default();
    pending.insert(id.clone(), (ask.responder, options));
    emit.request(id, RequestKind::Permission, prompt, options_json);
}

/// Answers the agent with a client's response (unknown ids are ignored).
fn answer_one(
    pending: &mut HashMap<
        RequestId,
        (Responder<RequestPermissionResponse, V1>, Vec<RequestOption>),
    >,
    r: RequestResponse,
) {
    let Some((responder, options)) = pending.remove(&r.request_id) else {
        return;
    };
    let outcome = match RequestAnswer::read(&r.response, &options) {
        Some(RequestAnswer::Selected { option_id }) => Some(option_id),
        Some(RequestAnswer::Answered { text }) => Some(text),
        Some(RequestAnswer::Cancelled) | None => None,
    }
    .filter(|id| options.iter().any(|o| o.option_id == *id));
    let response = match outcome {
        Some(id) => RequestPermissionResponse::new(RequestPermissionOutcome::Selected(
            SelectedPermissionOutcome::new(id),
        )),
        None => cancelled(),
    };
    let _ = responder.respond(response);
}

/// Usage and a stop reason other than `end_turn` go to the verdict.
fn report(emit: &Emitter, response: &PromptResponse) {
    if let Some(u) = &response.usage {
        emit.usage(Usage {
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
        });
    }
    if let Some(reason) = updates::stop_reason(response.stop_reason) {
        emit.stop_reason(reason);
    }
}

/// Applies the `model` override through the agent's `model` config option; says
/// so in an `agent_update` when it cannot.
async fn apply_model(live: &mut Live, input: &TurnInput, emit: &Emitter) {
    let Some(model) = input.overrides.model.clone() else {
        return;
    };
    if live.applied_model.as_deref() == Some(model.as_str()) {
        return;
    }
    let Some(option) = live.model_option.clone() else {
        emit.agent_update(
            "override_not_applied".to_owned(),
            json!({"key": "model", "value": model, "reason": "the agent offers no model option"}),
        );
        live.applied_model = Some(model);
        return;
    };
    let request =
        SetSessionConfigOptionRequest::new(live.acp_session.clone(), option, model.as_str());
    match live.cx.send_request(request).block_task().await {
        Ok(_) => live.applied_model = Some(model),
        Err(e) => emit.agent_update(
            "override_not_applied".to_owned(),
            json!({"key": "model", "value": model, "reason": e.to_string()}),
        ),
    }
}
