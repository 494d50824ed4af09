//! An ACP v1 agent for the tests, written with the `agent-client-protocol` crate. It
//! streams thoughts, tool calls, a plan and chunks, asks permission, honours
//! `session/cancel`, reports usage, keeps its sessions in a state directory so a
//! new process can `session/load` them, and logs what it received to
//! `<state>/log.jsonl`. The prompt text picks the behaviour (see `prompt`).

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::schema::{
    AgentCapabilities, AvailableCommandsUpdate, CancelNotification, ContentBlock, ContentChunk,
    EmbeddedResourceResource, InitializeRequest, InitializeResponse, LoadSessionRequest,
    LoadSessionResponse, NewSessionRequest, NewSessionResponse, PermissionOption,
    PermissionOptionKind, Plan, PlanEntry, PlanEntryPriority, PlanEntryStatus, PromptCapabilities,
    PromptRequest, PromptResponse, RequestPermissionOutcome, RequestPermissionRequest,
    SessionConfigOption, SessionConfigOptionCategory, SessionConfigSelectOption,
    SessionConfigSelectOptions, SessionId, SessionNotification, SessionUpdate,
    SetSessionConfigOptionRequest, SetSessionConfigOptionResponse, StopReason, ToolCall,
    ToolCallStatus, ToolCallUpdate, ToolCallUpdateFields, Usage,
};
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::{Agent, Client, Stdio};
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

struct State {
    dir: PathBuf,
    /// Per session: a counter bumped by each `session/cancel`.
    cancels: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl State {
    fn log(&self, entry: serde_json::Value) {
        let path = self.dir.join("log.jsonl");
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{entry}");
        }
    }

    fn session_file(&self, id: &str) -> PathBuf {
        self.dir.join(format!("session-{id}.json"))
    }

    /// The stored transcript of a session: (prompt, reply) pairs.
    fn transcript(&self, id: &str) -> Option<Vec<(String, String)>> {
        let text = std::fs::read_to_string(self.session_file(id)).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn save(&self, id: &str, transcript: &[(String, String)]) {
        let _ = std::fs::write(
            self.session_file(id),
            serde_json::to_string(transcript).unwrap_or_default(),
        );
    }

    fn cancel_rx(&self, id: &str) -> watch::Receiver<u64> {
        let mut map = self.cancels.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    fn cancel(&self, id: &str) {
        let mut map = self.cancels.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .send_modify(|n| *n += 1);
    }
}

#[tokio::main]
async fn main() -> agent_client_protocol::Result<()> {
    let dir = std::env::var_os("ACP_TEST_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".acp-test-agent"));
    let _ = std::fs::create_dir_all(&dir);
    let state = Arc::new(State {
        dir,
        cancels: Mutex::new(HashMap::new()),
    });
    let can_load = std::env::var_os("ACP_TEST_NO_LOAD").is_none();
    let (s1, s2, s3, s4, s5) = (
        state.clone(),
        state.clone(),
        state.clone(),
        state.clone(),
        state.clone(),
    );
    Agent
        .v1()
        .name("acp-test-agent")
        .on_receive_request(
            async move |req: InitializeRequest, responder, _cx| {
                s1.log(json!({"event": "initialize", "version": req.protocol_version, "pid": std::process::id()}));
                responder.respond(
                    InitializeResponse::new(ProtocolVersion::V1).agent_capabilities(
                        AgentCapabilities::new()
                            .load_session(can_load)
                            .prompt_capabilities(PromptCapabilities::new().embedded_context(true)),
                    ),
                )
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: NewSessionRequest, responder, _cx| {
                let id = format!("acp-{}-{}", std::process::id(), rand_suffix());
                s2.save(&id, &[]);
                s2.log(json!({"event": "new", "session": id, "cwd": req.cwd}));
                responder.respond(
                    NewSessionResponse::new(SessionId::new(id)).config_options(model_options("small")),
                )
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: LoadSessionRequest, responder, cx| {
                let id = req.session_id.0.to_string();
                let Some(transcript) = s3.transcript(&id) else {
                    s3.log(json!({"event": "load_unknown", "session": id}));
                    return responder.respond_with_error(agent_client_protocol::Error::new(
                        -32002,
                        "unknown session",
                    ));
                };
                s3.log(json!({"event": "load", "session": id, "turns": transcript.len()}));
                for (prompt, reply) in transcript {
                    update(&cx, &id, SessionUpdate::UserMessageChunk(chunk(prompt)));
                    update(&cx, &id, SessionUpdate::AgentMessageChunk(chunk(reply)));
                }
                responder.respond(LoadSessionResponse::new().config_options(model_options("small")))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: PromptRequest, responder, cx| {
                let state = s4.clone();
                let cx2 = cx.clone();
                cx.spawn(async move {
                    let response = prompt(&state, &cx2, req).await;
                    responder.respond(response)
                })
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: SetSessionConfigOptionRequest, responder, _cx| {
                let value = req.value.as_value_id().map(|v| v.0.to_string());
                s5.log(json!({
                    "event": "set_config_option",
                    "session": req.session_id.0.to_string(),
                    "config_id": req.config_id.0.to_string(),
                    "value": value,
                }));
                let current = value.unwrap_or_default();
                responder.respond(SetSessionConfigOptionResponse::new(model_options(&current)))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_notification(
            {
                let state = state.clone();
                async move |n: CancelNotification, _cx| {
                    let id = n.session_id.0.to_string();
                    state.log(json!({"event": "cancel", "session": id, "meta": n.meta}));
                    state.cancel(&id);
                    Ok(())
                }
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .connect_to(Stdio::new())
        .await
}

/// A `model` select offering `small` and `large`.
fn model_options(current: &str) -> Vec<SessionConfigOption> {
    vec![SessionConfigOption::select(
        "model",
        "Model",
        current.to_owned(),
        SessionConfigSelectOptions::Ungrouped(vec![
            SessionConfigSelectOption::new("small", "Small"),
            SessionConfigSelectOption::new("large", "Large"),
        ]),
    )
    .category(SessionConfigOptionCategory::Model)]
}

fn rand_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{nanos:x}")
}

fn chunk(text: impl Into<String>) -> ContentChunk {
    ContentChunk::new(ContentBlock::from(text.into()))
}

fn update(cx: &ConnectionTo<Client>, id: &str, update: SessionUpdate) {
    let _ = cx.send_notification(SessionNotification::new(SessionId::new(id), update));
}

fn prompt_text(req: &PromptRequest) -> String {
    req.prompt
        .iter()
        .map(|b| match b {
            ContentBlock::Text(t) => t.text.clone(),
            ContentBlock::ResourceLink(l) => format!("<link {} {}>", l.name, l.uri),
            ContentBlock::Resource(r) => match &r.resource {
                EmbeddedResourceResource::TextResourceContents(t) => {
                    format!("<embedded {} {}>", t.uri, t.text)
                }
                _ => "<embedded binary>".to_owned(),
            },
            _ => String::new(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs one prompt. The text picks the behaviour:
/// - `crash`: a line on stderr, then the process exits with status 3;
/// - `wait`: one chunk, then waits for `session/cancel` and answers `cancelled`;
/// - `stubborn`: one chunk, then never answers, not even after `session/cancel`;
/// - `permission`: a tool call that asks permission (allow / reject) and reports it;
/// - `refuse`: stops with `refusal`;
/// - anything else: a thought, a tool call and its result, a plan, an unknown-to-
///   sessiond update, then `echo: <text> (prompt #N)` in chunks, N counting the
///   session's prompts across loads; usage is reported with the answer.
async fn prompt(state: &State, cx: &ConnectionTo<Client>, req: PromptRequest) -> PromptResponse {
    let id = req.session_id.0.to_string();
    let text = prompt_text(&req);
    state.log(json!({"event": "prompt", "session": id, "text": text}));
    let mut cancelled = state.cancel_rx(&id);
    cancelled.mark_unchanged();
    let mut transcript = state.transcript(&id).unwrap_or_default();
    let reply;
    if text.contains("crash") {
        eprintln!("acp-test-agent: crashing on purpose");
        std::process::exit(3);
    } else if text.contains("stubborn") {
        update(
            cx,
            &id,
            SessionUpdate::AgentMessageChunk(chunk("not stopping")),
        );
        let _ = cancelled.changed().await;
        std::future::pending::<()>().await;
        unreachable!();
    } else if text.contains("wait") {
        update(cx, &id, SessionUpdate::AgentMessageChunk(chunk("waiting")));
        let _ = cancelled.changed().await;
        return PromptResponse::new(StopReason::Cancelled);
    } else if text.contains("refuse") {
        update(cx, &id, SessionUpdate::AgentMessageChunk(chunk("no")));
        return PromptResponse::new(StopReason::Refusal);
    } else if text.contains("permission") {
        update(
            cx,
            &id,
            SessionUpdate::ToolCall(
                ToolCall::new("t-write", "write notes.txt")
                    .status(ToolCallStatus::Pending)
                    .raw_input(json!({"path": "notes.txt"})),
            ),
        );
        let ask = RequestPermissionRequest::new(
            SessionId::new(id.clone()),
            ToolCallUpdate::new(
                "t-write",
                ToolCallUpdateFields::new().title("write notes.txt"),
            ),
            vec![
                PermissionOption::new("allow", "Allow", PermissionOptionKind::AllowOnce),
                PermissionOption::new("reject", "Reject", PermissionOptionKind::RejectOnce),
            ],
        );
        let outcome = match cx.send_request(ask).block_task().await {
            Ok(r) => match r.outcome {
                RequestPermissionOutcome::Selected(s) => format!("selected {}", s.option_id.0),
                _ => "cancelled".to_owned(),
            },
            Err(e) => format!("error {e}"),
        };
        state.log(json!({"event": "permission", "session": id, "outcome": outcome}));
        if outcome == "cancelled" && cancelled.has_changed().unwrap_or(false) {
            return PromptResponse::new(StopReason::Cancelled);
        }
        let status = if outcome == "selected allow" {
            ToolCallStatus::Completed
        } else {
            ToolCallStatus::Failed
        };
        update(
            cx,
            &id,
            SessionUpdate::ToolCallUpdate(ToolCallUpdate::new(
                "t-write",
                ToolCallUpdateFields::new()
                    .status(status)
                    .raw_output(json!({"outcome": outcome})),
            )),
        );
        reply = format!("permission: {outcome}");
        update(
            cx,
            &id,
            SessionUpdate::AgentMessageChunk(chunk(reply.clone())),
        );
    } else {
        let n = transcript.len() + 1;
        update(
            cx,
            &id,
            SessionUpdate::AgentThoughtChunk(chunk("considering the prompt")),
        );
        update(
            cx,
            &id,
            SessionUpdate::ToolCall(
                ToolCall::new("t-read", "read notes")
                    .status(ToolCallStatus::InProgress)
                    .raw_input(json!({"path": "notes"})),
            ),
        );
        update(
            cx,
            &id,
            SessionUpdate::ToolCallUpdate(ToolCallUpdate::new(
                "t-read",
                ToolCallUpdateFields::new()
                    .status(ToolCallStatus::Completed)
                    .raw_output(json!({"lines": 3})),
            )),
        );
        update(
            cx,
            &id,
            SessionUpdate::Plan(Plan::new(vec![
                PlanEntry::new("read", PlanEntryPriority::High, PlanEntryStatus::Completed),
                PlanEntry::new(
                    "answer",
                    PlanEntryPriority::Medium,
                    PlanEntryStatus::InProgress,
                ),
            ])),
        );
        update(
            cx,
            &id,
            SessionUpdate::AvailableCommandsUpdate(AvailableCommandsUpdate::new(Vec::new())),
        );
        reply = format!("echo: {text} (prompt #{n})");
        let (a, b) = reply.split_at(reply.len() / 2);
        update(cx, &id, SessionUpdate::AgentMessageChunk(chunk(a)));
        update(cx, &id, SessionUpdate::AgentMessageChunk(chunk(b)));
    }
    let input = text.len() as u64;
    let output = reply.len() as u64;
    transcript.push((text, reply));
    state.save(&id, &transcript);
    PromptResponse::new(StopReason::EndTurn).usage(Usage::new(input + output, input, output))
}
