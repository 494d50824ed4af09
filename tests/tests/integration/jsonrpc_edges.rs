//! JSON-RPC edges over plain HTTP on the Unix socket (PROTOCOL.md 11.4), against the
//! real daemon: every id JSON allows is answered with that id as written, ids of a
//! wrong type get `-32600` with `id: null`, bad JSON `-32700` with `id: null`,
//! notifications `204` with an empty body, and a stalled body is not held.

use serde_json::{json, Value};
use sessiond_tests::{Daemon, WAIT};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn status_call(id: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"daemon/status"}}"#)
}

#[tokio::test]
async fn every_numeric_id_is_answered_with_that_id_as_written() {
    let d = Daemon::start().await;
    for id in sessiond_tests::ODD_AND_PLAIN_IDS {
        let (status, body) = d.http_raw(&status_call(id)).await.expect("post");
        assert_eq!(status, 200, "{id}: {body}");
        assert!(body.contains(&format!("\"id\":{id}")), "{id}: {body}");
        let v: Value = serde_json::from_str(&body).expect("json reply");
        assert!(v["result"]["pid"].is_number(), "{id}: {body}");
    }
    // In a batch too, beside an id of a wrong type.
    let batch = format!("[{},{}]", status_call("-5.25"), status_call("true"));
    let (_, body) = d.http_raw(&batch).await.unwrap();
    let v: Vec<Value> = serde_json::from_str(&body).expect("array reply");
    assert_eq!(v.len(), 2, "{body}");
    assert!(body.contains("\"id\":-5.25"), "{body}");
    assert!(v
        .iter()
        .any(|r| r["error"]["code"] == -32600 && r["id"].is_null()));
}

#[tokio::test]
async fn wrong_ids_and_bad_json_get_their_errors_with_a_null_id() {
    let d = Daemon::start().await;
    // The last one is two ids (jsonrpsee would take the call for a notification).
    for id in ["true", "false", "{}", "[1]", "{\"a\":1}", "1,\"id\":2"] {
        let v = d.http(&status_call(id)).await;
        assert_eq!(v["error"]["code"], -32600, "{id}: {v}");
        assert_eq!(v["id"], Value::Null, "{id}");
    }
    for bad in ["{", "not json", "{\"jsonrpc\":\"2.0\",\"id\":1,", "[1,"] {
        let v = d.http(bad).await;
        assert_eq!(v["error"]["code"], -32700, "{bad}: {v}");
        assert_eq!(v["id"], Value::Null, "{bad}");
    }
}

#[tokio::test]
async fn notifications_over_http_get_204_and_no_body() {
    let d = Daemon::start().await;
    let note = r#"{"jsonrpc":"2.0","method":"daemon/status"}"#;
    assert_eq!(d.http_raw(note).await.unwrap(), (204, String::new()));
    let batch = format!("[{note},{note}]");
    assert_eq!(d.http_raw(&batch).await.unwrap(), (204, String::new()));
    // A batch with one request among notifications answers the request only.
    let mixed = format!("[{note},{}]", status_call("9"));
    let (status, body) = d.http_raw(&mixed).await.unwrap();
    assert_eq!(status, 200);
    let v: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["id"], json!(9));
}

#[tokio::test]
async fn a_stalled_request_body_is_timed_out() {
    let d = Daemon::start().await;
    let mut s = tokio::net::UnixStream::connect(d.socket()).await.unwrap();
    s.write_all(
        b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
          Content-Length: 1000\r\n\r\n{\"jsonrpc\":",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let mut reply = Vec::new();
    // The body never comes; the daemon answers and closes on its own.
    tokio::time::timeout(WAIT + Duration::from_secs(40), s.read_to_end(&mut reply))
        .await
        .expect("the daemon let go of the stalled request")
        .unwrap();
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(60));
    // Other clients were served all along.
    d.client().await.status().await.expect("status");
}

#[tokio::test]
async fn a_subscription_inside_a_websocket_batch_is_answered_once() {
    let d = Daemon::start().await;
    let c = d.tui().await;
    let id = sessiond_tests::new_session(&c, "echo").await;
    let mut ws = sessiond_tests::raw_ws::RawWs::connect(&d.socket())
        .await
        .expect("ws");
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "session/subscribe", "params": {"session_id": id}},
        {"jsonrpc": "2.0", "id": 2, "method": "daemon/status"},
    ]);
    ws.send_text(&batch.to_string()).await.unwrap();
    let first = ws.read_json().await.expect("a reply");
    let items = first
        .as_array()
        .unwrap_or_else(|| panic!("not the batch reply: {first}"));
    assert_eq!(items.len(), 2, "{first}");
    let sub = items
        .iter()
        .find(|r| r["id"] == 1)
        .expect("the subscribe entry");
    assert_eq!(sub["error"]["code"], -32600, "{first}");
    assert!(items
        .iter()
        .any(|r| r["id"] == 2 && r["result"].is_object()));
    // Nothing else was sent for the subscription: the next frame answers the next call.
    ws.send_text(&status_call("3")).await.unwrap();
    let next = ws.read_json().await.expect("a reply");
    assert_eq!(next["id"], 3, "{next}");
}
