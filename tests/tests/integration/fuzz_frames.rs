//! Arbitrary frames, JSON and not, sent to the real daemon over plain HTTP and over
//! WebSocket on its Unix socket: no frame makes it panic or hang, every frame that
//! is not made only of notifications is answered with JSON-RPC objects (a request
//! with a number or string id gets that id back), notifications get `204` (over
//! HTTP) or nothing (over WebSocket). The inputs come from proptest with a fixed
//! seed, so every run sends the same frames.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Map, Value};
use sessiond_tests::Daemon;

/// Every method except `admin/shutdown` (which would stop the daemon under test),
/// and a few that do not exist.
const METHODS: &[&str] = &[
    "initialize",
    "daemon/status",
    "session/new",
    "session/load",
    "session/list",
    "session/get",
    "session/messages",
    "session/configure",
    "session/close",
    "session/delete",
    "session/subscribe",
    "session/prompt",
    "session/cancel",
    "session/respond",
    "session/upload",
    "session/uploads",
    "admin/kill",
    "admin/sessions",
    "admin/stats",
    "admin/tuis",
    "nope",
    "",
    "session/",
];

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![Just("s_0"), Just("sha256:0"), Just("/tmp"), Just("echo")]
            .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((field_name(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "session_id",
            "text",
            "name",
            "data_b64",
            "path",
            "agent",
            "mode",
            "cwd",
            "title",
            "overrides",
            "ttl_secs",
            "from",
            "limit",
            "since_seq",
            "request_id",
            "response",
            "interrupt",
            "wait",
            "take_over",
            "client_name",
            "tui_id",
            "tui_sig",
        ])
        .prop_map(String::from),
        "[a-z_]{0,8}",
    ]
}

/// An id as JSON text: legal ones, and the numbers jsonrpsee cannot carry.
fn raw_id() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        any::<u32>().prop_map(|n| Some(n.to_string())),
        any::<i64>().prop_map(|n| Some(n.to_string())),
        prop::sample::select(vec![
            "-1",
            "1.5",
            "1e3",
            "-0",
            "18446744073709551616",
            "null",
            "\"x\"",
            "true",
            "{}",
            "[]",
        ])
        .prop_map(|s| Some(s.to_owned())),
    ]
}

/// One call as JSON text (keys may be missing or wrong).
fn call() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["\"2.0\"", "\"1.0\"", "2", "null", ""]),
        raw_id(),
        prop::sample::select(METHODS.to_vec()),
        prop::option::of(any_json()),
    )
        .prop_map(|(version, id, method, params)| {
            let mut parts = Vec::new();
            if !version.is_empty() {
                parts.push(format!("\"jsonrpc\":{version}"));
            }
            if let Some(id) = id {
                parts.push(format!("\"id\":{id}"));
            }
            parts.push(format!("\"method\":{}", json!(method)));
            if let Some(p) = params {
                parts.push(format!("\"params\":{p}"));
            }
            format!("{{{}}}", parts.join(","))
        })
}

fn frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => call().prop_map(String::into_bytes),
        2 => prop::collection::vec(call(), 0..4).prop_map(|v| format!("[{}]", v.join(",")).into_bytes()),
        1 => any_json().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => call().prop_flat_map(|c| {
            let n = c.len();
            (Just(c), 0..n.max(1))
        })
        .prop_map(|(c, cut)| c.as_bytes()[..cut.min(c.len())].to_vec()),
    ]
}

/// A reply object: `jsonrpc: "2.0"`, an `id`, and exactly one of result and error.
fn check_reply_object(v: &Value, frame: &str) {
    let o = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v} for {frame}"));
    assert_eq!(o.get("jsonrpc"), Some(&json!("2.0")), "{v} for {frame}");
    assert!(o.contains_key("id"), "no id in {v} for {frame}");
    assert!(
        o.contains_key("result") ^ o.contains_key("error"),
        "{v} for {frame}"
    );
    if let Some(e) = o.get("error") {
        assert!(e["code"].is_i64(), "{v} for {frame}");
        assert!(e["message"].is_string(), "{v} for {frame}");
    }
}

/// Whether `frame` is valid JSON made only of notifications (objects without an id).
fn only_notifications(frame: &[u8]) -> bool {
    let is_note = |v: &Value| v.as_object().is_some_and(|o| !o.contains_key("id"));
    match serde_json::from_slice::<Value>(frame) {
        Ok(Value::Array(items)) => !items.is_empty() && items.iter().all(is_note),
        Ok(v) => is_note(&v),
        Err(_) => false,
    }
}

#[tokio::test]
async fn arbitrary_frames_are_all_answered_and_nothing_panics() {
    let d = Daemon::start().await;
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = frame();
    for _ in 0..400 {
        let bytes = strategy.new_tree(&mut runner).expect("a frame").current();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        // The harness sends text; frames that are not UTF-8 go lossily converted.
        let (status, body) = d.http_raw(&text).await.expect("an answer");
        if status == 204 {
            assert!(body.is_empty(), "{body} for {text}");
            assert!(only_notifications(text.as_bytes()), "204 for {text}");
            continue;
        }
        assert_eq!(status, 200, "{body} for {text}");
        let reply: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body:?} for {text}"));
        match &reply {
            Value::Array(items) => {
                assert!(!items.is_empty(), "empty batch reply for {text}");
                items.iter().for_each(|r| check_reply_object(r, &text));
            }
            one => check_reply_object(one, &text),
        }
        // A single request with an id jsonrpsee reads gets that id back.
        if let Ok(Value::Object(req)) = serde_json::from_str::<Value>(&text) {
            if let Some(id @ (Value::String(_) | Value::Number(_))) = req.get("id") {
                if req.get("jsonrpc") == Some(&json!("2.0")) && req.get("method").is_some() {
                    assert_eq!(reply.get("id"), Some(id), "for {text}");
                }
            }
        }
    }
    d.client().await.status().await.expect("still serving");
    assert!(!d.log().contains("panicked"), "{}", d.log());
}

/// Whether jsonrpsee takes `v` as a notification (no reply): an object without an
/// id, with `"jsonrpc":"2.0"` and a string method.
fn is_ws_notification(v: &Value) -> bool {
    v.as_object().is_some_and(|o| {
        !o.contains_key("id") && o.get("jsonrpc") == Some(&json!("2.0")) && o["method"].is_string()
    })
}

/// Whether a WebSocket message gets a reply: anything but a notification or a
/// non-empty batch of notifications.
fn ws_expects_reply(frame: &str) -> bool {
    match serde_json::from_str::<Value>(frame) {
        Ok(Value::Array(items)) => items.is_empty() || !items.iter().all(is_ws_notification),
        Ok(v) => !is_ws_notification(&v),
        Err(_) => true,
    }
}

/// `text` as masked WebSocket frames: split at `cuts` into fragments, with a ping
/// after the first fragment when `ping`.
fn fragmented(text: &[u8], cuts: &[usize], ping: bool) -> Vec<u8> {
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (text.len() + 1)).collect();
    bounds.sort();
    bounds.dedup();
    bounds.retain(|&b| b > 0 && b < text.len());
    bounds.push(text.len());
    let mask = [0x9a, 0x01, 0x7c, 0xe3];
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &end) in bounds.iter().enumerate() {
        let part = &text[start..end];
        let fin = if i + 1 == bounds.len() { 0x80 } else { 0 };
        out.push(fin | if i == 0 { 0x1 } else { 0x0 });
        match part.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(part.iter().enumerate().map(|(j, b)| b ^ mask[j % 4]));
        if i == 0 && ping && bounds.len() > 1 {
            out.extend_from_slice(&[0x89, 0x82, 1, 2, 3, 4, b'p' ^ 1, b'g' ^ 2]);
        }
        start = end;
    }
    out
}

#[tokio::test]
async fn arbitrary_websocket_messages_are_all_answered_and_nothing_panics() {
    let d = Daemon::start().await;
    let mut ws = sessiond_tests::raw_ws::RawWs::connect(&d.socket())
        .await
        .expect("ws");
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = (
        frame(),
        prop::collection::vec(any::<usize>(), 0..3),
        any::<bool>(),
    );
    for n in 0..400 {
        let (bytes, cuts, ping) = strategy.new_tree(&mut runner).expect("a frame").current();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        ws.send_raw(&fragmented(text.as_bytes(), &cuts, ping))
            .await
            .unwrap();
        let sentinel = format!("sentinel-{n}");
        ws.send_text(&json!({"jsonrpc":"2.0","id":sentinel,"method":"daemon/status"}).to_string())
            .await
            .unwrap();
        let expected = ws_expects_reply(&text);
        let mut replies = Vec::new();
        let mut sentinel_seen = false;
        while !sentinel_seen || (expected && replies.is_empty()) {
            let reply = ws
                .read_json()
                .await
                .unwrap_or_else(|e| panic!("{e}: no reply for {text}"));
            if reply.get("method").is_some() {
                continue; // a subscription's notification
            }
            if reply["id"] == json!(sentinel) {
                sentinel_seen = true;
            } else {
                replies.push(reply);
            }
        }
        assert!(replies.len() <= 1, "{replies:?} for {text}");
        let Some(reply) = replies.pop() else { continue };
        match &reply {
            Value::Array(items) => {
                assert!(!items.is_empty(), "empty batch reply for {text}");
                items.iter().for_each(|r| check_reply_object(r, &text));
            }
            one => check_reply_object(one, &text),
        }
        if let Ok(Value::Object(req)) = serde_json::from_str::<Value>(&text) {
            if let Some(id @ (Value::String(_) | Value::Number(_))) = req.get("id") {
                if req.get("jsonrpc") == Some(&json!("2.0")) && req.get("method").is_some() {
                    assert_eq!(reply.get("id"), Some(id), "for {text}");
                }
            }
        }
    }
    ws.ok("daemon/status", json!({}))
        .await
        .expect("still serving");
    assert!(!d.log().contains("panicked"), "{}", d.log());
}
