//! `sessiond acp`: an editor (the crate's client side) drives the real bridge, which
//! talks to a real daemon whose default agent is the crate-written `acp-test-agent`.
//! New, prompt with streaming, cancel, permission round trip, load with the whole
//! history while a turn runs, list by cwd, and an editor closed mid-turn.

use agent_client_protocol::v1::schema::{
    CancelNotification, ContentBlock, ListSessionsRequest, LoadSessionRequest, NewSessionRequest,
    PermissionOptionKind, PromptRequest, PromptResponse, RequestPermissionOutcome,
    RequestPermissionResponse, SelectedPermissionOutcome, SessionConfigKind, SessionConfigOption,
    SessionConfigSelectOptions, SessionId, SessionNotification, SessionUpdate,
    SetSessionConfigOptionRequest, StopReason, TextContent,
};
use serde_json::json;
use sessiond_tests::acp_support::{agent_table, Editor};
use sessiond_tests::{Daemon, Dirs, WAIT};
use std::path::Path;

/// A daemon whose default agent is the ACP test agent, and `slow`: an echo agent
/// that takes a while.
async fn start() -> Daemon {
    let dirs = Dirs::new();
    let state = dirs.path().join("agent-state");
    std::fs::create_dir_all(&state).unwrap();
    let config = format!(
        "default_agent = \"acp\"\n[agents.slow]\nkind = \"echo\"\nchunk_chars = 4\nchunk_delay_ms = 30\n{}",
        agent_table("acp", &state, "")
    );
    std::fs::write(dirs.config_path(), config).unwrap();
    Daemon::start_in(dirs).await.expect("daemon starts")
}

async fn new_session(e: &Editor, cwd: &Path) -> SessionId {
    e.cx.send_request(NewSessionRequest::new(cwd.to_path_buf()))
        .block_task()
        .await
        .expect("session/new")
        .session_id
}

fn prompt(id: &SessionId, text: &str) -> PromptRequest {
    PromptRequest::new(
        id.clone(),
        vec![ContentBlock::Text(TextContent::new(text.to_owned()))],
    )
}

fn text_of(u: &SessionUpdate) -> Option<(&'static str, String)> {
    let (kind, c) = match u {
        SessionUpdate::UserMessageChunk(c) => ("user", c),
        SessionUpdate::AgentMessageChunk(c) => ("agent", c),
        SessionUpdate::AgentThoughtChunk(c) => ("thought", c),
        _ => return None,
    };
    match &c.content {
        ContentBlock::Text(t) => Some((kind, t.text.clone())),
        _ => None,
    }
}

/// Sends a prompt on its own task; the response arrives on the returned handle.
fn spawn_prompt(
    e: &Editor,
    req: PromptRequest,
) -> tokio::task::JoinHandle<agent_client_protocol::Result<PromptResponse>> {
    let sent = e.cx.send_request(req);
    tokio::spawn(async move { sent.block_task().await })
}

async fn finish(
    h: tokio::task::JoinHandle<agent_client_protocol::Result<PromptResponse>>,
) -> PromptResponse {
    tokio::time::timeout(WAIT, h)
        .await
        .expect("the prompt is answered in time")
        .expect("join")
        .expect("the prompt succeeds")
}

/// Updates until one carries `kind` text containing `needle`.
async fn until_text(e: &mut Editor, kind: &str, needle: &str) -> Vec<SessionNotification> {
    let mut seen = Vec::new();
    loop {
        let n = e.next_update().await;
        let hit = text_of(&n.update).is_some_and(|(k, t)| k == kind && t.contains(needle));
        seen.push(n);
        if hit {
            return seen;
        }
    }
}

#[tokio::test]
async fn new_and_prompt_stream_the_turn_and_answer_with_its_verdict() {
    let d = start().await;
    let mut e = Editor::start(&d.dirs, &[]).await;
    let caps = &e.init.agent_capabilities;
    assert!(caps.load_session);
    assert!(caps.prompt_capabilities.embedded_context);
    assert!(caps.session_capabilities.list.is_some());
    assert!(caps.session_capabilities.resume.is_some());

    let id = new_session(&e, d.dirs.path()).await;
    let r = finish(spawn_prompt(&e, prompt(&id, "hello"))).await;
    assert_eq!(r.stop_reason, StopReason::EndTurn);
    let usage = r.usage.expect("usage");
    assert_eq!(usage.input_tokens, 5);

    // Every update of the turn arrived before its response.
    let mut updates = Vec::new();
    while let Ok(n) = e.updates.try_recv() {
        assert_eq!(n.session_id, id);
        updates.push(n.update);
    }
    let answer: String = updates
        .iter()
        .filter_map(text_of)
        .filter(|(k, _)| *k == "agent")
        .map(|(_, t)| t)
        .collect();
    assert_eq!(answer, "echo: hello (prompt #1)");
    assert!(updates
        .iter()
        .any(|u| matches!(u, SessionUpdate::AgentThoughtChunk(_))));
    assert!(updates
        .iter()
        .any(|u| matches!(u, SessionUpdate::ToolCall(t) if t.title == "read notes")));
    assert!(updates
        .iter()
        .any(|u| matches!(u, SessionUpdate::ToolCallUpdate(t)
        if t.fields.raw_output == Some(json!({"lines": 3})))));
    assert!(updates
        .iter()
        .any(|u| matches!(u, SessionUpdate::Plan(p) if p.entries.len() == 2)));
    assert!(updates
        .iter()
        .any(|u| matches!(u, SessionUpdate::AvailableCommandsUpdate(_))));
    // The editor's own prompt is not echoed back to it.
    assert!(!updates
        .iter()
        .any(|u| matches!(u, SessionUpdate::UserMessageChunk(_))));
}

#[tokio::test]
async fn cancel_reaches_the_turn_and_the_prompt_answers_cancelled() {
    let d = start().await;
    let mut e = Editor::start(&d.dirs, &[]).await;
    let id = new_session(&e, d.dirs.path()).await;
    let h = spawn_prompt(&e, prompt(&id, "wait for cancel"));
    until_text(&mut e, "agent", "waiting").await;
    e.cx.send_notification(CancelNotification::new(id.clone()))
        .unwrap();
    let r = finish(h).await;
    assert_eq!(r.stop_reason, StopReason::Cancelled);
    let meta = r.meta.expect("meta");
    assert_eq!(meta["sessiond"]["cancel_cause"], "client_rpc");
}

#[tokio::test]
async fn a_permission_request_goes_to_the_editor_and_its_answer_back() {
    let d = start().await;
    let mut e = Editor::start(&d.dirs, &[]).await;
    let id = new_session(&e, d.dirs.path()).await;
    let h = spawn_prompt(&e, prompt(&id, "permission please"));
    let (req, responder) = e.next_ask().await;
    assert_eq!(req.session_id, id);
    assert_eq!(
        req.tool_call.fields.title.as_deref(),
        Some("write notes.txt")
    );
    let kinds: Vec<_> = req
        .options
        .iter()
        .map(|o| (o.option_id.0.to_string(), o.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("allow".to_owned(), PermissionOptionKind::AllowOnce),
            ("reject".to_owned(), PermissionOptionKind::RejectOnce)
        ]
    );
    responder
        .respond(RequestPermissionResponse::new(
            RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new("allow")),
        ))
        .unwrap();
    let r = finish(h).await;
    assert_eq!(r.stop_reason, StopReason::EndTurn);
    let mut answer = String::new();
    while let Ok(n) = e.updates.try_recv() {
        if let Some(("agent", t)) = text_of(&n.update) {
            answer.push_str(&t);
        }
    }
    assert_eq!(answer, "permission: selected allow");
}

#[tokio::test]
async fn load_replays_the_whole_history_while_a_turn_runs() {
    let d = start().await;
    let mut first = Editor::start(&d.dirs, &[]).await;
    let id = new_session(&first, d.dirs.path()).await;
    finish(spawn_prompt(&first, prompt(&id, "hello"))).await;
    let running = spawn_prompt(&first, prompt(&id, "wait for cancel"));
    until_text(&mut first, "agent", "waiting").await;

    // A second editor loads the session: the transcript, then the running turn.
    let mut second = Editor::start(&d.dirs, &[]).await;
    second
        .cx
        .send_request(LoadSessionRequest::new(
            id.clone(),
            d.dirs.path().to_path_buf(),
        ))
        .block_task()
        .await
        .expect("session/load");
    let mut history = Vec::new();
    while let Ok(n) = second.updates.try_recv() {
        if let Some(t) = text_of(&n.update) {
            history.push(t);
        }
    }
    let expected = [
        ("user", "hello"),
        ("agent", "echo: hello (prompt #1)"),
        ("user", "wait for cancel"),
    ];
    let got: Vec<(&str, &str)> = history.iter().map(|(k, t)| (*k, t.as_str())).collect();
    assert_eq!(got[..3], expected, "{history:?}");
    // The running turn's output so far follows, before or just after the answer.
    let mut rest: Vec<(&'static str, String)> = history[3..].to_vec();
    while !rest.iter().any(|(k, t)| *k == "agent" && t == "waiting") {
        if let Some(t) = text_of(&second.next_update().await.update) {
            rest.push(t);
        }
    }
    assert_eq!(
        rest.iter().filter(|(k, _)| *k == "agent").count(),
        1,
        "no duplicate: {rest:?}"
    );

    // The second editor cancels the turn the first one started.
    second
        .cx
        .send_notification(CancelNotification::new(id.clone()))
        .unwrap();
    let r = finish(running).await;
    assert_eq!(r.stop_reason, StopReason::Cancelled);
}

#[tokio::test]
async fn list_filters_by_cwd_with_titles_and_update_times() {
    let d = start().await;
    let e = Editor::start(&d.dirs, &[]).await;
    let a = d.dirs.path().join("project-a");
    let b = d.dirs.path().join("project-b");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let in_a = new_session(&e, &a).await;
    let in_b = new_session(&e, &b).await;
    finish(spawn_prompt(&e, prompt(&in_a, "first in a"))).await;
    finish(spawn_prompt(&e, prompt(&in_b, "first in b"))).await;

    let listed =
        e.cx.send_request(ListSessionsRequest::new().cwd(a.clone()))
            .block_task()
            .await
            .expect("session/list");
    assert_eq!(listed.sessions.len(), 1, "{listed:?}");
    let s = &listed.sessions[0];
    assert_eq!(s.session_id, in_a);
    assert_eq!(s.cwd, a);
    assert_eq!(s.title.as_deref(), Some("first in a"));
    assert!(s.updated_at.is_some());

    let all =
        e.cx.send_request(ListSessionsRequest::new())
            .block_task()
            .await
            .expect("session/list");
    let ids: Vec<_> = all.sessions.iter().map(|s| s.session_id.clone()).collect();
    assert!(ids.contains(&in_a) && ids.contains(&in_b));
}

#[tokio::test]
async fn an_editor_closed_mid_turn_detaches_and_a_new_one_sees_the_whole_answer() {
    let d = start().await;
    let mut first = Editor::start(&d.dirs, &["--agent", "slow"]).await;
    let id = new_session(&first, d.dirs.path()).await;
    let text = "a reply long enough to take the echo agent a little while to stream";
    let _pending = spawn_prompt(&first, prompt(&id, text));
    until_text(&mut first, "agent", "").await;
    let status = first.close().await;
    assert!(status.success(), "sessiond acp exits cleanly: {status}");

    // The turn goes on in the daemon; a new editor loads the session and sees all
    // of the answer (from the transcript, or the running turn then its end).
    let mut second = Editor::start(&d.dirs, &[]).await;
    second
        .cx
        .send_request(LoadSessionRequest::new(
            id.clone(),
            d.dirs.path().to_path_buf(),
        ))
        .block_task()
        .await
        .expect("session/load");
    let mut user_seen = false;
    let mut answer = String::new();
    while answer != text {
        let n = second.next_update().await;
        match text_of(&n.update) {
            Some(("user", t)) => {
                assert_eq!(t, text);
                user_seen = true;
            }
            Some(("agent", t)) => answer.push_str(&t),
            _ => {}
        }
        assert!(answer.len() <= text.len(), "no duplicate: {answer:?}");
    }
    assert!(user_seen);
}

/// `(current value, every value)` of a select config option.
fn select_of(options: &[SessionConfigOption], id: &str) -> (String, Vec<String>) {
    let o = options
        .iter()
        .find(|o| o.id.0.as_ref() == id)
        .unwrap_or_else(|| panic!("no {id} option in {options:?}"));
    let SessionConfigKind::Select(s) = &o.kind else {
        panic!("{id} is not a select");
    };
    let SessionConfigSelectOptions::Ungrouped(values) = &s.options else {
        panic!("{id} is grouped");
    };
    (
        s.current_value.0.to_string(),
        values.iter().map(|v| v.value.0.to_string()).collect(),
    )
}

#[tokio::test]
async fn config_options_set_the_model_and_switch_the_agent() {
    let d = start().await;
    let mut e = Editor::start(&d.dirs, &[]).await;
    let created =
        e.cx.send_request(NewSessionRequest::new(d.dirs.path().to_path_buf()))
            .block_task()
            .await
            .expect("session/new");
    let id = created.session_id;
    let options = created.config_options.expect("config options");
    let (provider, providers) = select_of(&options, "model_provider");
    assert_eq!(provider, "acp");
    assert_eq!(providers, ["acp", "echo", "slow"]);
    assert_eq!(select_of(&options, "model").0, "default");

    // `model` becomes the session's override, which the ACP agent gets as its model option.
    let set =
        e.cx.send_request(SetSessionConfigOptionRequest::new(
            id.clone(),
            "model",
            "large",
        ))
        .block_task()
        .await
        .expect("set model");
    assert_eq!(select_of(&set.config_options, "model").0, "large");
    finish(spawn_prompt(&e, prompt(&id, "hello"))).await;
    let state = d.dirs.path().join("agent-state");
    let applied = sessiond_tests::acp_support::logged(&state, "set_config_option");
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0]["value"], "large");

    // `model_provider` moves the session to the echo agent.
    e.cx.send_request(SetSessionConfigOptionRequest::new(
        id.clone(),
        "model_provider",
        "slow",
    ))
    .block_task()
    .await
    .expect("set model_provider");
    while e.updates.try_recv().is_ok() {}
    finish(spawn_prompt(&e, prompt(&id, "now echo"))).await;
    let mut answer = String::new();
    while let Ok(n) = e.updates.try_recv() {
        if let Some(("agent", t)) = text_of(&n.update) {
            answer.push_str(&t);
        }
    }
    assert_eq!(answer, "now echo");

    let unknown =
        e.cx.send_request(SetSessionConfigOptionRequest::new(
            id.clone(),
            "colour",
            "blue",
        ))
        .block_task()
        .await;
    assert!(unknown.is_err(), "an unknown option is refused");
}
