//! Arbitrary frames, JSON and not, sent to the real daemon over plain HTTP on its
//! Unix socket: no frame makes it panic or hang, every frame that is not made only
//! of notifications is answered with JSON-RPC objects (a request with a usable id
//! gets that id back), notifications get `204` and nothing else. The inputs come
//! from proptest with a fixed seed, so every run sends the same frames.

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
