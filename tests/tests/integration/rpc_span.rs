//! Every call runs in an `rpc` span naming its method and, when the params name one,
//! its session (daemon/src/rpc/span.rs): the log lines a call causes carry both when
//! the log level records the span.

use serde_json::Value;
use sessiond_tests::{new_session, Daemon, Dirs};

#[tokio::test]
async fn a_calls_log_lines_name_its_method_and_session() {
    let dirs = Dirs::new();
    std::fs::write(dirs.config_path(), "log_format = \"json\"\n").unwrap();
    // `answered` is the span's own debug line, written as each call ends.
    let d = Daemon::start_in_with(dirs, |cmd| {
        cmd.env("SESSIOND_LOG", "info,sessiond::rpc::span=debug");
    })
    .await
    .expect("daemon starts");
    let c = d.client().await;
    let id = new_session(&c, "echo").await;
    c.get_session(&id).await.expect("session/get");
    c.status().await.expect("daemon/status");
    let log = d.log();
    let answered: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "answered")
        .collect();
    let get = answered
        .iter()
        .find(|v| v["span"]["method"] == "session/get")
        .unwrap_or_else(|| panic!("no answered line of session/get: {log}"));
    assert_eq!(get["span"]["name"], "rpc");
    assert_eq!(get["span"]["session_id"], id.0.as_str());
    let status = answered
        .iter()
        .find(|v| v["span"]["method"] == "daemon/status")
        .unwrap_or_else(|| panic!("no answered line of daemon/status: {log}"));
    assert!(status["span"].get("session_id").is_none(), "{status}");
}
