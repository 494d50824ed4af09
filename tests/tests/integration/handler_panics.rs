//! A handler that panics is answered `-32603` with its id on every transport of the
//! real daemon (Unix socket over HTTP and WebSocket, TCP WebSocket), a log line
//! names the method, and the connection and the daemon go on (issue 10, defect 10).
//! The panicking methods exist only in debug builds started with
//! `SESSIOND_TEST_PANIC_METHODS` set: one synchronous (jsonrpsee runs those inside
//! the service's `call`, before any future exists), one async.

use serde_json::Value;
use sessiond_tests::raw_ws::RawWs;
use sessiond_tests::{Daemon, Dirs};

const METHODS: [&str; 2] = ["rpc.sessiond.test_panic", "rpc.sessiond.test_panic_async"];

async fn daemon_with_panicking_methods() -> Daemon {
    let dirs = Dirs::new();
    std::fs::write(dirs.config_path(), "[ws]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    Daemon::start_in_with(dirs, |cmd| {
        cmd.env("SESSIOND_TEST_PANIC_METHODS", "1");
    })
    .await
    .expect("daemon starts")
}

fn call(id: usize, method: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}"}}"#)
}

fn assert_internal_error(v: &Value, id: usize, what: &str) {
    assert_eq!(v["id"], id, "{what}: {v}");
    assert_eq!(v["error"]["code"], -32603, "{what}: {v}");
    assert_eq!(v["error"]["message"], "internal error", "{what}: {v}");
}

#[tokio::test]
async fn a_panicking_handler_is_answered_on_every_transport_and_the_daemon_goes_on() {
    let d = daemon_with_panicking_methods().await;
    let addr = d.client().await.status().await.unwrap().ws_listen.unwrap();
    let token = std::fs::read_to_string(d.dirs.data_dir().join("ws.token")).unwrap();
    let clients = [
        ("unix websocket", RawWs::connect(&d.socket()).await.unwrap()),
        (
            "tcp websocket",
            RawWs::connect_tcp(&addr, token.trim()).await.unwrap(),
        ),
    ];
    for (t, mut ws) in clients {
        for (id, method) in METHODS.iter().enumerate() {
            ws.send_text(&call(id, method)).await.unwrap();
            let v = ws.read_json().await.expect("the panic is answered");
            assert_internal_error(&v, id, &format!("{t} {method}"));
            // The same connection still answers.
            let ok = ws.ok("daemon/status", Value::Null).await.expect("status");
            assert!(ok["pid"].is_number(), "{t}: {ok}");
        }
    }
    for (id, method) in METHODS.iter().enumerate() {
        let (status, body) = d.http_raw(&call(id, method)).await.expect("http answer");
        assert_eq!(status, 200, "http {method}: {body}");
        let v: Value = serde_json::from_str(&body).expect("json");
        assert_internal_error(&v, id, &format!("http {method}"));
    }
    // One log line per panic, naming the method.
    sessiond_tests::wait_for("the panics to be logged", || async {
        let log = std::fs::read_to_string(d.dirs.log_path()).unwrap_or_default();
        let panics: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("an rpc handler panicked"))
            .collect();
        // The first name is a prefix of the second.
        let sync = panics
            .iter()
            .filter(|l| l.contains(METHODS[0]) && !l.contains(METHODS[1]))
            .count();
        let async_ = panics.iter().filter(|l| l.contains(METHODS[1])).count();
        (sync == 3 && async_ == 3).then_some(())
    })
    .await;
    // And the daemon serves everyone as before.
    let status = d
        .client()
        .await
        .status()
        .await
        .expect("status after the panics");
    assert!(status.pid > 0);
}

#[tokio::test]
async fn without_the_variable_the_panicking_methods_do_not_exist() {
    let d = Daemon::start().await;
    for (id, method) in METHODS.iter().enumerate() {
        let (_, body) = d.http_raw(&call(id, method)).await.expect("http answer");
        let v: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["error"]["code"], -32601, "{method}: {v}");
    }
}
