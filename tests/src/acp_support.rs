//! Helpers for the ACP tests: the crate-written test agent (`acp-test-agent`, built
//! with this package), a configuration that runs it, and its log of what it received.

use serde_json::Value;
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
