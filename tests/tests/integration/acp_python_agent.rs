//! `kind = "acp"` against an agent written with another implementation of ACP: the
//! Python SDK (`agent-client-protocol` from PyPI), installed on first use into
//! `target/acp-py` and kept there. Skipped, with a message, only when the package
//! cannot be installed (no pip, or no network).

use serde_json::Value;
use sessiond_protocol::params::NewSessionParams;
use sessiond_protocol::{CancelCause, Event, StopReason};
use sessiond_tests::{Daemon, WAIT};
use std::path::PathBuf;

const AGENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/acp_py_agent.py");
const PACKAGE: &str = "agent-client-protocol==0.12.1";

/// The directory the Python SDK is installed in, installing it when missing.
fn python_sdk() -> Result<PathBuf, String> {
    sessiond_tests::install_once(
        "acp-py",
        "acp/__init__.py",
        "python3",
        &[
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
        ],
        PACKAGE,
    )
}

#[tokio::test]
async fn a_python_sdk_agent_answers_and_honours_cancel() {
    let sdk = match python_sdk() {
        Ok(dir) => dir,
        Err(why) => {
            eprintln!("skipped: the Python ACP SDK cannot be installed: {why}");
            return;
        }
    };
    let config = format!(
        "[agents.py]\nkind = \"acp\"\ncommand = [\"python3\", {}]\ncancel_grace_ms = 5000\n[agents.py.env]\nPYTHONPATH = {}\n",
        Value::String(AGENT.to_owned()),
        Value::String(sdk.display().to_string()),
    );
    let d = Daemon::start_with(&config).await;
    let c = d.tui().await;
    let id = c
        .new_session(NewSessionParams {
            agent: Some("py".into()),
            cwd: Some(d.dirs.path().display().to_string()),
            keep_siblings: Some(true),
            ..Default::default()
        })
        .await
        .unwrap()
        .session
        .session_id;
    let verdict = c.prompt_wait(&id, "hello from rust").await.unwrap();
    assert_eq!(verdict.stop_reason, StopReason::EndTurn, "{verdict:?}");
    assert_eq!(verdict.content, "py: hello from rust");

    let mut events = c.subscribe(&id, None).await.unwrap();
    let turn = c.prompt_text(&id, "wait please").await.unwrap().turn_id;
    loop {
        let ev = tokio::time::timeout(WAIT, events.next_event())
            .await
            .expect("an event in time")
            .expect("open")
            .expect("event");
        match ev.event {
            Event::AgentMessageChunk { text, .. } if text == "py waiting" => break,
            Event::TurnComplete { verdict } => panic!("ended early: {verdict:?}"),
            _ => {}
        }
    }
    c.cancel(&id).await.unwrap();
    loop {
        let ev = tokio::time::timeout(WAIT, events.next_event())
            .await
            .expect("an event in time")
            .expect("open")
            .expect("event");
        if let Event::TurnComplete { verdict } = ev.event {
            assert_eq!(verdict.turn_id, turn);
            assert_eq!(verdict.cancel_cause, Some(CancelCause::ClientRpc));
            break;
        }
    }
    // The agent answered the cancel itself (within the grace period) and is still
    // there for the next turn.
    let turn = c.prompt_text(&id, "again").await.unwrap().turn_id;
    loop {
        let ev = tokio::time::timeout(WAIT, events.next_event())
            .await
            .expect("an event in time")
            .expect("open")
            .expect("event");
        match ev.event {
            Event::AgentUpdate { kind, .. } => {
                assert_ne!(kind, "session_started_fresh", "the agent was restarted")
            }
            Event::TurnComplete { verdict } if verdict.turn_id == turn => {
                assert_eq!(verdict.content, "py: again");
                break;
            }
            _ => {}
        }
    }
}
