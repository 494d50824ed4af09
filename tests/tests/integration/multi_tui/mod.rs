//! Many TUIs on one daemon: identity across reconnects, take-over seen by everyone,
//! identical fan-out to every subscriber, replay after a disconnect, pending requests
//! across a reconnect, a stalled subscriber that slows nobody, and the SDK's
//! `ReconnectingClient` through dropped connections and daemon restarts.
//!
//! Clients are the SDK and a hand-written WebSocket client (`sessiond_tests::raw_ws`). A
//! dropped connection is made with a relay: a Unix socket that forwards to the
//! daemon's and can cut every connection passing through it.

use futures::{Stream, StreamExt};
use serde_json::{json, Value};
use sessiond_client::protocol::params::ClientInfo;
use sessiond_client::{
    ConnectOptions, Endpoint, Error, EventEnvelope, ReconnectOptions, ReconnectingClient,
};
use sessiond_protocol::{codes, Event, SessionId, StopReason, TurnVerdict};
use sessiond_tests::raw_ws::RawWs;
use sessiond_tests::{new_session, wait_for, Daemon, WAIT};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

mod fan_out;
mod reconnect;

/// An echo agent slow enough that a turn is still streaming while the test acts.
const SLOW: &str = "[agents.slow]\nkind = \"echo\"\nchunk_chars = 1\nchunk_delay_ms = 2\n";

// ---- helpers ----

/// A Unix socket relay to the daemon whose connections can be cut.
struct Relay {
    _dir: tempfile::TempDir,
    path: PathBuf,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    async fn start(target: PathBuf) -> Relay {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let held = conns.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::UnixStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                held.lock().unwrap().push(task);
            }
        });
        Relay {
            _dir: dir,
            path,
            conns,
            accept,
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Drops every connection currently passing through (both ends close).
    fn cut(&self) {
        for task in self.conns.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// Reconnects quickly, so tests do not wait on the default backoff.
fn quick() -> ReconnectOptions {
    ReconnectOptions {
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(200),
        jitter: true,
        max_attempts: None,
    }
}

async fn reconnecting(socket: &Path, name: &str) -> ReconnectingClient {
    ReconnectingClient::connect(
        Endpoint::unix(socket),
        ConnectOptions::default(),
        quick(),
        ClientInfo {
            name: name.into(),
            version: None,
        },
        None,
    )
    .await
    .expect("reconnecting client connects")
}

/// The next event of an SDK stream, bounded by [`WAIT`].
async fn next<S>(events: &mut S) -> EventEnvelope
where
    S: Stream<Item = Result<EventEnvelope, Error>> + Unpin,
{
    match tokio::time::timeout(WAIT, events.next()).await {
        Ok(Some(Ok(env))) => env,
        Ok(Some(Err(e))) => panic!("event stream error: {e}"),
        Ok(None) => panic!("event stream ended"),
        Err(_) => panic!("timed out waiting for an event"),
    }
}

/// Events up to and including the `turns`-th `turn_complete`.
async fn until_complete<S>(events: &mut S, turns: usize) -> Vec<EventEnvelope>
where
    S: Stream<Item = Result<EventEnvelope, Error>> + Unpin,
{
    let mut out = Vec::new();
    let mut done = 0;
    while done < turns {
        let env = next(events).await;
        done += usize::from(matches!(env.event, Event::TurnComplete { .. }));
        out.push(env);
    }
    out
}

async fn raw_until_complete(ws: &mut RawWs) -> Vec<EventEnvelope> {
    let mut out = Vec::new();
    loop {
        let env = ws.next_event().await.expect("raw event");
        let done = matches!(env.event, Event::TurnComplete { .. });
        out.push(env);
        if done {
            return out;
        }
    }
}

fn assert_consecutive(events: &[EventEnvelope]) {
    for w in events.windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq + 1,
            "gap or duplicate between {:?} and {:?}",
            w[0].event,
            w[1].event
        );
    }
}

/// Consecutive seqs, except that a `resync {from_seq}` may jump ahead (its own seq is
/// `from_seq - 1`): no silent gap, no duplicate.
fn assert_continuous(events: &[EventEnvelope]) {
    for w in events.windows(2) {
        let jump = matches!(w[1].event, Event::Resync { from_seq } if from_seq == w[1].seq + 1 && w[1].seq > w[0].seq);
        assert!(
            jump || w[1].seq == w[0].seq + 1,
            "gap or duplicate between {} {:?} and {} {:?}",
            w[0].seq,
            w[0].event,
            w[1].seq,
            w[1].event
        );
    }
}

fn verdict(env: &EventEnvelope) -> &TurnVerdict {
    match &env.event {
        Event::TurnComplete { verdict } => verdict,
        other => panic!("expected turn_complete, got {other:?}"),
    }
}

fn text(n: usize) -> String {
    (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect()
}

/// A raw WebSocket client that initialized as a TUI.
async fn raw_tui(d: &Daemon) -> (RawWs, Value) {
    let mut ws = RawWs::connect(&d.socket()).await.unwrap();
    let init = ws
        .ok("initialize", json!({"protocol_version": 1}))
        .await
        .unwrap();
    (ws, init)
}

fn rpc_code(reply: &Value) -> i64 {
    reply["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("expected an error: {reply}"))
}

/// The daemon's resident memory, in KiB (`VmRSS` in `/proc/<pid>/status`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}
