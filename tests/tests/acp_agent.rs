//! `kind = "acp"` agents: sessiond runs the crate-written `acp-test-agent` as a
//! session's agent over real stdio. A turn end to end, permission answered from a
//! second client, every cancel cause reaching the agent as `session/cancel`, an agent
//! that ignores the cancel, an agent that dies mid-turn, and daemon restarts followed
//! by a turn that loads the agent's session.

use serde_json::{json, Value};
use sessiond_client::{Client, EventStream};
use sessiond_protocol::params::{NewSessionParams, PromptParams, PromptResult};
use sessiond_protocol::{CancelCause, Event, SessionId, StopReason, TurnId, TurnVerdict};
use sessiond_tests::acp_support::{agent_table, logged};
use sessiond_tests::{wait_for, Daemon, Dirs, WAIT};
use std::path::{Path, PathBuf};

/// A daemon whose `acp` agent keeps its state in `<tree>/agent-state`.
async fn start(extra_top: &str, extra_agent: &str) -> (Daemon, PathBuf) {
    let dirs = Dirs::new();
    let state = dirs.path().join("agent-state");
    std::fs::create_dir_all(&state).unwrap();
    let config = format!("{extra_top}\n{}", agent_table("acp", &state, extra_agent));
    std::fs::write(dirs.config_path(), config).unwrap();
    let d = Daemon::start_in(dirs).await.expect("daemon starts");
    (d, state)
}

async fn new_acp(c: &Client, cwd: &Path) -> SessionId {
    c.new_session(NewSessionParams {
        agent: Some("acp".into()),
        cwd: Some(cwd.display().to_string()),
        keep_siblings: Some(true),
        ..Default::default()
    })
    .await
    .expect("session/new")
    .session
    .session_id
}

async fn next(events: &mut EventStream) -> Event {
    match tokio::time::timeout(WAIT, events.next_event()).await {
        Ok(Some(Ok(env))) => env.event,
        Ok(Some(Err(e))) => panic!("event stream error: {e}"),
        Ok(None) => panic!("event stream ended: {:?}", events.end_reason()),
        Err(_) => panic!("timed out waiting for an event"),
    }
}

/// Every event of `turn` up to and including its `turn_complete`.
async fn turn_events(events: &mut EventStream, turn: &TurnId) -> (Vec<Event>, TurnVerdict) {
    let mut seen = Vec::new();
    loop {
        match next(events).await {
            Event::TurnComplete { verdict } if verdict.turn_id == *turn => return (seen, verdict),
            e => seen.push(e),
        }
    }
}

/// Waits for the first chunk of `turn` (the agent is then inside its prompt).
async fn first_chunk(events: &mut EventStream, turn: &TurnId) -> String {
    loop {
        match next(events).await {
            Event::AgentMessageChunk { turn_id, text } if turn_id == *turn => return text,
            Event::TurnComplete { verdict } => panic!("turn ended early: {verdict:?}"),
            _ => {}
        }
    }
}

fn chunks(events: &[Event]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            Event::AgentMessageChunk { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

async fn wait_logged(state: &Path, event: &str, n: usize) -> Vec<Value> {
    wait_for(
        &format!("{n} `{event}` entries in the agent log"),
        || async {
            let found = logged(state, event);
            (found.len() >= n).then_some(found)
        },
    )
    .await
}

#[tokio::test]
async fn a_turn_streams_thoughts_tool_calls_plan_and_usage() {
    let (d, state) = start("", "").await;
    let c = d.tui().await;
    let id = new_acp(&c, d.dirs.path()).await;
    let mut events = c.subscribe(&id, None).await.unwrap();

    let turn = c.prompt_text(&id, "hello").await.unwrap().turn_id;
    let (seen, verdict) = turn_events(&mut events, &turn).await;
    assert_eq!(verdict.stop_reason, StopReason::EndTurn, "{verdict:?}");
    assert_eq!(verdict.content, "echo: hello (prompt #1)");
    assert_eq!(chunks(&seen), verdict.content);
    // Usage comes from the prompt response: input = the prompt, output = the reply.
    assert_eq!(verdict.usage.input_tokens, 5);
    assert_eq!(verdict.usage.output_tokens, verdict.content.len() as u64);
    assert!(seen.iter().any(|e| matches!(e,
        Event::AgentThoughtChunk { text, .. } if text == "considering the prompt")));
    assert!(seen.iter().any(|e| matches!(e,
        Event::ToolCall { tool_call_id, name, input, .. }
            if tool_call_id == "t-read" && name == "read notes" && input["rawInput"] == json!({"path": "notes"}))));
    assert!(seen.iter().any(|e| matches!(e,
        Event::ToolResult { tool_call_id, output, is_error: false, .. }
            if tool_call_id == "t-read" && *output == json!({"lines": 3}))));
    let plan = seen.iter().find_map(|e| match e {
        Event::Plan { entries, .. } => Some(entries.clone()),
        _ => None,
    });
    let plan = plan.expect("a plan event");
    assert_eq!(plan[0]["content"], "read");
    assert_eq!(plan[1]["status"], "in_progress");
    assert!(
        seen.iter().any(|e| matches!(e,
            Event::AgentUpdate { kind, data, .. }
                if kind == "available_commands_update" && data["availableCommands"] == json!([]))),
        "updates without an event of their own are passed on: {seen:?}"
    );

    // The agent was started in the session's cwd, once: the second turn reuses it.
    let turn = c.prompt_text(&id, "again").await.unwrap().turn_id;
    let (_, verdict) = turn_events(&mut events, &turn).await;
    assert_eq!(verdict.content, "echo: again (prompt #2)");
    assert_eq!(logged(&state, "initialize").len(), 1);
    let new = logged(&state, "new");
    assert_eq!(new.len(), 1);
    assert_eq!(new[0]["cwd"], json!(d.dirs.path().display().to_string()));

    // A refusal is the verdict's stop reason.
    let turn = c.prompt_text(&id, "refuse this").await.unwrap().turn_id;
    let (_, verdict) = turn_events(&mut events, &turn).await;
    assert_eq!(verdict.stop_reason, StopReason::Refusal, "{verdict:?}");
}

#[tokio::test]
async fn permission_is_answered_from_a_second_client() {
    let (d, state) = start("", "").await;
    let a = d.tui().await;
    let id = new_acp(&a, d.dirs.path()).await;
    let b = d.tui().await;
    let mut events = b.subscribe(&id, None).await.unwrap();

    for (answer, expected) in [
        (
            json!({"outcome": "selected", "option_id": "allow"}),
            "permission: selected allow",
        ),
        // A bare string selects the option with that id.
        (json!("reject"), "permission: selected reject"),
    ] {
        let turn = a
            .prompt_text(&id, "permission please")
            .await
            .unwrap()
            .turn_id;
        let (request_id, options) = loop {
            match next(&mut events).await {
                Event::Request {
                    turn_id,
                    request_id,
                    prompt,
                    options,
                    ..
                } if turn_id == turn => {
                    assert_eq!(prompt, "write notes.txt");
                    break (request_id, options);
                }
                Event::TurnComplete { verdict } => panic!("turn ended early: {verdict:?}"),
                _ => {}
            }
        };
        assert_eq!(
            options,
            json!([
                {"option_id": "allow", "label": "Allow", "kind": "allow_once"},
                {"option_id": "reject", "label": "Reject", "kind": "reject_once"}
            ])
        );
        // The second client takes the session over and answers.
        b.load_session(&id, true, true).await.unwrap();
        b.respond(&id, Some(request_id), answer).await.unwrap();
        let (seen, verdict) = turn_events(&mut events, &turn).await;
        assert_eq!(verdict.stop_reason, StopReason::EndTurn, "{verdict:?}");
        assert_eq!(verdict.content, expected);
        let allowed = expected.ends_with("allow");
        assert!(seen.iter().any(|e| matches!(e,
            Event::ToolResult { tool_call_id, is_error, .. }
                if tool_call_id == "t-write" && *is_error != allowed)));
        // Hand the session back for the next round.
        a.load_session(&id, true, true).await.unwrap();
    }
    let outcomes: Vec<Value> = wait_logged(&state, "permission", 2)
        .await
        .into_iter()
        .map(|e| e["outcome"].clone())
        .collect();
    assert_eq!(
        outcomes,
        [json!("selected allow"), json!("selected reject")]
    );
}

/// Starts a "wait" turn and returns once the agent is inside it.
async fn waiting_turn(c: &Client, id: &SessionId, events: &mut EventStream) -> TurnId {
    let turn = c.prompt_text(id, "wait for cancel").await.unwrap().turn_id;
    assert_eq!(first_chunk(events, &turn).await, "waiting");
    turn
}

fn cancel_causes(state: &Path) -> Vec<Value> {
    logged(state, "cancel")
        .into_iter()
        .map(|e| e["meta"]["sessiond"]["cancel_cause"].clone())
        .collect()
}

#[tokio::test]
async fn every_cancel_cause_reaches_the_agent_as_session_cancel() {
    let (d, state) = start("max_turn_secs = 3", "").await;
    let c = d.tui().await;
    let id = new_acp(&c, d.dirs.path()).await;
    let mut events = c.subscribe(&id, None).await.unwrap();

    // client_rpc: the agent answers `cancelled` and stays up for the next turn.
    let turn = waiting_turn(&c, &id, &mut events).await;
    c.cancel(&id).await.unwrap();
    let (_, verdict) = turn_events(&mut events, &turn).await;
    assert_eq!(verdict.stop_reason, StopReason::Cancelled);
    assert_eq!(verdict.cancel_cause, Some(CancelCause::ClientRpc));

    // superseded: an interrupting prompt.
    let turn = waiting_turn(&c, &id, &mut events).await;
    let next_turn = c
        .prompt(PromptParams {
            session_id: id.clone(),
            text: "after the interrupt".into(),
            attachments: None,
            interrupt: Some(true),
            wait: None,
        })
        .await
        .unwrap();
    let (_, verdict) = turn_events(&mut events, &turn).await;
    assert_eq!(verdict.cancel_cause, Some(CancelCause::Superseded));
    let PromptResult::Accepted(next_turn) = next_turn else {
        panic!("the interrupting prompt is accepted");
    };
    let (_, verdict) = turn_events(&mut events, &next_turn.turn_id).await;
    assert_eq!(verdict.content, "echo: after the interrupt (prompt #1)");

    // timeout: max_turn_secs.
    let turn = waiting_turn(&c, &id, &mut events).await;
    let (_, verdict) = turn_events(&mut events, &turn).await;
    assert_eq!(verdict.cancel_cause, Some(CancelCause::Timeout));
    assert_eq!(
        logged(&state, "initialize").len(),
        1,
        "one agent process throughout"
    );

    // session_removed: closing the session.
    let turn = waiting_turn(&c, &id, &mut events).await;
    c.close_session(&id).await.unwrap();
    let _ = turn;
    wait_logged(&state, "cancel", 4).await;

    // admin_kill.
    let id2 = new_acp(&c, d.dirs.path()).await;
    let mut events2 = c.subscribe(&id2, None).await.unwrap();
    waiting_turn(&c, &id2, &mut events2).await;
    let admin = d.client().await;
    admin.admin_kill(&id2).await.unwrap();
    wait_logged(&state, "cancel", 5).await;

    // shutdown: stopping the daemon.
    let id3 = new_acp(&c, d.dirs.path()).await;
    let mut events3 = c.subscribe(&id3, None).await.unwrap();
    waiting_turn(&c, &id3, &mut events3).await;
    let mut d = d;
    assert!(d.sigterm().success());
    wait_logged(&state, "cancel", 6).await;

    assert_eq!(
        cancel_causes(&state),
        [
            json!("client_rpc"),
            json!("superseded"),
            json!("timeout"),
            json!("session_removed"),
            json!("admin_kill"),
            json!("shutdown")
        ]
    );
}

#[tokio::test]
async fn an_agent_ignoring_cancel_is_ended_and_the_next_turn_loads_its_session() {
    let (d, state) = start("", "").await;
    let c = d.tui().await;
    let id = new_acp(&c, d.dirs.path()).await;
    let mut events = c.subscribe(&id, None).await.unwrap();
    let turn = c.prompt_text(&id, "hello").await.unwrap().turn_id;
    turn_events(&mut events, &turn).await;

    let turn = c.prompt_text(&id, "stubborn").await.unwrap().turn_id;
    assert_eq!(first_chunk(&mut events, &turn).await, "not stopping");
    c.cancel(&id).await.unwrap();
    let (_, verdict) = turn_events(&mut events, &turn).await;
    assert_eq!(verdict.stop_reason, StopReason::Cancelled);
    assert_eq!(verdict.cancel_cause, Some(CancelCause::ClientRpc));
    let first_pid = logged(&state, "initialize")[0]["pid"].as_i64().unwrap();
    wait_for("the stubborn agent's process to be gone", || async {
        // SAFETY: signal 0 only checks that the process exists.
        (unsafe { libc::kill(first_pid as i32, 0) } != 0).then_some(())
    })
    .await;

    let turn = c.prompt_text(&id, "still there?").await.unwrap().turn_id;
    let (_, verdict) = turn_events(&mut events, &turn).await;
    assert_eq!(verdict.content, "echo: still there? (prompt #2)");
    assert_eq!(logged(&state, "initialize").len(), 2);
    assert_eq!(logged(&state, "load").len(), 1);
}

#[tokio::test]
async fn an_agent_dying_mid_turn_fails_the_turn_and_the_next_turn_restarts_it() {
    let (d, state) = start("", "").await;
    let c = d.tui().await;
    let id = new_acp(&c, d.dirs.path()).await;
    let mut events = c.subscribe(&id, None).await.unwrap();
    let turn = c.prompt_text(&id, "hello").await.unwrap().turn_id;
    turn_events(&mut events, &turn).await;

    // The agent exits on its own: the error carries its stderr.
    let turn = c.prompt_text(&id, "crash now").await.unwrap().turn_id;
    let (_, verdict) = turn_events(&mut events, &turn).await;
    assert_eq!(verdict.stop_reason, StopReason::Failed, "{verdict:?}");
    let error = verdict.error.clone().unwrap_or_default();
    assert!(error.contains("exited during the turn"), "{error}");
    assert!(error.contains("exit status: 3"), "{error}");
    assert!(error.contains("crashing on purpose"), "{error}");

    // The agent is killed from outside while it waits.
    let turn = waiting_turn(&c, &id, &mut events).await;
    let inits = logged(&state, "initialize");
    assert_eq!(inits.len(), 2, "the crashed agent was started again");
    let pid = inits[1]["pid"].as_i64().unwrap() as i32;
    // SAFETY: killing the test agent process this test started through the daemon.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let (_, verdict) = turn_events(&mut events, &turn).await;
    assert_eq!(verdict.stop_reason, StopReason::Failed, "{verdict:?}");
    assert!(verdict.error.unwrap_or_default().contains("signal: 9"));

    // The next turn starts it once more and loads the session it had.
    let turn = c.prompt_text(&id, "back?").await.unwrap().turn_id;
    let (_, verdict) = turn_events(&mut events, &turn).await;
    assert_eq!(verdict.stop_reason, StopReason::EndTurn, "{verdict:?}");
    assert_eq!(verdict.content, "echo: back? (prompt #2)");
    assert_eq!(logged(&state, "load").len(), 2);
}

#[tokio::test]
async fn after_a_daemon_restart_a_turn_loads_the_agent_session() {
    let (d, state) = start("", "").await;
    let c = d.tui().await;
    let id = new_acp(&c, d.dirs.path()).await;
    c.prompt_wait(&id, "remember me").await.unwrap();
    let acp_id = logged(&state, "new")[0]["session"].clone();
    drop(c);

    let d = d.restart().await;
    let c = d.tui().await;
    c.load_session(&id, true, true).await.unwrap();
    let mut events = c.subscribe(&id, None).await.unwrap();
    let turn = c.prompt_text(&id, "and now?").await.unwrap().turn_id;
    let (seen, verdict) = turn_events(&mut events, &turn).await;
    assert_eq!(verdict.stop_reason, StopReason::EndTurn, "{verdict:?}");
    assert_eq!(verdict.content, "echo: and now? (prompt #2)");
    // The history the agent replayed on load is not published again.
    assert_eq!(chunks(&seen), verdict.content);
    let loads = logged(&state, "load");
    assert_eq!(loads.len(), 1);
    assert_eq!(loads[0]["session"], acp_id);
    assert_eq!(logged(&state, "new").len(), 1);
}

#[tokio::test]
async fn an_agent_that_cannot_load_starts_fresh_and_says_so() {
    // The test agent stops advertising `loadSession` with ACP_TEST_NO_LOAD set.
    let dirs = Dirs::new();
    let state = dirs.path().join("agent-state");
    std::fs::create_dir_all(&state).unwrap();
    let table = agent_table("acp", &state, "").replace(
        "[agents.acp.env]\n",
        "[agents.acp.env]\nACP_TEST_NO_LOAD = \"1\"\n",
    );
    std::fs::write(dirs.config_path(), table).unwrap();
    let d = Daemon::start_in(dirs).await.unwrap();
    let c = d.tui().await;
    let id = new_acp(&c, d.dirs.path()).await;
    c.prompt_wait(&id, "one").await.unwrap();
    drop(c);

    let d = d.restart().await;
    let c = d.tui().await;
    c.load_session(&id, true, true).await.unwrap();
    let mut events = c.subscribe(&id, None).await.unwrap();
    let turn = c.prompt_text(&id, "two").await.unwrap().turn_id;
    let (seen, verdict) = turn_events(&mut events, &turn).await;
    assert_eq!(verdict.content, "echo: two (prompt #1)");
    assert!(
        seen.iter().any(|e| matches!(e,
            Event::AgentUpdate { kind, .. } if kind == "session_started_fresh")),
        "{seen:?}"
    );
    assert_eq!(logged(&state, "new").len(), 2);
    assert!(logged(&state, "load").is_empty());
}

/// True once `pid` has exited (gone, or a zombie waiting to be reaped).
fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

#[tokio::test]
async fn the_agent_process_ends_when_its_session_leaves_memory() {
    let (d, state) = start("", "").await;
    let c = d.tui().await;
    let mut pids = Vec::new();
    for n in 1..=3 {
        let id = new_acp(&c, d.dirs.path()).await;
        c.prompt_wait(&id, "hello").await.unwrap();
        let pid = wait_logged(&state, "initialize", n).await[n - 1]["pid"]
            .as_i64()
            .unwrap() as i32;
        assert!(!process_gone(pid), "the agent stays up between turns");
        match n {
            1 => {
                c.close_session(&id).await.unwrap();
            }
            2 => {
                c.delete_session(&id).await.unwrap();
            }
            _ => {}
        }
        pids.push(pid);
    }
    for pid in &pids[..2] {
        wait_for("the closed or deleted session's agent to end", || async {
            process_gone(*pid).then_some(())
        })
        .await;
    }
    assert!(!process_gone(pids[2]));
    let mut d = d;
    assert!(d.sigterm().success());
    wait_for("the agent to end with the daemon", || async {
        process_gone(pids[2]).then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_model_override_is_applied_through_the_agent_model_option() {
    let (d, state) = start("", "").await;
    let c = d.tui().await;
    let id = c
        .new_session(NewSessionParams {
            agent: Some("acp".into()),
            cwd: Some(d.dirs.path().display().to_string()),
            keep_siblings: Some(true),
            overrides: Some(sessiond_protocol::Overrides {
                model: Some("large".into()),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .session
        .session_id;
    c.prompt_wait(&id, "one").await.unwrap();
    let set = logged(&state, "set_config_option");
    assert_eq!(set.len(), 1);
    assert_eq!(set[0]["config_id"], "model");
    assert_eq!(set[0]["value"], "large");

    // Unchanged: not sent again. Changed: sent before the next prompt.
    c.prompt_wait(&id, "two").await.unwrap();
    assert_eq!(logged(&state, "set_config_option").len(), 1);
    c.configure(
        &id,
        sessiond_protocol::params::OverridesPatch {
            model: sessiond_protocol::Patch::Set("small".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    c.prompt_wait(&id, "three").await.unwrap();
    let set = logged(&state, "set_config_option");
    assert_eq!(set.len(), 2);
    assert_eq!(set[1]["value"], "small");
    let prompts = logged(&state, "prompt");
    assert_eq!(prompts.len(), 3, "the option is set before the prompt");
}

#[tokio::test]
async fn attachments_are_embedded_for_an_agent_that_takes_embedded_context() {
    let (d, state) = start("", "").await;
    let c = d.tui().await;
    let id = new_acp(&c, d.dirs.path()).await;
    let upload = c
        .upload_bytes(
            &id,
            "notes.txt",
            Some("text/plain".into()),
            b"remember the milk",
        )
        .await
        .unwrap();
    let verdict = match c
        .prompt(PromptParams {
            session_id: id.clone(),
            text: "read this".into(),
            attachments: Some(vec![upload.ref_id.clone()]),
            interrupt: None,
            wait: Some(true),
        })
        .await
        .unwrap()
    {
        PromptResult::Finished(v) => v,
        PromptResult::Accepted(a) => panic!("expected a verdict, got {a:?}"),
    };
    assert_eq!(verdict.stop_reason, StopReason::EndTurn, "{verdict:?}");
    let text = logged(&state, "prompt")[0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(text.starts_with("read this"), "{text}");
    assert!(
        text.contains(&format!(
            "<embedded file://{} remember the milk>",
            upload.workspace_path
        )),
        "{text}"
    );
}

#[tokio::test]
async fn an_agent_that_died_between_turns_is_started_again_for_the_next_one() {
    let (d, state) = start("", "").await;
    let c = d.tui().await;
    let id = new_acp(&c, d.dirs.path()).await;
    c.prompt_wait(&id, "first").await.unwrap();
    let pid = logged(&state, "initialize")[0]["pid"].as_i64().unwrap() as i32;
    // SAFETY: killing the test agent process this test started through the daemon.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_for("the agent to be gone", || async {
        process_gone(pid).then_some(())
    })
    .await;
    let verdict = c.prompt_wait(&id, "second").await.unwrap();
    assert_eq!(verdict.stop_reason, StopReason::EndTurn, "{verdict:?}");
    assert_eq!(verdict.content, "echo: second (prompt #2)");
    assert_eq!(logged(&state, "load").len(), 1);
}

/// A stop does not wait for an agent that ignores the cancel longer than the
/// agent's `cancel_grace_ms`: the daemon exits, and the stubborn turn was recorded
/// cancelled with cause `shutdown` (no crash recovery needed after the restart).
#[tokio::test]
async fn a_stop_with_an_agent_ignoring_cancel_still_ends_and_records_the_turn() {
    let (mut d, _state) = start("", "").await;
    let c = d.tui().await;
    let id = new_acp(&c, d.dirs.path()).await;
    let mut events = c.subscribe(&id, None).await.unwrap();
    let turn = c.prompt_text(&id, "stubborn").await.unwrap().turn_id;
    assert_eq!(first_chunk(&mut events, &turn).await, "not stopping");
    let st = d.sigterm();
    assert!(st.success(), "exit status {st}");
    let d = d.restart().await;
    assert!(
        !d.log().contains("turn interrupted by the previous stop"),
        "{}",
        d.log()
    );
    let c = d.tui().await;
    let mut events = c.subscribe(&id, Some(0)).await.unwrap();
    let (_, verdict) = turn_events(&mut events, &turn).await;
    assert_eq!(verdict.stop_reason, StopReason::Cancelled);
    assert_eq!(verdict.cancel_cause, Some(CancelCause::Shutdown));
}
