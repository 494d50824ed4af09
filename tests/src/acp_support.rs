//! Helpers for the ACP tests: the crate-written test agent (`acp-test-agent`, built
//! with this package), a configuration that runs it, its log of what it received,
//! and the steps the ACP agent tests share (a daemon running it, a session, its
//! events).

use crate::{wait_for, Daemon, Dirs, WAIT};
use serde_json::Value;
use sessiond_client::{Client, EventStream};
use sessiond_protocol::params::NewSessionParams;
use sessiond_protocol::{Event, SessionId, TurnId, TurnVerdict};
use std::path::{Path, PathBuf};

/// The test agent binary, beside the daemon under test.
pub fn test_agent() -> PathBuf {
    let bin = crate::binaries_dir().join("acp-test-agent");
    assert!(
        bin.exists(),
        "{} not found: build it first (`cargo build -p sessiond-tests --bin acp-test-agent`)",
        bin.display()
    );
    bin
}

/// A `[agents.NAME]` table running the test agent with its state in `state`;
/// `extra` lines are added to the table.
pub fn agent_table(name: &str, state: &Path, extra: &str) -> String {
    format!(
        "[agents.{name}]\nkind = \"acp\"\ncommand = [{}]\ncancel_grace_ms = 1000\n{extra}\n[agents.{name}.env]\nACP_TEST_STATE = {}\n",
        Value::String(test_agent().display().to_string()),
        Value::String(state.display().to_string()),
    )
}

/// The entries the test agent logged so far.
pub fn agent_log(state: &Path) -> Vec<Value> {
    std::fs::read_to_string(state.join("log.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The logged entries of one kind (`initialize`, `new`, `load`, `prompt`, `cancel`, ...).
pub fn logged(state: &Path, event: &str) -> Vec<Value> {
    agent_log(state)
        .into_iter()
        .filter(|e| e["event"] == event)
        .collect()
}

pub use editor::Editor;

/// An editor driving `sessiond acp` through the crate's client side.
mod editor {
    use crate::Dirs;
    use agent_client_protocol::schema::ProtocolVersion;
    use agent_client_protocol::v1::schema::{
        InitializeRequest, InitializeResponse, RequestPermissionRequest, RequestPermissionResponse,
        SessionNotification,
    };
    use agent_client_protocol::v1::ConnectionTo;
    use agent_client_protocol::{Agent, ByteStreams, Client, Responder, V1};
    use std::process::Stdio;
    use tokio::sync::{mpsc, oneshot};
    use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

    /// A permission request the bridge sent, with the way to answer it.
    pub type Asked = (
        RequestPermissionRequest,
        Responder<RequestPermissionResponse, V1>,
    );

    /// A running `sessiond acp` and the editor's side of its connection.
    pub struct Editor {
        pub cx: ConnectionTo<Agent>,
        pub updates: mpsc::UnboundedReceiver<SessionNotification>,
        pub asks: mpsc::UnboundedReceiver<Asked>,
        pub init: InitializeResponse,
        child: Option<tokio::process::Child>,
        stop: Option<oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Editor {
        /// Starts `sessiond acp ARGS` on the daemon tree `dirs` and initializes it.
        pub async fn start(dirs: &Dirs, args: &[&str]) -> Editor {
            let mut cmd = tokio::process::Command::from(dirs.command());
            cmd.arg("acp")
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true);
            let mut child = cmd.spawn().expect("spawn sessiond acp");
            let stdin = child.stdin.take().expect("stdin");
            let stdout = child.stdout.take().expect("stdout");
            let (up_tx, updates) = mpsc::unbounded_channel();
            let (ask_tx, asks) = mpsc::unbounded_channel();
            let (cx_tx, cx_rx) = oneshot::channel();
            let (stop, stop_rx) = oneshot::channel::<()>();
            let task = tokio::spawn(async move {
                let _ = Client
                    .v1()
                    .name("test-editor")
                    .on_receive_notification(
                        async move |n: SessionNotification, _cx| {
                            let _ = up_tx.send(n);
                            Ok(())
                        },
                        agent_client_protocol::on_receive_notification!(),
                    )
                    .on_receive_request(
                        async move |r: RequestPermissionRequest, responder, _cx| {
                            let _ = ask_tx.send((r, responder));
                            Ok(())
                        },
                        agent_client_protocol::on_receive_request!(),
                    )
                    .connect_with(
                        ByteStreams::new(stdin.compat_write(), stdout.compat()),
                        async move |cx| {
                            let _ = cx_tx.send(cx);
                            let _ = stop_rx.await;
                            Ok(())
                        },
                    )
                    .await;
            });
            let cx = cx_rx.await.expect("acp connection");
            let init = tokio::time::timeout(
                crate::WAIT,
                cx.send_request(InitializeRequest::new(ProtocolVersion::V1))
                    .block_task(),
            )
            .await
            .expect("initialize in time")
            .expect("initialize");
            Editor {
                cx,
                updates,
                asks,
                init,
                child: Some(child),
                stop: Some(stop),
                task,
            }
        }

        /// The next update, bounded by [`crate::WAIT`].
        pub async fn next_update(&mut self) -> SessionNotification {
            tokio::time::timeout(crate::WAIT, self.updates.recv())
                .await
                .expect("an update in time")
                .expect("the connection is open")
        }

        /// The next permission request, bounded by [`crate::WAIT`].
        pub async fn next_ask(&mut self) -> Asked {
            tokio::time::timeout(crate::WAIT, self.asks.recv())
                .await
                .expect("a permission request in time")
                .expect("the connection is open")
        }

        /// Closes the bridge's stdin (the editor goes away) and waits for it to exit.
        pub async fn close(mut self) -> std::process::ExitStatus {
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
            let _ = tokio::time::timeout(crate::WAIT, &mut self.task).await;
            let mut child = self.child.take().expect("running");
            tokio::time::timeout(crate::WAIT, child.wait())
                .await
                .expect("sessiond acp exits when its stdin closes")
                .expect("wait")
        }
    }

    impl Drop for Editor {
        fn drop(&mut self) {
            self.task.abort();
        }
    }
}

/// A daemon whose `acp` agent keeps its state in `<tree>/agent-state`.
pub async fn start(extra_top: &str, extra_agent: &str) -> (Daemon, PathBuf) {
    let dirs = Dirs::new();
    let state = dirs.path().join("agent-state");
    std::fs::create_dir_all(&state).unwrap();
    let config = format!("{extra_top}\n{}", agent_table("acp", &state, extra_agent));
    std::fs::write(dirs.config_path(), config).unwrap();
    let d = Daemon::start_in(dirs).await.expect("daemon starts");
    (d, state)
}

/// A new session of the `acp` agent working in `cwd`.
pub async fn new_acp(c: &Client, cwd: &Path) -> SessionId {
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

/// The next event of the stream (fails the test after [`WAIT`]).
pub async fn next(events: &mut EventStream) -> Event {
    match tokio::time::timeout(WAIT, events.next_event()).await {
        Ok(Some(Ok(env))) => env.event,
        Ok(Some(Err(e))) => panic!("event stream error: {e}"),
        Ok(None) => panic!("event stream ended: {:?}", events.end_reason()),
        Err(_) => panic!("timed out waiting for an event"),
    }
}

/// Every event of `turn` up to and including its `turn_complete`.
pub async fn turn_events(events: &mut EventStream, turn: &TurnId) -> (Vec<Event>, TurnVerdict) {
    let mut seen = Vec::new();
    loop {
        match next(events).await {
            Event::TurnComplete { verdict } if verdict.turn_id == *turn => return (seen, verdict),
            e => seen.push(e),
        }
    }
}

/// Waits for the first chunk of `turn` (the agent is then inside its prompt).
pub async fn first_chunk(events: &mut EventStream, turn: &TurnId) -> String {
    loop {
        match next(events).await {
            Event::AgentMessageChunk { turn_id, text } if turn_id == *turn => return text,
            Event::TurnComplete { verdict } => panic!("turn ended early: {verdict:?}"),
            _ => {}
        }
    }
}

/// The reply text of `events`, chunks joined.
pub fn chunks(events: &[Event]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            Event::AgentMessageChunk { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// Waits until the agent logged `n` entries of `event`, and returns them.
pub async fn wait_logged(state: &Path, event: &str, n: usize) -> Vec<Value> {
    wait_for(
        &format!("{n} `{event}` entries in the agent log"),
        || async {
            let found = logged(state, event);
            (found.len() >= n).then_some(found)
        },
    )
    .await
}

/// Starts a "wait" turn and returns once the agent is inside it.
pub async fn waiting_turn(c: &Client, id: &SessionId, events: &mut EventStream) -> TurnId {
    let turn = c.prompt_text(id, "wait for cancel").await.unwrap().turn_id;
    assert_eq!(first_chunk(events, &turn).await, "waiting");
    turn
}
