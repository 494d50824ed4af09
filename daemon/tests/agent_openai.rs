//! The `openai` agent against a real HTTP/1.1 server on 127.0.0.1 started by each
//! test: streaming like the real API, the request it sends, HTTP errors, broken
//! and silent streams, cancel closing the connection, and the API key.

mod support;

use serde_json::{json, Value};
use sessiond::agent::openai::OpenAiAgent;
use sessiond::agent::{Agents, HistoryMessage};
use sessiond_config::AgentConfig;
use sessiond_protocol::{Event, Overrides, Role};
use std::sync::Once;
use std::time::Duration;
use support::{input, run, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

const LIMIT: Duration = Duration::from_secs(10);
const KEY_VAR: &str = "SESSIOND_TEST_OPENAI_KEY";
const KEY: &str = "sk-test-0123456789abcdef";

/// Sets the key variable once, before any test does anything else.
fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| std::env::set_var(KEY_VAR, KEY));
}

/// What the server received.
struct Captured {
    head: String,
    body: Value,
}

/// How the response body ends.
enum End {
    /// The terminating chunk of a chunked body.
    Complete,
    /// The connection is closed in the middle of a chunked body.
    Cut,
    /// A body delimited by closing the connection.
    Close,
}

/// What the server answers.
enum Answer {
    Sse(Vec<String>, End),
    /// This status with a JSON body.
    Status(u16, String),
    /// Sends these events, then waits for the client to close the connection.
    Hold(Vec<String>),
}

struct Server {
    base_url: String,
    requests: mpsc::UnboundedReceiver<Captured>,
    /// Fires when the client closed the connection (for [`Answer::Hold`]).
    closed: oneshot::Receiver<()>,
}

async fn serve(answer: Answer) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (req_tx, requests) = mpsc::unbounded_channel();
    let (closed_tx, closed) = oneshot::channel();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.expect("accept");
        let captured = read_request(&mut sock).await;
        let _ = req_tx.send(captured);
        respond(sock, answer, closed_tx).await;
    });
    Server {
        base_url: format!("http://{addr}/v1"),
        requests,
        closed,
    }
}

async fn read_request(sock: &mut TcpStream) -> Captured {
    let mut buf = Vec::new();
    let mut piece = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = sock.read(&mut piece).await.expect("read request");
        assert!(n > 0, "client closed before sending a request");
        buf.extend_from_slice(&piece[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("content-length");
    while buf.len() < head_end + length {
        let n = sock.read(&mut piece).await.expect("read body");
        assert!(n > 0, "client closed in the middle of its request");
        buf.extend_from_slice(&piece[..n]);
    }
    let body = serde_json::from_slice(&buf[head_end..head_end + length]).expect("json body");
    Captured { head, body }
}

fn chunk(data: &str) -> Vec<u8> {
    format!("{:x}\r\n{data}\r\n", data.len()).into_bytes()
}

async fn respond(mut sock: TcpStream, answer: Answer, closed: oneshot::Sender<()>) {
    const SSE_CHUNKED: &str =
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
    match answer {
        Answer::Sse(events, End::Close) => {
            let mut out =
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
                    .to_vec();
            for e in events {
                out.extend(format!("data: {e}\n\n").into_bytes());
            }
            let _ = sock.write_all(&out).await;
        }
        Answer::Sse(events, end) => {
            let _ = sock.write_all(SSE_CHUNKED.as_bytes()).await;
            for e in events {
                // One write per event, as a streaming server does.
                let _ = sock.write_all(&chunk(&format!("data: {e}\n\n"))).await;
            }
            if matches!(end, End::Complete) {
                let _ = sock.write_all(b"0\r\n\r\n").await;
                // Wait for the client to be done with the connection.
                let _ = sock.read(&mut [0u8; 64]).await;
            }
        }
        Answer::Status(code, body) => {
            let head = format!(
                "HTTP/1.1 {code} Status\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(format!("{head}{body}").as_bytes()).await;
        }
        Answer::Hold(events) => {
            let _ = sock.write_all(SSE_CHUNKED.as_bytes()).await;
            for e in events {
                let _ = sock.write_all(&chunk(&format!("data: {e}\n\n"))).await;
            }
            // The client sends nothing more: a read ends only when it closes.
            let mut sink = [0u8; 64];
            loop {
                match sock.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            let _ = closed.send(());
        }
    }
}

fn config(base_url: &str) -> sessiond_config::OpenAiAgent {
    sessiond_config::OpenAiAgent {
        base_url: base_url.to_owned(),
        model: Some("config-model".to_owned()),
        api_key_env: None,
        temperature: None,
        connect_timeout_ms: 2000,
        idle_timeout_ms: 5000,
    }
}

fn agent(cfg: &sessiond_config::OpenAiAgent) -> OpenAiAgent {
    OpenAiAgent::new(cfg).expect("valid config")
}

async fn captured(server: &mut Server) -> Captured {
    tokio::time::timeout(LIMIT, server.requests.recv())
        .await
        .expect("a request in time")
        .expect("server ran")
}

fn delta(d: Value) -> String {
    json!({"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [{"index": 0, "delta": d, "finish_reason": null}]})
        .to_string()
}

fn finish(reason: &str) -> String {
    json!({"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
        .to_string()
}

fn usage(prompt: u64, completion: u64) -> String {
    json!({"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [],
           "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}})
    .to_string()
}

fn hello_stream() -> Vec<String> {
    vec![
        delta(json!({"role": "assistant", "content": ""})),
        delta(json!({"content": "Hel"})),
        delta(json!({"content": "lo"})),
        finish("stop"),
        usage(12, 2),
        "[DONE]".to_owned(),
    ]
}

#[tokio::test]
async fn a_stream_becomes_chunks_thoughts_tool_calls_and_usage() {
    setup();
    let mut server = serve(Answer::Sse(
        vec![
            delta(json!({"role": "assistant", "content": ""})),
            delta(json!({"reasoning_content": "let me think"})),
            delta(json!({"content": "Hel"})),
            delta(json!({"content": "lo"})),
            delta(json!({"tool_calls": [{"index": 0, "id": "call_9", "type": "function", "function": {"name": "lookup", "arguments": ""}}]})),
            delta(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"q\":"}}]})),
            delta(json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"x\"}"}}]})),
            finish("tool_calls"),
            usage(11, 7),
            "[DONE]".to_owned(),
        ],
        End::Complete,
    ))
    .await;
    let (result, events, emit) = run(&agent(&config(&server.base_url)), input("hi")).await;
    assert_eq!(result, Ok(()));
    let types: Vec<_> = events.iter().map(Event::type_name).collect();
    assert_eq!(
        types,
        [
            "agent_thought_chunk",
            "agent_message_chunk",
            "agent_message_chunk",
            "tool_call"
        ]
    );
    assert!(matches!(&events[0], Event::AgentThoughtChunk { text, .. } if text == "let me think"));
    match &events[3] {
        Event::ToolCall {
            tool_call_id,
            name,
            input,
            ..
        } => {
            assert_eq!((tool_call_id.as_str(), name.as_str()), ("call_9", "lookup"));
            assert_eq!(input, &json!({"q": "x"}));
        }
        other => panic!("expected a tool call, got {other:?}"),
    }
    let acc = emit.snapshot();
    assert_eq!(acc.content, "Hello");
    assert_eq!((acc.usage.input_tokens, acc.usage.output_tokens), (11, 7));
    let req = captured(&mut server).await;
    assert!(
        req.head
            .starts_with("POST /v1/chat/completions HTTP/1.1\r\n"),
        "{}",
        req.head
    );
    assert!(
        !req.head.to_ascii_lowercase().contains("authorization:"),
        "no key configured"
    );
}

#[tokio::test]
async fn the_request_carries_overrides_and_history() {
    setup();
    let mut server = serve(Answer::Sse(hello_stream(), End::Complete)).await;
    let mut cfg = config(&format!("{}/", server.base_url));
    cfg.temperature = Some(0.9);
    let mut turn = input("and now?");
    turn.history = vec![
        HistoryMessage {
            role: Role::User,
            content: "first question".into(),
        },
        HistoryMessage {
            role: Role::Assistant,
            content: "first answer".into(),
        },
    ];
    turn.overrides = Overrides {
        model: Some("override-model".into()),
        model_provider: None,
        temperature: Some(0.25),
    };
    let (result, _, _) = run(&agent(&cfg), turn).await;
    assert_eq!(result, Ok(()));
    let req = captured(&mut server).await;
    assert!(
        req.head.starts_with("POST /v1/chat/completions "),
        "{}",
        req.head
    );
    assert_eq!(
        req.body,
        json!({
            "model": "override-model",
            "temperature": 0.25,
            "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "first answer"},
                {"role": "user", "content": "and now?"}
            ]
        })
    );
}

#[tokio::test]
async fn without_overrides_the_configured_model_and_temperature_apply() {
    setup();
    let mut server = serve(Answer::Sse(hello_stream(), End::Complete)).await;
    let mut cfg = config(&server.base_url);
    cfg.temperature = Some(0.7);
    let (result, _, _) = run(&agent(&cfg), input("hi")).await;
    assert_eq!(result, Ok(()));
    let body = captured(&mut server).await.body;
    assert_eq!(body["model"], "config-model");
    assert_eq!(body["temperature"], 0.7);
}

#[tokio::test]
async fn the_api_key_is_sent_as_a_bearer_token() {
    setup();
    let mut server = serve(Answer::Sse(hello_stream(), End::Complete)).await;
    let mut cfg = config(&server.base_url);
    cfg.api_key_env = Some(KEY_VAR.to_owned());
    let (result, _, _) = run(&agent(&cfg), input("hi")).await;
    assert_eq!(result, Ok(()));
    let head = captured(&mut server).await.head;
    assert!(
        head.contains(&format!("authorization: Bearer {KEY}\r\n")),
        "{head}"
    );
}

#[tokio::test]
async fn the_api_key_never_appears_in_an_error() {
    setup();
    let body = json!({"error": {"message": format!("Incorrect API key provided: {KEY}"), "type": "invalid_request_error"}});
    let server = serve(Answer::Status(401, body.to_string())).await;
    let mut cfg = config(&server.base_url);
    cfg.api_key_env = Some(KEY_VAR.to_owned());
    let (result, _, _) = run(&agent(&cfg), input("hi")).await;
    let err = result.expect_err("401 fails");
    assert!(
        err.starts_with("provider returned HTTP 401: Incorrect API key provided"),
        "{err}"
    );
    assert!(!err.contains(KEY), "{err}");
}

#[tokio::test]
async fn a_missing_key_variable_is_named() {
    setup();
    let mut cfg = config("http://127.0.0.1:9/v1");
    cfg.api_key_env = Some("SESSIOND_TEST_UNSET_KEY".to_owned());
    let (result, _, _) = run(&agent(&cfg), input("hi")).await;
    assert_eq!(
        result,
        Err("the api key variable SESSIOND_TEST_UNSET_KEY is not set".to_owned())
    );
}

#[tokio::test]
async fn no_model_fails_clearly() {
    setup();
    let mut cfg = config("http://127.0.0.1:9/v1");
    cfg.model = None;
    let (result, _, _) = run(&agent(&cfg), input("hi")).await;
    let err = result.expect_err("no model");
    assert!(err.starts_with("no model is set"), "{err}");
}

#[tokio::test]
async fn an_http_500_fails_with_its_status() {
    setup();
    let server = serve(Answer::Status(500, "upstream exploded\n  badly".to_owned())).await;
    let (result, _, _) = run(&agent(&config(&server.base_url)), input("hi")).await;
    assert_eq!(
        result,
        Err("provider returned HTTP 500: upstream exploded badly".to_owned())
    );
}

#[tokio::test]
async fn a_stream_cut_in_the_middle_fails() {
    setup();
    let server = serve(Answer::Sse(
        vec![delta(json!({"content": "Hel"}))],
        End::Cut,
    ))
    .await;
    let (result, events, _) = run(&agent(&config(&server.base_url)), input("hi")).await;
    let err = result.expect_err("a cut stream fails");
    assert!(err.starts_with("the provider's stream broke"), "{err}");
    assert_eq!(events.len(), 1, "the part that arrived was published");
}

#[tokio::test]
async fn a_stream_that_ends_without_done_fails() {
    setup();
    let server = serve(Answer::Sse(
        vec![delta(json!({"content": "Hel"}))],
        End::Close,
    ))
    .await;
    let (result, _, _) = run(&agent(&config(&server.base_url)), input("hi")).await;
    assert_eq!(
        result,
        Err("the provider's stream ended before the reply was complete".to_owned())
    );
}

#[tokio::test]
async fn cancel_closes_the_connection() {
    setup();
    let server = serve(Answer::Hold(vec![delta(json!({"content": "Hel"}))])).await;
    let mut r = start(&agent(&config(&server.base_url)), input("hi"));
    assert!(matches!(r.next().await, Event::AgentMessageChunk { text, .. } if text == "Hel"));
    r.cancel.cancel();
    let (result, _) = r.end().await;
    assert_eq!(result, Ok(()));
    tokio::time::timeout(Duration::from_secs(5), server.closed)
        .await
        .expect("the server sees the connection closed in time")
        .expect("server ran");
}

#[tokio::test]
async fn a_silent_stream_times_out() {
    setup();
    let server = serve(Answer::Hold(vec![delta(json!({"content": "Hel"}))])).await;
    let mut cfg = config(&server.base_url);
    cfg.idle_timeout_ms = 300;
    let (result, _, _) = run(&agent(&cfg), input("hi")).await;
    assert_eq!(
        result,
        Err("the provider sent nothing for 300 ms".to_owned())
    );
    tokio::time::timeout(Duration::from_secs(5), server.closed)
        .await
        .expect("the connection is closed in time")
        .expect("server ran");
}

#[tokio::test]
async fn an_unreachable_server_fails() {
    setup();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let (result, _, _) = run(&agent(&config(&format!("http://{addr}/v1"))), input("hi")).await;
    let err = result.expect_err("nothing listens");
    assert!(err.starts_with("cannot reach the provider"), "{err}");
    // The URL is named (issue 13), without credentials or query.
    assert!(err.contains(&format!("at http://{addr}/v1/")), "{err}");
}

#[tokio::test]
async fn a_whole_json_reply_is_accepted() {
    setup();
    let body = json!({"id": "c1", "object": "chat.completion", "choices": [{"index": 0,
        "message": {"role": "assistant", "content": "whole reply"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2}});
    let server = serve(Answer::Status(200, body.to_string())).await;
    let (result, _, emit) = run(&agent(&config(&server.base_url)), input("hi")).await;
    assert_eq!(result, Ok(()));
    let acc = emit.snapshot();
    assert_eq!(acc.content, "whole reply");
    assert_eq!((acc.usage.input_tokens, acc.usage.output_tokens), (3, 2));
}

#[tokio::test]
async fn configs_that_cannot_work_are_unavailable() {
    setup();
    let mut cfg = sessiond_config::Config::default();
    cfg.agents
        .insert("bad".into(), AgentConfig::OpenAi(config("not a url")));
    cfg.agents.insert(
        "ftp".into(),
        AgentConfig::OpenAi(config("ftp://127.0.0.1/v1")),
    );
    cfg.agents.insert(
        "good".into(),
        AgentConfig::OpenAi(config("http://127.0.0.1:11434/v1")),
    );
    let agents = Agents::from_config(&cfg);
    for alias in ["bad", "ftp"] {
        let err = agents.get(alias).err().expect("unavailable").to_string();
        assert!(err.contains("base_url"), "{err}");
    }
    assert_eq!(agents.get("good").expect("available").kind(), "openai");
}
