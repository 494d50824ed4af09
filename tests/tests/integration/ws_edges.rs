//! JSON-RPC edges over WebSocket (PROTOCOL.md 11.4), on the Unix socket and on the
//! TCP WebSocket of the real daemon: every id JSON allows is answered once with
//! that id as written, an id of a wrong type gets `-32600` with `id: null` and its
//! method does not run, batches keep their shape, notifications get nothing, and
//! the connection keeps working.

use serde_json::{json, Value};
use sessiond_tests::raw_ws::RawWs;
use sessiond_tests::{admin_count, Daemon};

/// A daemon with its TCP WebSocket on, and a raw client on each transport.
async fn daemon_and_clients() -> (Daemon, Vec<(&'static str, RawWs)>) {
    let d = Daemon::start_with("[ws]\nlisten = \"127.0.0.1:0\"\n").await;
    let status = d.client().await.status().await.expect("status");
    let addr = status.ws_listen.expect("ws_listen");
    let token = std::fs::read_to_string(d.dirs.data_dir().join("ws.token")).expect("token");
    let unix = RawWs::connect(&d.socket()).await.expect("unix ws");
    let tcp = RawWs::connect_tcp(&addr, token.trim())
        .await
        .expect("tcp ws");
    (d, vec![("unix", unix), ("tcp", tcp)])
}

fn status_call(id: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"daemon/status"}}"#)
}

fn new_session_call(id: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"session/new","params":{{"agent":"echo","keep_siblings":true}}}}"#
    )
}

/// Sends a call with a plain id and checks its reply is the next message: nothing
/// else (a stray reply) came before it.
async fn still_works(ws: &mut RawWs, t: &str) {
    ws.send_text(&status_call("\"after\"")).await.unwrap();
    let v = ws.read_json().await.expect("a reply");
    assert_eq!(v["id"], "after", "{t}: {v}");
    assert!(v["result"]["pid"].is_number(), "{t}: {v}");
}

#[tokio::test]
async fn every_numeric_id_is_answered_once_with_that_id_as_written() {
    let (_d, clients) = daemon_and_clients().await;
    for (t, mut ws) in clients {
        for id in sessiond_tests::ODD_AND_PLAIN_IDS {
            ws.send_text(&status_call(id)).await.unwrap();
            let text = ws.read_text().await.expect("a reply");
            assert!(text.contains(&format!("\"id\":{id}")), "{t} {id}: {text}");
            let v: Value = serde_json::from_str(&text).expect("json");
            assert!(v["result"]["pid"].is_number(), "{t} {id}: {text}");
            // Exactly one reply: the next message answers the next call.
            still_works(&mut ws, t).await;
        }
        // A notification gets nothing.
        ws.send_text(r#"{"jsonrpc":"2.0","method":"daemon/status"}"#)
            .await
            .unwrap();
        still_works(&mut ws, t).await;
    }
}

#[tokio::test]
async fn an_id_of_a_wrong_type_is_refused_and_its_method_does_not_run() {
    let (d, clients) = daemon_and_clients().await;
    let admin = d.client().await;
    for (t, mut ws) in clients {
        let before = admin_count(&admin).await;
        // The last one is two ids: jsonrpsee would run it as a notification.
        for id in ["true", "false", "{}", "[1]", r#"{"a":-1}"#, r#"1,"id":2"#] {
            ws.send_text(&new_session_call(id)).await.unwrap();
            let v = ws.read_json().await.expect("a reply");
            assert_eq!(v["error"]["code"], -32600, "{t} {id}: {v}");
            assert!(v.get("id").is_some_and(Value::is_null), "{t} {id}: {v}");
            still_works(&mut ws, t).await;
        }
        assert_eq!(admin_count(&admin).await, before, "{t}: a refused call ran");
        // The same call with a usable id does create a session.
        ws.send_text(&new_session_call("-3")).await.unwrap();
        let text = ws.read_text().await.expect("a reply");
        assert!(text.contains("\"id\":-3"), "{t}: {text}");
        assert!(text.contains("\"result\""), "{t}: {text}");
        assert_eq!(admin_count(&admin).await, before + 1, "{t}");
    }
}

#[tokio::test]
async fn a_mixed_batch_keeps_its_entries_in_one_array() {
    let (d, clients) = daemon_and_clients().await;
    let admin = d.client().await;
    for (t, mut ws) in clients {
        let before = admin_count(&admin).await;
        let batch = format!(
            "[{},{},{},{}]",
            status_call("-5.25"),
            new_session_call("true"),
            status_call("7"),
            r#"{"jsonrpc":"2.0","method":"daemon/status"}"#,
        );
        ws.send_text(&batch).await.unwrap();
        let text = ws.read_text().await.expect("a reply");
        let items: Vec<Value> = serde_json::from_str(&text).expect("one array");
        assert_eq!(items.len(), 3, "{t}: {text}");
        assert!(text.contains("\"id\":-5.25"), "{t}: {text}");
        assert!(items
            .iter()
            .any(|r| r["id"] == 7 && r["result"].is_object()));
        assert!(items
            .iter()
            .any(|r| r["error"]["code"] == -32600 && r["id"].is_null()));
        still_works(&mut ws, t).await;
        assert_eq!(
            admin_count(&admin).await,
            before,
            "{t}: a refused entry ran"
        );
    }
}

#[tokio::test]
async fn a_prompt_with_a_negative_id_is_answered_with_that_id() {
    let (_d, clients) = daemon_and_clients().await;
    for (t, mut ws) in clients {
        let created = ws
            .ok(
                "session/new",
                json!({"agent": "echo", "keep_siblings": true}),
            )
            .await
            .expect("session/new");
        let id = &created["session"]["session_id"];
        let prompt = json!({
            "jsonrpc": "2.0",
            "id": -1,
            "method": "session/prompt",
            "params": {"session_id": id, "text": "hello"},
        });
        ws.send_text(&prompt.to_string()).await.unwrap();
        let text = ws.read_text().await.expect("a reply");
        assert!(text.contains("\"id\":-1"), "{t}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(v["result"].is_object(), "{t}: {text}");
        still_works(&mut ws, t).await;
    }
}
