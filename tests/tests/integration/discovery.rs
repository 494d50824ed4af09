//! What a client in another language finds over plain HTTP on the socket:
//! `rpc.discover` returns the OpenRPC document (the one `sessiond schema` prints and
//! `protocol/schema/openrpc.json` holds), and a subscription asked over plain HTTP
//! is answered with why it needs the WebSocket.

use sessiond_tests::{cli, Daemon};

#[tokio::test]
async fn rpc_discover_returns_the_openrpc_document() {
    let d = Daemon::start().await;
    let reply = d
        .http(r#"{"jsonrpc":"2.0","id":1,"method":"rpc.discover"}"#)
        .await;
    let doc = &reply["result"];
    assert_eq!(doc["openrpc"], "1.3.2");
    let (code, printed, _) = cli(&d.dirs, &["schema"]);
    assert_eq!(code, 0);
    let printed: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(doc, &printed);
    let checked_in: serde_json::Value =
        serde_json::from_str(include_str!("../../../protocol/schema/openrpc.json")).unwrap();
    assert_eq!(doc, &checked_in);
}

#[tokio::test]
async fn subscribing_over_plain_http_says_the_websocket_is_needed() {
    let d = Daemon::start().await;
    let c = d.tui().await;
    let id = sessiond_tests::new_session(&c, "echo").await;
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":7,"method":"session/subscribe","params":{{"session_id":"{id}"}}}}"#
    );
    let reply = d.http(&body).await;
    assert_eq!(reply["id"], 7);
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    let msg = reply["error"]["message"].as_str().unwrap();
    assert!(msg.contains("websocket"), "{msg}");
    // The same call over the WebSocket works.
    assert!(c.subscribe(&id, None).await.is_ok());
}
