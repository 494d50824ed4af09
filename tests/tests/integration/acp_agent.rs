//! `kind = "acp"` agents: sessiond runs the crate-written `acp-test-agent` as a
//! session's agent over real stdio. A turn end to end, permission answered from a
//! second client, every cancel cause reaching the agent as `session/cancel`, the
//! model override and embedded attachments. The agent process's life (cancels it
//! ignores, deaths, restarts, stops) is in `acp_agent_process.rs`.

use serde_json::{json, Value};
use sessiond_protocol::params::{NewSessionParams, PromptParams, PromptResult};
use sessiond_protocol::{CancelCause, Event, StopReason};
use sessiond_tests::acp_support::{
    chunks, logged, new_acp, next, start, turn_events, wait_logged, waiting_turn,
};
use std::path::Path;

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
