//! The provider kinds through the real daemon: an `openai` agent pointed at an
//! OpenAI-compatible HTTP server this test runs on 127.0.0.1, and a `command` agent
//! (`tests/fixtures/recorder.py`, which appends every turn line it is given to the
//! file in `$RECORD_FILE`). What each provider receives is checked on the provider's
//! side: overrides, the history of the second turn, the alias a `model_provider`
//! override selects; then usage and round counts, `max_turn_secs` and cancel ending
//! a slow turn (connection dropped, program gone), unbuildable aliases, and the API
//! key kept out of verdicts and the log.

use serde_json::{json, Value};
use sessiond_client::{Client, ConnectOptions, EventStream};
use sessiond_protocol::params::{NewSessionParams, OverridesPatch};
use sessiond_protocol::{
    codes, CancelCause, Event, Overrides, Patch, SessionId, StopReason, TurnVerdict,
};
use sessiond_tests::{http_post, new_session, wait_for, Daemon, Dirs, WAIT};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

mod api_key;
mod slow_turns;
mod turns;

const RECORDER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/recorder.py");

/// The fake server's usage per reply, and the recorder's.
const LLM_USAGE: (u64, u64) = (11, 7);
const SCRIPT_USAGE: (u64, u64) = (5, 3);

// ---- an OpenAI-compatible server on loopback ----

/// One request the server received.
struct Captured {
    head: String,
    body: Value,
}

/// A `/v1/chat/completions` server. The last message decides the answer:
/// "stall" streams the chunk "stalling" and then holds the connection until the
/// client closes it; "reject" is a 401 whose message repeats the request's
/// `Authorization` header (as careless servers do); anything else streams
/// "reply to <text>" with usage, like the real API.
struct FakeLlm {
    base_url: String,
    requests: mpsc::UnboundedReceiver<Captured>,
    /// One message each time a held ("stall") connection is closed by the client.
    closed: mpsc::UnboundedReceiver<()>,
}

impl FakeLlm {
    async fn start() -> FakeLlm {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (req_tx, requests) = mpsc::unbounded_channel();
        let (closed_tx, closed) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(answer(sock, req_tx.clone(), closed_tx.clone()));
            }
        });
        FakeLlm {
            base_url: format!("http://{addr}/v1"),
            requests,
            closed,
        }
    }

    /// The next request the server received.
    async fn request(&mut self) -> Captured {
        tokio::time::timeout(WAIT, self.requests.recv())
            .await
            .expect("the server receives a request in time")
            .expect("the server runs")
    }

    /// Waits until a held connection has been closed by the daemon.
    async fn connection_closed(&mut self) {
        tokio::time::timeout(WAIT, self.closed.recv())
            .await
            .expect("the daemon closes the provider connection in time")
            .expect("the server runs");
    }
}

async fn read_request(sock: &mut TcpStream) -> Option<Captured> {
    let (head, body) = sessiond_tests::read_http_request(sock).await?;
    let body = serde_json::from_slice(&body).ok()?;
    Some(Captured { head, body })
}

/// One server-sent event as one HTTP chunk.
fn event(data: &Value) -> Vec<u8> {
    let e = format!("data: {data}\n\n");
    format!("{:x}\r\n{e}\r\n", e.len()).into_bytes()
}

fn delta(content: &str) -> Value {
    json!({"id": "c1", "object": "chat.completion.chunk", "model": "fake",
           "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]})
}

async fn answer(
    mut sock: TcpStream,
    requests: mpsc::UnboundedSender<Captured>,
    closed: mpsc::UnboundedSender<()>,
) {
    let Some(captured) = read_request(&mut sock).await else {
        return;
    };
    let text = captured.body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned();
    let auth = captured
        .head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("authorization")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    let _ = requests.send(captured);
    const SSE: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
        cache-control: no-cache\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
    match text.as_str() {
        "stall" => {
            let _ = sock.write_all(SSE.as_bytes()).await;
            let _ = sock.write_all(&event(&delta("stalling"))).await;
            // The client sends nothing more: a read ends only when it closes.
            let mut sink = [0u8; 64];
            while let Ok(n) = sock.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
            let _ = closed.send(());
        }
        "reject" => {
            let body = json!({"error": {"message": format!("invalid credentials: {auth}"),
                                        "type": "invalid_request_error"}})
            .to_string();
            let reply = format!(
                "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(reply.as_bytes()).await;
        }
        _ => {
            let _ = sock.write_all(SSE.as_bytes()).await;
            let (prompt, completion) = LLM_USAGE;
            let events = [
                json!({"id": "c1", "object": "chat.completion.chunk", "model": "fake",
                       "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                    "finish_reason": null}]}),
                delta("reply to "),
                delta(&text),
                json!({"id": "c1", "object": "chat.completion.chunk", "model": "fake",
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
                json!({"id": "c1", "object": "chat.completion.chunk", "model": "fake",
                       "choices": [], "usage": {"prompt_tokens": prompt,
                       "completion_tokens": completion, "total_tokens": prompt + completion}}),
            ];
            for e in &events {
                let _ = sock.write_all(&event(e)).await;
            }
            let done = "data: [DONE]\n\n";
            let _ = sock
                .write_all(format!("{:x}\r\n{done}\r\n0\r\n\r\n", done.len()).as_bytes())
                .await;
            let _ = sock.shutdown().await;
        }
    }
}

// ---- the daemon's configuration and the recorder's file ----

/// The file the recorder appends its turn lines to, in a directory of its own.
struct Records {
    _dir: tempfile::TempDir,
    file: PathBuf,
}

impl Records {
    fn new() -> Records {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("turns.jsonl");
        Records { _dir: dir, file }
    }

    /// Every line written so far: `{"pid", "turn"}`.
    fn all(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.file)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a json record"))
            .collect()
    }
}

/// Aliases `llm` (openai, model `configured-model`, temperature 0.5), `script`
/// (the recorder) and `broken` (an openai alias whose base_url has no host).
fn config(llm: &FakeLlm, records: &Records, extra: &str) -> String {
    format!(
        "{extra}\n\
         [agents.llm]\nkind = \"openai\"\nbase_url = {}\nmodel = \"configured-model\"\n\
         temperature = 0.5\n\n\
         [agents.script]\nkind = \"command\"\ncommand = [\"python3\", {}]\n\
         cancel_grace_ms = 500\nenv = {{ RECORD_FILE = {} }}\n\n\
         [agents.broken]\nkind = \"openai\"\nbase_url = \"http://\"\n",
        Value::from(llm.base_url.as_str()),
        Value::from(RECORDER),
        Value::from(records.file.to_str().expect("utf-8 path")),
    )
}

/// Prompts and waits (bounded) for the verdict.
async fn turn(c: &Client, id: &SessionId, text: &str) -> TurnVerdict {
    tokio::time::timeout(WAIT, c.prompt_wait(id, text))
        .await
        .expect("the turn ends in time")
        .expect("session/prompt")
}

async fn set_model_and_temperature(c: &Client, id: &SessionId) {
    c.configure(
        id,
        OverridesPatch {
            model: Patch::Set("override-model".into()),
            temperature: Patch::Set(1.25),
            ..Default::default()
        },
    )
    .await
    .expect("session/configure");
}

fn assert_ended_well(v: &TurnVerdict, content: &str, usage: (u64, u64)) {
    assert_eq!(v.stop_reason, StopReason::EndTurn, "{v:?}");
    assert_eq!(v.content, content);
    assert_eq!((v.usage.input_tokens, v.usage.output_tokens), usage);
}

fn message(role: &str, content: &str) -> Value {
    json!({"role": role, "content": content})
}

/// The next event of a stream, bounded by [`WAIT`].
async fn next(events: &mut EventStream) -> Event {
    match tokio::time::timeout(WAIT, events.next_event()).await {
        Ok(Some(Ok(env))) => env.event,
        Ok(Some(Err(e))) => panic!("event stream error: {e}"),
        Ok(None) => panic!("event stream ended: {:?}", events.end_reason()),
        Err(_) => panic!("timed out waiting for an event"),
    }
}

/// Skips to the first message chunk (failing on `turn_complete`).
async fn first_chunk(events: &mut EventStream) -> String {
    loop {
        match next(events).await {
            Event::AgentMessageChunk { text, .. } => return text,
            Event::TurnComplete { verdict } => panic!("the turn ended early: {verdict:?}"),
            _ => {}
        }
    }
}

async fn verdict(events: &mut EventStream) -> TurnVerdict {
    loop {
        if let Event::TurnComplete { verdict } = next(events).await {
            return verdict;
        }
    }
}

/// Whether `pid` runs (a zombie or a reused pid that is not python counts as gone).
fn alive(pid: i64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rsplit_once(')').map(|(_, r)| r.trim_start());
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    !state.is_some_and(|s| s.starts_with('Z'))
        && String::from_utf8_lossy(&cmdline).contains("recorder.py")
}

async fn wait_gone(pid: i64) {
    wait_for(&format!("agent process {pid} to be gone"), || async move {
        (!alive(pid)).then_some(())
    })
    .await;
}
