//! Relay overhead and cancel latency of the provider agents (issue: agents).
//!
//! - Relay: a local OpenAI-compatible server streams 100,000 small chunks. The same
//!   stream is read (a) directly by this process with the crates the daemon uses
//!   (reqwest + eventsource-stream + serde_json) and (b) as `agent_message_chunk`
//!   events by an SDK subscriber of a session whose `openai` agent reads it through
//!   sessiond. Figure: chunks per second from request to last chunk, median of runs.
//! - Cancel latency: from calling `session/cancel` (a turn that has streamed its
//!   first chunk and then stalls) to (a) the server seeing its connection closed and
//!   (b) the `command` agent's process being gone (pidfd readable), and to the
//!   subscriber receiving `turn_complete`. p50/p99 over repeated turns.
//!
//! Run with `make bench` (it sets SESSIOND_BIN to the release binary);
//! `BENCH_SCALE=small` runs a reduced version.

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{json, Value};
use sessiond_client::{Client, EventStream};
use sessiond_protocol::{CancelCause, Event, SessionId, StopReason, TurnId};
use sessiond_tests::{new_session, Daemon, WAIT};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const RECORDER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/recorder.py");

struct Scale {
    chunks: usize,
    relay_runs: usize,
    cancels: usize,
}

fn scale() -> Scale {
    if std::env::var("BENCH_SCALE").as_deref() == Ok("small") {
        Scale {
            chunks: 10_000,
            relay_runs: 1,
            cancels: 10,
        }
    } else {
        Scale {
            chunks: 100_000,
            relay_runs: 5,
            cancels: 200,
        }
    }
}

// ---- the local server ----

/// Answers `POST /v1/chat/completions`: the last message "hold" streams one chunk
/// and holds the connection until the client closes it (the close time is sent on
/// `closed`); anything else gets the prepared stream of many chunks.
struct Server {
    base_url: String,
    closed: mpsc::UnboundedReceiver<Instant>,
}

fn sse_event(out: &mut Vec<u8>, data: &str) {
    let e = format!("data: {data}\n\n");
    out.extend_from_slice(format!("{:x}\r\n{e}\r\n", e.len()).as_bytes());
}

fn delta(content: &str) -> String {
    json!({"id": "c1", "object": "chat.completion.chunk", "model": "bench",
           "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]})
    .to_string()
}

const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
    cache-control: no-cache\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";

/// The whole response of a streamed reply of `n` chunks, one HTTP chunk per event.
fn long_stream(n: usize) -> Vec<u8> {
    let mut out = SSE_HEAD.as_bytes().to_vec();
    for i in 0..n {
        sse_event(&mut out, &delta(&format!("w{} ", i % 10)));
    }
    let end = json!({"id": "c1", "object": "chat.completion.chunk", "model": "bench",
                     "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
    sse_event(&mut out, &end.to_string());
    let usage = json!({"id": "c1", "object": "chat.completion.chunk", "model": "bench",
                       "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": n}});
    sse_event(&mut out, &usage.to_string());
    sse_event(&mut out, "[DONE]");
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

async fn serve(n: usize) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stream = Arc::new(long_stream(n));
    let (tx, closed) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(answer(sock, stream.clone(), tx.clone()));
        }
    });
    Server {
        base_url: format!("http://{addr}/v1"),
        closed,
    }
}

/// Reads one request; returns the content of its last message.
async fn read_request(sock: &mut TcpStream) -> Option<String> {
    let (_, body) = sessiond_tests::read_http_request(sock).await?;
    let body: Value = serde_json::from_slice(&body).ok()?;
    body["messages"]
        .as_array()?
        .last()?
        .get("content")?
        .as_str()
        .map(str::to_owned)
}

async fn answer(mut sock: TcpStream, stream: Arc<Vec<u8>>, closed: mpsc::UnboundedSender<Instant>) {
    let _ = sock.set_nodelay(true);
    let Some(text) = read_request(&mut sock).await else {
        return;
    };
    if text == "hold" {
        let mut first = SSE_HEAD.as_bytes().to_vec();
        sse_event(&mut first, &delta("held"));
        let _ = sock.write_all(&first).await;
        let mut sink = [0u8; 64];
        while let Ok(n) = sock.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
        let _ = closed.send(Instant::now());
    } else {
        let _ = sock.write_all(&stream).await;
        let _ = sock.shutdown().await;
    }
}

// ---- relay ----

/// Reads the stream directly; returns the time from the request to the last chunk.
async fn direct(http: &reqwest::Client, base_url: &str, n: usize) -> Duration {
    let body = json!({"model": "bench", "messages": [{"role": "user", "content": "stream"}],
                      "stream": true, "stream_options": {"include_usage": true}});
    let start = Instant::now();
    let response = http
        .post(format!("{base_url}/chat/completions"))
        .header("accept", "text/event-stream")
        .json(&body)
        .send()
        .await
        .expect("request");
    let mut events = std::pin::pin!(response.bytes_stream().eventsource());
    let mut chunks = 0;
    let mut last = start.elapsed();
    while let Some(event) = events.next().await {
        let event = event.expect("event");
        if event.data == "[DONE]" {
            break;
        }
        let v: Value = serde_json::from_str(&event.data).expect("json event");
        if let Some(text) = v["choices"][0]["delta"]["content"].as_str() {
            if !text.is_empty() {
                chunks += 1;
                last = start.elapsed();
            }
        }
    }
    assert_eq!(chunks, n, "direct read every chunk");
    last
}

async fn next(events: &mut EventStream) -> Event {
    match tokio::time::timeout(WAIT, events.next_event()).await {
        Ok(Some(Ok(env))) => env.event,
        Ok(Some(Err(e))) => panic!("event stream error: {e}"),
        Ok(None) => panic!("event stream ended: {:?}", events.end_reason()),
        Err(_) => panic!("timed out waiting for an event"),
    }
}

/// One turn of `n` chunks through sessiond, counted by a subscriber; returns the
/// time from the prompt to the last chunk.
async fn relayed(c: &Client, n: usize) -> Duration {
    let id = new_session(c, "relay").await;
    let mut events = c.subscribe(&id, None).await.expect("subscribe");
    let start = Instant::now();
    c.prompt_text(&id, "stream").await.expect("prompt");
    let mut chunks = 0;
    let mut last = start.elapsed();
    loop {
        match next(&mut events).await {
            Event::AgentMessageChunk { .. } => {
                chunks += 1;
                last = start.elapsed();
            }
            Event::TurnComplete { verdict } => {
                assert_eq!(verdict.stop_reason, StopReason::EndTurn, "{verdict:?}");
                break;
            }
            _ => {}
        }
    }
    assert_eq!(chunks, n, "the subscriber got every chunk");
    c.delete_session(&id).await.expect("delete");
    last
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

// ---- cancel ----

struct Latencies {
    /// `session/cancel` sent -> the provider's side is gone (connection or process).
    provider: Vec<Duration>,
    /// `session/cancel` sent -> `turn_complete` received.
    verdict: Vec<Duration>,
}

fn pct(v: &[Duration], q: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[((v.len() as f64 - 1.0) * q).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Prompts `text` and waits for the turn's first chunk.
async fn start_stalled_turn(
    c: &Client,
    id: &SessionId,
    events: &mut EventStream,
    text: &str,
) -> TurnId {
    let turn_id = c.prompt_text(id, text).await.expect("prompt").turn_id;
    loop {
        match next(events).await {
            Event::AgentMessageChunk { turn_id: t, .. } if t == turn_id => return turn_id,
            Event::TurnComplete { verdict } if verdict.turn_id == turn_id => {
                panic!("the turn ended before stalling: {verdict:?}")
            }
            _ => {}
        }
    }
}

async fn wait_cancelled(events: &mut EventStream, turn_id: &TurnId) -> Instant {
    loop {
        if let Event::TurnComplete { verdict } = next(events).await {
            if &verdict.turn_id == turn_id {
                assert_eq!(
                    verdict.cancel_cause,
                    Some(CancelCause::ClientRpc),
                    "{verdict:?}"
                );
                return Instant::now();
            }
        }
    }
}

async fn cancel_http(c: &Client, server: &mut Server, reps: usize) -> Latencies {
    let id = new_session(c, "relay").await;
    let mut events = c.subscribe(&id, None).await.expect("subscribe");
    let mut out = Latencies {
        provider: Vec::new(),
        verdict: Vec::new(),
    };
    for _ in 0..reps {
        let turn_id = start_stalled_turn(c, &id, &mut events, "hold").await;
        let t0 = Instant::now();
        c.cancel(&id).await.expect("cancel");
        let closed = tokio::time::timeout(WAIT, server.closed.recv())
            .await
            .expect("the connection is closed in time")
            .expect("server runs");
        let done = wait_cancelled(&mut events, &turn_id).await;
        out.provider.push(closed.saturating_duration_since(t0));
        out.verdict.push(done - t0);
    }
    out
}

/// A pidfd of `pid`: readable once the process has exited.
fn pidfd(pid: i32) -> tokio::io::unix::AsyncFd<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    assert!(
        fd >= 0,
        "pidfd_open({pid}): {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the fd was just created and is owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // SAFETY: the AsyncFd owns the OwnedFd, which keeps the fd open and unchanged.
    unsafe { tokio::io::unix::AsyncFd::register(owned) }
        .unwrap_or_else(|_| panic!("cannot register the pidfd of {pid}"))
}

fn last_pid(records: &Path) -> i32 {
    let text = std::fs::read_to_string(records).expect("records");
    let last: Value = serde_json::from_str(text.lines().last().expect("a record")).expect("json");
    last["pid"].as_i64().expect("pid") as i32
}

async fn cancel_command(c: &Client, records: &Path, reps: usize) -> Latencies {
    let id = new_session(c, "program").await;
    let mut events = c.subscribe(&id, None).await.expect("subscribe");
    let mut out = Latencies {
        provider: Vec::new(),
        verdict: Vec::new(),
    };
    for _ in 0..reps {
        let turn_id = start_stalled_turn(c, &id, &mut events, "stall").await;
        // The recorder writes its pid before its first chunk.
        let exited = pidfd(last_pid(records));
        let t0 = Instant::now();
        c.cancel(&id).await.expect("cancel");
        tokio::time::timeout(WAIT, exited.readable())
            .await
            .expect("the process exits in time")
            .expect("pidfd")
            .retain_ready();
        let gone = Instant::now();
        let done = wait_cancelled(&mut events, &turn_id).await;
        out.provider.push(gone - t0);
        out.verdict.push(done - t0);
    }
    out
}

fn report_latencies(what: &str, provider: &str, l: &Latencies) {
    println!(
        "| {what} | cancel -> {provider} | {} | {} |",
        ms(pct(&l.provider, 0.5)),
        ms(pct(&l.provider, 0.99))
    );
    println!(
        "| {what} | cancel -> turn_complete at the subscriber | {} | {} |",
        ms(pct(&l.verdict, 0.5)),
        ms(pct(&l.verdict, 0.99))
    );
}

#[tokio::main]
async fn main() {
    let s = scale();
    let mut server = serve(s.chunks).await;
    let records_dir = tempfile::tempdir().expect("tempdir");
    let records: PathBuf = records_dir.path().join("turns.jsonl");
    let config = format!(
        "subscriber_buffer = {}\n\
         [agents.relay]\nkind = \"openai\"\nbase_url = {}\nmodel = \"bench\"\n\n\
         [agents.program]\nkind = \"command\"\ncommand = [\"python3\", {}]\n\
         cancel_grace_ms = 2000\nenv = {{ RECORD_FILE = {} }}\n",
        s.chunks + 1024,
        Value::from(server.base_url.as_str()),
        Value::from(RECORDER),
        Value::from(records.to_str().expect("utf-8 path")),
    );
    let d = Daemon::start_with(&config).await;
    let c = d.tui().await;
    let http = reqwest::Client::new();

    // Relay: one warm-up each, then alternating measured runs.
    direct(&http, &server.base_url, s.chunks).await;
    relayed(&c, s.chunks).await;
    let (mut direct_runs, mut relayed_runs) = (Vec::new(), Vec::new());
    for _ in 0..s.relay_runs {
        direct_runs.push(direct(&http, &server.base_url, s.chunks).await);
        relayed_runs.push(relayed(&c, s.chunks).await);
    }
    let rate = |d: Duration| s.chunks as f64 / d.as_secs_f64();
    let (dm, rm) = (median(direct_runs), median(relayed_runs));
    println!(
        "relay: {} chunks, median of {} runs (request -> last chunk)",
        s.chunks, s.relay_runs
    );
    println!("| path | time | chunks/s |");
    println!("|---|---|---|");
    println!(
        "| direct (reqwest + eventsource-stream in the bench) | {} | {:.0} |",
        ms(dm),
        rate(dm)
    );
    println!(
        "| through sessiond to an SDK subscriber | {} | {:.0} |",
        ms(rm),
        rate(rm)
    );
    println!(
        "overhead: sessiond takes {:.2}x the direct time",
        rm.as_secs_f64() / dm.as_secs_f64()
    );

    // Cancel latency.
    let http_cancel = cancel_http(&c, &mut server, s.cancels).await;
    let command_cancel = cancel_command(&c, &records, s.cancels).await;
    println!("cancel latency, {} turns each", s.cancels);
    println!("| agent | from session/cancel to | p50 | p99 |");
    println!("|---|---|---|---|");
    report_latencies(
        "openai",
        "the server sees the connection closed",
        &http_cancel,
    );
    report_latencies("command", "the process is gone", &command_cancel);
}
