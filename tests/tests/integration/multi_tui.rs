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

// ---- identity and reconnect ----

#[tokio::test]
async fn a_reconnecting_tui_survives_a_dropped_connection_mid_turn_and_keeps_ownership() {
    let d = Daemon::start_with(SLOW).await;
    let relay = Relay::start(d.socket()).await;
    let rc = reconnecting(relay.path(), "tui-a").await;
    let id = new_session(&rc.client().await.unwrap(), "slow").await;
    let watcher = d.client().await;
    let mut reference = watcher.subscribe(&id, None).await.unwrap();
    let mut events = rc.subscribe(&id, None).await.unwrap();
    let prompt = text(400);
    rc.client()
        .await
        .unwrap()
        .prompt_text(&id, prompt.clone())
        .await
        .unwrap();

    let mut got = Vec::new();
    for _ in 0..20 {
        got.push(next(&mut events).await);
    }
    // The connection drops mid-turn; the stream goes on by itself.
    relay.cut();
    got.extend(until_complete(&mut events, 1).await);
    assert!(events.resumes() >= 1, "the stream subscribed again");
    assert!(rc.generation() >= 2, "the client reconnected");
    assert_eq!(verdict(got.last().unwrap()).content, prompt);

    // Same identity after the reconnect: still the owner, listed as connected.
    let tui_id = rc.identity().tui_id.clone();
    wait_for("the tui to be listed again", || async {
        let tuis = watcher.admin_tuis().await.unwrap().tuis;
        tuis.iter().any(|t| t.tui_id == tui_id).then_some(())
    })
    .await;
    let again = rc
        .client()
        .await
        .unwrap()
        .prompt_wait(&id, "mine still")
        .await
        .unwrap();
    assert_eq!(again.content, "mine still");
    got.extend(until_complete(&mut events, 1).await);

    // Nothing missed, nothing repeated: exactly what a never-disconnected watcher saw.
    let seen = until_complete(&mut reference, 2).await;
    assert_consecutive(&got);
    assert_eq!(got, seen);
    assert_eq!(events.last_seq(), Some(seen.last().unwrap().seq));
}

#[tokio::test]
async fn forged_or_missing_signatures_are_refused_and_the_genuine_pair_is_accepted() {
    let d = Daemon::start().await;
    let rc = reconnecting(&d.socket(), "genuine").await;
    let genuine = rc.identity().clone();

    let mut forged = genuine.clone();
    forged.tui_sig = "0".repeat(64);
    let err = ReconnectingClient::connect(
        Endpoint::unix(d.socket()),
        ConnectOptions::default(),
        quick(),
        ClientInfo::default(),
        Some(forged),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Some(codes::INVALID_TUI_SIGNATURE), "{err}");

    // Raw clients: a missing signature, and another TUI's signature.
    let (_other, other_init) = raw_tui(&d).await;
    for params in [
        json!({"protocol_version": 1, "tui_id": genuine.tui_id}),
        json!({"protocol_version": 1, "tui_id": genuine.tui_id, "tui_sig": other_init["tui_sig"]}),
    ] {
        let mut ws = RawWs::connect(&d.socket()).await.unwrap();
        let reply = ws.call("initialize", params).await.unwrap();
        assert_eq!(
            rpc_code(&reply),
            i64::from(codes::INVALID_TUI_SIGNATURE),
            "{reply}"
        );
    }

    let mut ws = RawWs::connect(&d.socket()).await.unwrap();
    let back = ws
        .ok(
            "initialize",
            json!({"protocol_version": 1, "tui_id": genuine.tui_id, "tui_sig": genuine.tui_sig}),
        )
        .await
        .unwrap();
    assert_eq!(back["tui_id"], json!(genuine.tui_id));
}

#[tokio::test]
async fn a_turn_runs_on_after_its_tui_disconnects_and_a_later_subscriber_sees_it_complete() {
    let d = Daemon::start_with(SLOW).await;
    let admin = d.client().await;
    let (mut ws, init) = raw_tui(&d).await;
    let created = ws
        .ok(
            "session/new",
            json!({"agent": "slow", "keep_siblings": true}),
        )
        .await
        .unwrap();
    let id = created["session"]["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ws.subscribe(&id, None).await.unwrap();
    let prompt = text(600);
    ws.ok("session/prompt", json!({"session_id": id, "text": prompt}))
        .await
        .unwrap();
    // Disconnect once the reply is streaming.
    loop {
        let env = ws.next_event().await.unwrap();
        if matches!(env.event, Event::AgentMessageChunk { .. }) {
            break;
        }
    }
    drop(ws);
    wait_for("the tui's connection to close", || async {
        admin
            .admin_tuis()
            .await
            .unwrap()
            .tuis
            .is_empty()
            .then_some(())
    })
    .await;

    let sid = SessionId::from(id.as_str());
    let later = d.client().await;
    let mut events = later.subscribe(&sid, Some(0)).await.unwrap();
    let seen = until_complete(&mut events, 1).await;
    assert_eq!(seen[0].seq, 1, "replay from the first event");
    assert!(matches!(&seen[0].event, Event::UserMessage { text, .. } if *text == prompt));
    assert_consecutive(&seen);
    let v = verdict(seen.last().unwrap());
    assert_eq!(v.stop_reason, StopReason::EndTurn, "{v:?}");
    assert_eq!(v.cancel_cause, None);
    assert_eq!(v.content, prompt);

    // Nothing was unloaded and the gone TUI still owns the session.
    let info = admin.get_session(&sid).await.unwrap();
    assert!(info.live);
    assert_eq!(
        info.owner_tui_id.as_ref().map(|t| t.as_str()),
        init["tui_id"].as_str()
    );
}

// ---- take-over and fan-out ----

#[tokio::test]
async fn take_over_among_three_tuis_is_seen_by_every_subscriber() {
    let d = Daemon::start().await;
    let a = d.tui().await;
    let b = d.tui().await;
    let (mut c, c_init) = raw_tui(&d).await;
    let id = new_session(&a, "echo").await;
    let mut a_events = a.subscribe(&id, None).await.unwrap();
    let mut b_events = b.subscribe(&id, None).await.unwrap();
    c.subscribe(id.as_str(), None).await.unwrap();

    let tuis = a.admin_tuis().await.unwrap().tuis;
    assert_eq!(tuis.len(), 3, "{tuis:?}");
    assert!(tuis
        .iter()
        .all(|t| t.transport == "unix" && t.peer.starts_with("uid:")));
    assert!(tuis
        .iter()
        .any(|t| Some(t.tui_id.as_str()) == c_init["tui_id"].as_str()));

    let loaded = b.load_session(&id, true, true).await.unwrap();
    let b_id = b.identity().unwrap().tui_id;
    let a_id = a.identity().unwrap().tui_id;
    assert_eq!(loaded.session.owner_tui_id.as_ref(), Some(&b_id));

    let from_a = next(&mut a_events).await;
    let from_b = next(&mut b_events).await;
    let from_c = c.next_event().await.unwrap();
    assert_eq!(from_a, from_b);
    assert_eq!(from_a, from_c);
    match &from_a.event {
        Event::OwnerChanged {
            owner_tui_id,
            previous_owner_tui_id,
        } => {
            assert_eq!(owner_tui_id.as_ref(), Some(&b_id));
            assert_eq!(previous_owner_tui_id.as_ref(), Some(&a_id));
        }
        other => panic!("expected owner_changed, got {other:?}"),
    }

    // The previous owner and the bystander may not mutate; the new owner may.
    assert_eq!(
        a.prompt_text(&id, "mine?").await.unwrap_err().code(),
        Some(codes::SESSION_NOT_OWNED)
    );
    let reply = c
        .call("session/prompt", json!({"session_id": id, "text": "mine?"}))
        .await
        .unwrap();
    assert_eq!(rpc_code(&reply), i64::from(codes::SESSION_NOT_OWNED));
    assert_eq!(b.prompt_wait(&id, "mine").await.unwrap().content, "mine");
}

#[tokio::test]
async fn five_subscribers_on_separate_connections_see_identical_streams() {
    let d = Daemon::start_with("[agents.small]\nkind = \"echo\"\nchunk_chars = 3\n").await;
    let owner = d.tui().await;
    let id = new_session(&owner, "small").await;
    let others = [d.client().await, d.tui().await];
    let mut sdk = vec![owner.subscribe(&id, None).await.unwrap()];
    for c in &others {
        sdk.push(c.subscribe(&id, None).await.unwrap());
    }
    let mut raw = Vec::new();
    for _ in 0..2 {
        let mut ws = RawWs::connect(&d.socket()).await.unwrap();
        ws.subscribe(id.as_str(), None).await.unwrap();
        raw.push(ws);
    }
    let prompt = text(3000);
    owner.prompt_text(&id, prompt.clone()).await.unwrap();

    let mut streams = Vec::new();
    for s in &mut sdk {
        streams.push(until_complete(s, 1).await);
    }
    for ws in &mut raw {
        streams.push(raw_until_complete(ws).await);
    }
    let first = &streams[0];
    assert_eq!(
        first.len(),
        1000 + 3,
        "user_message, turn_started, chunks, turn_complete"
    );
    assert_consecutive(first);
    assert_eq!(verdict(first.last().unwrap()).content, prompt);
    for (i, s) in streams.iter().enumerate().skip(1) {
        assert_eq!(s, first, "subscriber {i} saw a different stream");
    }
}

#[tokio::test]
async fn a_subscriber_that_comes_back_with_its_last_seq_misses_and_repeats_nothing() {
    let d = Daemon::start_with(SLOW).await;
    let owner = d.tui().await;
    let id = new_session(&owner, "slow").await;
    let mut reference = owner.subscribe(&id, None).await.unwrap();
    let mut ws = RawWs::connect(&d.socket()).await.unwrap();
    ws.subscribe(id.as_str(), None).await.unwrap();
    owner.prompt_text(&id, text(300)).await.unwrap();

    let mut got = Vec::new();
    for _ in 0..25 {
        got.push(ws.next_event().await.unwrap());
    }
    drop(ws);
    // Back on a new connection, mid-turn, from the last seq it saw.
    let last = got.last().unwrap().seq;
    let mut ws = RawWs::connect(&d.socket()).await.unwrap();
    ws.subscribe(id.as_str(), Some(last)).await.unwrap();
    got.extend(raw_until_complete(&mut ws).await);

    assert_consecutive(&got);
    assert_eq!(got, until_complete(&mut reference, 1).await);
}

// ---- pending requests across a reconnect ----

const ASKER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/asker.py");

#[tokio::test]
async fn a_pending_request_survives_a_dropped_connection_and_is_answered_after_the_reconnect() {
    let config = format!(
        "[agents.asker]\nkind = \"command\"\ncommand = [\"python3\", {}]\n",
        Value::String(ASKER.to_owned())
    );
    let d = Daemon::start_with(&config).await;
    let admin = d.client().await;
    let relay = Relay::start(d.socket()).await;
    let rc = reconnecting(relay.path(), "asker-tui").await;
    let id = new_session(&rc.client().await.unwrap(), "asker").await;
    let mut events = rc.subscribe(&id, None).await.unwrap();
    rc.client()
        .await
        .unwrap()
        .prompt_text(&id, "ask 1")
        .await
        .unwrap();
    let mut got = Vec::new();
    while !matches!(
        got.last().map(|e: &EventEnvelope| &e.event),
        Some(Event::Request { .. })
    ) {
        got.push(next(&mut events).await);
    }

    let before = rc.generation();
    relay.cut();
    wait_for("the reconnect", || async {
        (rc.generation() > before).then_some(())
    })
    .await;
    let info = admin.get_session(&id).await.unwrap();
    assert_eq!(info.pending_requests, 1, "the request survived the drop");

    let answered = rc
        .client()
        .await
        .unwrap()
        .respond(&id, None, json!("yes"))
        .await
        .unwrap();
    assert_eq!(answered.remaining, 0);
    got.extend(until_complete(&mut events, 1).await);

    // The daemon delivered the request again on the new subscription; the consumer
    // saw it once, and every other event once, in order.
    let requests = got
        .iter()
        .filter(|e| matches!(e.event, Event::Request { .. }))
        .count();
    assert_eq!(requests, 1);
    assert_consecutive(&got);
    assert!(events.resumes() >= 1);
    assert!(got.iter().any(|e| matches!(&e.event,
        Event::RequestResolved { by_tui_id, .. } if by_tui_id.as_ref() == Some(&rc.identity().tui_id))));
    let v = verdict(got.last().unwrap());
    assert_eq!(v.stop_reason, StopReason::EndTurn, "{v:?}");
    assert_eq!(v.content, "r1=\"yes\";");
}

// ---- a stalled subscriber ----

/// A `command` agent that streams `N` thoughts of `SIZE` characters for the prompt
/// "N SIZE". Thoughts are not part of the reply, so the daemon keeps none of them
/// beyond its event window.
const STREAMER: &str = r#"import json, sys
turn = json.loads(sys.stdin.readline())
n, size = map(int, turn["text"].split())
line = json.dumps({"type": "thought", "text": "x" * size}) + "\n"
for _ in range(n):
    sys.stdout.write(line)
sys.stdout.write(json.dumps({"type": "chunk", "text": "end"}) + "\n")
sys.stdout.write(json.dumps({"type": "done"}) + "\n")
sys.stdout.flush()
"#;

/// Thoughts streamed by the long turn, and their size: 96 MiB in all.
const THOUGHTS: u64 = 49_152;
const THOUGHT_BYTES: u64 = 2048;
/// Allowed growth of the daemon's resident memory while that turn streams to a
/// subscriber that never reads: far less than the data streamed.
const RSS_LIMIT_KIB: u64 = 40 * 1024;

/// Reads one turn's events, checking that each seq is delivered or covered by a
/// `resync`, counting thoughts and sampling the daemon's memory.
async fn read_turn(mut events: sessiond_client::EventStream, pid: u32) -> (u64, TurnVerdict, u64) {
    let mut thoughts = 0;
    let mut peak = 0;
    let mut last_seq: Option<u64> = None;
    loop {
        let env = next(&mut events).await;
        if let Some(prev) = last_seq {
            let resync = matches!(env.event, Event::Resync { from_seq } if from_seq == env.seq + 1);
            assert!(
                env.seq == prev + 1 || (resync && env.seq > prev),
                "seq {} after {prev}: {:?}",
                env.seq,
                env.event
            );
        }
        last_seq = Some(env.seq);
        match env.event {
            Event::AgentThoughtChunk { .. } => {
                thoughts += 1;
                if thoughts % 512 == 0 {
                    peak = peak.max(rss_kib(pid));
                }
            }
            Event::TurnComplete { verdict } => return (thoughts, verdict, peak),
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_subscriber_that_never_reads_slows_nobody_and_does_not_grow_the_daemon() {
    let config = format!(
        // A small window keeps the daemon's own share of the memory small.
        "event_window = 256\n[agents.stream]\nkind = \"command\"\ncommand = [\"python3\", \"-c\", {}]\n",
        Value::String(STREAMER.to_owned())
    );
    let d = Daemon::start_with(&config).await;
    let owner = d.tui().await;
    let id = new_session(&owner, "stream").await;
    let readers = [d.client().await, d.client().await];

    // The stalled subscriber: subscribes, then never reads again.
    let mut stalled = RawWs::connect(&d.socket()).await.unwrap();
    stalled.subscribe(id.as_str(), None).await.unwrap();

    // A warm-up turn, so the baseline includes caches and buffers of a streaming turn.
    let mut warm = Vec::new();
    for r in &readers {
        warm.push(r.subscribe(&id, None).await.unwrap());
    }
    owner.prompt_wait(&id, "16384 2048").await.unwrap();
    for w in &mut warm {
        until_complete(w, 1).await;
    }
    let baseline = rss_kib(d.pid());

    let mut tasks = Vec::new();
    for w in warm {
        tasks.push(tokio::spawn(read_turn(w, d.pid())));
    }
    owner
        .prompt_text(&id, format!("{THOUGHTS} {THOUGHT_BYTES}"))
        .await
        .unwrap();
    let mut peak = 0;
    for t in tasks {
        let (thoughts, verdict, sampled) = t.await.unwrap();
        assert_eq!(verdict.stop_reason, StopReason::EndTurn, "{verdict:?}");
        assert_eq!(verdict.content, "end");
        // A reader slower than the agent may be cut off and catch up with `resync`;
        // what matters is that it keeps going and ends with the turn.
        assert!(thoughts > 0 && thoughts <= THOUGHTS, "{thoughts} thoughts");
        eprintln!("a reader got {thoughts} of {THOUGHTS} thoughts");
        peak = peak.max(sampled);
    }
    peak = peak.max(rss_kib(d.pid()));
    eprintln!("daemon RSS: baseline {baseline} KiB, peak {peak} KiB");
    let streamed_kib = THOUGHTS * THOUGHT_BYTES / 1024;
    assert!(
        peak.saturating_sub(baseline) < RSS_LIMIT_KIB,
        "daemon RSS grew by {} KiB (baseline {baseline} KiB) while streaming {streamed_kib} KiB",
        peak.saturating_sub(baseline)
    );
    // The stalled connection is still open, and the daemon still answers.
    assert!(owner.status().await.is_ok());
    drop(stalled);
}

// ---- daemon restarts ----

#[tokio::test]
async fn the_reconnecting_client_goes_on_through_a_crash_and_a_graceful_restart() {
    let d = Daemon::start().await;
    let rc = reconnecting(&d.socket(), "survivor").await;
    let id = new_session(&rc.client().await.unwrap(), "echo").await;
    let mut events = rc.subscribe(&id, None).await.unwrap();
    let c = rc.client().await.unwrap();
    c.prompt_wait(&id, "before the crash").await.unwrap();
    let mut got = until_complete(&mut events, 1).await;
    // An awaited write commits the events appended before it (see docs/protocol.md,
    // section 12, on kill -9).
    new_session(&c, "echo").await;

    let g = rc.generation();
    let d = d.crash_and_restart().await;
    wait_for("the reconnect after kill -9", || async {
        (rc.generation() > g && rc.is_connected()).then_some(())
    })
    .await;
    let after = rc
        .client()
        .await
        .unwrap()
        .prompt_wait(&id, "after the crash")
        .await
        .expect("still the owner after the restart");
    assert_eq!(after.content, "after the crash");
    got.extend(until_complete(&mut events, 1).await);
    // Seqs reserved but unused before the crash are skipped, announced by `resync`.
    assert_continuous(&got);
    assert!(events.resumes() >= 1);
    assert!(matches!(&got[0].event, Event::UserMessage { text, .. } if text == "before the crash"));
    assert_eq!(verdict(got.last().unwrap()).content, "after the crash");

    // A graceful stop ends subscriptions without closing the session: the same
    // stream goes on after the restart, with the next seq and no `resync`.
    let g = rc.generation();
    let _d = d.restart().await;
    wait_for("the reconnect after the restart", || async {
        (rc.generation() > g && rc.is_connected()).then_some(())
    })
    .await;
    rc.client()
        .await
        .unwrap()
        .prompt_wait(&id, "after the restart")
        .await
        .expect("still the owner after a graceful restart");
    let more = until_complete(&mut events, 1).await;
    assert_eq!(more[0].seq, got.last().unwrap().seq + 1, "{:?}", more[0]);
    assert_consecutive(&more);
    assert!(more
        .iter()
        .all(|e| !matches!(e.event, Event::SessionClosed { .. } | Event::Resync { .. })));
    assert_eq!(verdict(more.last().unwrap()).content, "after the restart");
    assert!(events.resumes() >= 2);
}
