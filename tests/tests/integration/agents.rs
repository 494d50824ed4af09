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

// ---- overrides and history ----

#[tokio::test]
async fn the_openai_agent_receives_overrides_and_the_history() {
    let mut llm = FakeLlm::start().await;
    let records = Records::new();
    let d = Daemon::start_with(&config(&llm, &records, "")).await;
    let c = d.tui().await;
    let id = new_session(&c, "llm").await;

    let v = turn(&c, &id, "first").await;
    assert_ended_well(&v, "reply to first", LLM_USAGE);
    let r = llm.request().await;
    assert!(
        r.head.starts_with("POST /v1/chat/completions "),
        "{}",
        r.head
    );
    assert_eq!(r.body["model"], "configured-model");
    assert_eq!(r.body["temperature"], 0.5);
    assert_eq!(r.body["stream"], true);
    assert_eq!(r.body["messages"], json!([message("user", "first")]));

    set_model_and_temperature(&c, &id).await;
    let v = turn(&c, &id, "second").await;
    assert_ended_well(&v, "reply to second", LLM_USAGE);
    let r = llm.request().await;
    assert_eq!(r.body["model"], "override-model");
    assert_eq!(r.body["temperature"], 1.25);
    assert_eq!(
        r.body["messages"],
        json!([
            message("user", "first"),
            message("assistant", "reply to first"),
            message("user", "second"),
        ])
    );

    let info = c.get_session(&id).await.unwrap();
    assert_eq!(info.round_count, 2);
    assert_eq!(
        (info.usage.input_tokens, info.usage.output_tokens),
        (2 * LLM_USAGE.0, 2 * LLM_USAGE.1)
    );
}

#[tokio::test]
async fn the_command_agent_receives_overrides_and_the_history() {
    let llm = FakeLlm::start().await;
    let records = Records::new();
    let d = Daemon::start_with(&config(&llm, &records, "")).await;
    let c = d.tui().await;
    let id = new_session(&c, "script").await;

    let v1 = turn(&c, &id, "first").await;
    assert_ended_well(&v1, "reply to first", SCRIPT_USAGE);
    set_model_and_temperature(&c, &id).await;
    let v2 = turn(&c, &id, "second").await;
    assert_ended_well(&v2, "reply to second", SCRIPT_USAGE);

    let seen: Vec<Value> = records
        .all()
        .into_iter()
        .map(|r| r["turn"].clone())
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for (line, v) in seen.iter().zip([&v1, &v2]) {
        assert_eq!(line["type"], "turn");
        assert_eq!(line["session_id"], json!(id));
        assert_eq!(line["turn_id"], json!(v.turn_id));
    }
    assert_eq!(seen[0]["text"], "first");
    assert_eq!(seen[0]["history"], json!([]));
    assert_eq!(
        serde_json::from_value::<Overrides>(seen[0]["overrides"].clone()).unwrap(),
        Overrides::default()
    );
    assert_eq!(seen[1]["text"], "second");
    assert_eq!(
        seen[1]["history"],
        json!([
            message("user", "first"),
            message("assistant", "reply to first")
        ])
    );
    assert_eq!(seen[1]["overrides"]["model"], "override-model");
    assert_eq!(seen[1]["overrides"]["temperature"], 1.25);

    let info = c.get_session(&id).await.unwrap();
    assert_eq!(info.round_count, 2);
    assert_eq!(
        (info.usage.input_tokens, info.usage.output_tokens),
        (2 * SCRIPT_USAGE.0, 2 * SCRIPT_USAGE.1)
    );
}

#[tokio::test]
async fn model_provider_moves_a_session_between_kinds_with_its_history() {
    let mut llm = FakeLlm::start().await;
    let records = Records::new();
    let d = Daemon::start_with(&config(&llm, &records, "")).await;
    let c = d.tui().await;
    let id = new_session(&c, "llm").await;

    assert_ended_well(&turn(&c, &id, "first").await, "reply to first", LLM_USAGE);
    llm.request().await;

    // To the command alias, with a model for it.
    c.configure(
        &id,
        OverridesPatch {
            model_provider: Patch::Set("script".into()),
            model: Patch::Set("script-model".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let v = turn(&c, &id, "second").await;
    assert_ended_well(&v, "reply to second", SCRIPT_USAGE);
    let seen = records.all();
    assert_eq!(seen.len(), 1, "the recorder ran the second turn: {seen:?}");
    let line = &seen[0]["turn"];
    assert_eq!(line["overrides"]["model"], "script-model");
    assert_eq!(line["overrides"]["model_provider"], "script");
    assert_eq!(
        line["history"],
        json!([
            message("user", "first"),
            message("assistant", "reply to first")
        ])
    );

    // Back to the openai alias: the provider switch cleared the model.
    c.configure(
        &id,
        OverridesPatch {
            model_provider: Patch::Set("llm".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_ended_well(&turn(&c, &id, "third").await, "reply to third", LLM_USAGE);
    let r = llm.request().await;
    assert_eq!(r.body["model"], "configured-model");
    assert_eq!(
        r.body["messages"],
        json!([
            message("user", "first"),
            message("assistant", "reply to first"),
            message("user", "second"),
            message("assistant", "reply to second"),
            message("user", "third"),
        ])
    );

    let info = c.get_session(&id).await.unwrap();
    assert_eq!(info.agent, "llm");
    assert_eq!(info.round_count, 3);
    assert_eq!(
        (info.usage.input_tokens, info.usage.output_tokens),
        (
            2 * LLM_USAGE.0 + SCRIPT_USAGE.0,
            2 * LLM_USAGE.1 + SCRIPT_USAGE.1
        )
    );
}

// ---- slow turns: max_turn_secs and cancel ----

#[tokio::test]
async fn max_turn_secs_ends_slow_provider_turns_with_cause_timeout() {
    let mut llm = FakeLlm::start().await;
    let records = Records::new();
    // Long enough for python to start on a busy machine, so the recorder has
    // written its pid before the limit ends the turn.
    let d = Daemon::start_with(&config(&llm, &records, "max_turn_secs = 3")).await;
    let c = d.tui().await;
    let via_http = new_session(&c, "llm").await;
    let via_program = new_session(&c, "script").await;

    let (a, b) = tokio::join!(
        turn(&c, &via_http, "stall"),
        turn(&c, &via_program, "stall")
    );
    for v in [&a, &b] {
        assert_eq!(v.stop_reason, StopReason::Cancelled, "{v:?}");
        assert_eq!(v.cancel_cause, Some(CancelCause::Timeout), "{v:?}");
        assert_eq!(v.error, None);
        assert_eq!(v.content, "stalling", "the partial reply is kept");
    }
    llm.connection_closed().await;
    let seen = records.all();
    assert_eq!(seen.len(), 1, "{seen:?}");
    wait_gone(seen[0]["pid"].as_i64().expect("pid")).await;
    let stats = d.client().await.admin_stats().await.unwrap();
    assert_eq!(stats.cancels_by_cause[&CancelCause::Timeout], 2);
}

#[tokio::test]
async fn cancel_drops_the_provider_connection_and_ends_the_program() {
    let mut llm = FakeLlm::start().await;
    let records = Records::new();
    let d = Daemon::start_with(&config(&llm, &records, "")).await;
    let c = d.tui().await;
    for agent in ["llm", "script"] {
        let id = new_session(&c, agent).await;
        let mut events = c.subscribe(&id, None).await.unwrap();
        c.prompt_text(&id, "stall").await.unwrap();
        assert_eq!(first_chunk(&mut events).await, "stalling", "{agent}");
        c.cancel(&id).await.unwrap();
        let v = verdict(&mut events).await;
        assert_eq!(v.stop_reason, StopReason::Cancelled, "{agent}: {v:?}");
        assert_eq!(v.cancel_cause, Some(CancelCause::ClientRpc), "{agent}");
    }
    llm.connection_closed().await;
    let seen = records.all();
    assert_eq!(seen.len(), 1, "{seen:?}");
    wait_gone(seen[0]["pid"].as_i64().expect("pid")).await;
}

// ---- aliases that cannot be built ----

#[tokio::test]
async fn an_unbuildable_alias_is_unavailable_and_cannot_be_selected() {
    let llm = FakeLlm::start().await;
    let records = Records::new();
    let d = Daemon::start_with(&config(&llm, &records, "")).await;
    let c = d.tui().await;
    let err = c
        .new_session(NewSessionParams {
            agent: Some("broken".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::AGENT_UNAVAILABLE), "{err}");
    assert!(err.to_string().contains("base_url"), "{err}");

    let id = new_session(&c, "llm").await;
    let err = c
        .configure(
            &id,
            OverridesPatch {
                model_provider: Patch::Set("broken".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::INVALID_PARAMS), "{err}");
    let err = c
        .new_session(NewSessionParams {
            agent: Some("llm".into()),
            overrides: Some(Overrides {
                model_provider: Some("broken".into()),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::INVALID_PARAMS), "{err}");
    let info = c.get_session(&id).await.unwrap();
    assert_eq!(info.overrides, Overrides::default());
}

// ---- the API key ----

const KEY_VAR: &str = "SESSIOND_TEST_LLM_KEY";
const KEY: &str = "sk-agents-test-5f1e9c0d2b7a4e83";

/// A daemon with the API key in its environment (the harness's daemons get a
/// cleared environment); killed when dropped.
struct KeyedDaemon {
    dirs: Dirs,
    child: Child,
}

impl KeyedDaemon {
    async fn start(config: &str) -> KeyedDaemon {
        let dirs = Dirs::new();
        std::fs::write(dirs.config_path(), config).unwrap();
        let log = std::fs::File::create(dirs.log_path()).unwrap();
        let child = dirs
            .command()
            .env(KEY_VAR, KEY)
            // As talkative as it gets short of trace: the key must still not appear.
            .env("SESSIOND_LOG", "debug")
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn sessiond");
        let d = KeyedDaemon { dirs, child };
        let socket = d.dirs.socket();
        wait_for("the daemon to accept connections", || {
            let socket = socket.clone();
            async move { ready(&socket).await.then_some(()) }
        })
        .await;
        d
    }

    async fn tui(&self) -> Client {
        let c = Client::connect_unix(self.dirs.socket(), ConnectOptions::default())
            .await
            .expect("connect");
        c.initialize("agents-test", None).await.expect("initialize");
        c
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dirs.log_path()).unwrap_or_default()
    }
}

async fn ready(socket: &Path) -> bool {
    http_post(
        socket,
        r#"{"jsonrpc":"2.0","id":0,"method":"daemon/status"}"#,
    )
    .await
    .is_ok()
}

impl Drop for KeyedDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_api_key_is_sent_but_never_reaches_a_verdict_or_the_log() {
    let mut llm = FakeLlm::start().await;
    let records = Records::new();
    let cfg = format!(
        "{}\n[agents.keyed]\nkind = \"openai\"\nbase_url = {}\nmodel = \"m\"\napi_key_env = \"{KEY_VAR}\"\n",
        config(&llm, &records, ""),
        Value::from(llm.base_url.as_str()),
    );
    let d = KeyedDaemon::start(&cfg).await;
    let c = d.tui().await;
    let id = new_session(&c, "keyed").await;

    let v = turn(&c, &id, "reject").await;
    let r = llm.request().await;
    assert!(
        r.head.to_ascii_lowercase().contains(&format!(
            "authorization: bearer {}",
            KEY.to_ascii_lowercase()
        )),
        "the key is sent: {}",
        r.head
    );
    assert_eq!(v.stop_reason, StopReason::Failed, "{v:?}");
    let error = v.error.expect("an error");
    assert!(error.contains("HTTP 401"), "{error}");
    assert!(error.contains("invalid credentials"), "{error}");
    assert!(
        !error.contains(KEY),
        "the key leaked into the verdict: {error}"
    );
    // Nor in the transcript's stored verdict, nor in the log.
    let info = c.get_session(&id).await.unwrap();
    assert_eq!(info.round_count, 1);
    assert!(!serde_json::to_string(&info).unwrap().contains(KEY));
    assert!(!d.log().contains(KEY), "the key is in the log");
}
