//! The daemon's log: `log_format = "json"` writes one JSON object a line;
//! `RUST_LOG` sets the filter when `SESSIOND_LOG` does not.

use sessiond_tests::{http_post, Daemon, Dirs};
use std::process::Stdio;

#[tokio::test]
async fn json_log_lines_are_json_objects() {
    let d = Daemon::start_with("log_format = \"json\"\n").await;
    let log = d.log();
    let serving = log
        .lines()
        .find(|l| l.contains("sessiond serving"))
        .unwrap_or_else(|| panic!("no serving line: {log}"));
    let v: serde_json::Value = serde_json::from_str(serving).expect("a json line");
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["fields"]["message"], "sessiond serving");
}

/// Starts `serve` with `env`, waits until it answers, stops it; returns its log.
async fn log_with(env: &[(&str, &str)]) -> String {
    let dirs = Dirs::new();
    let mut cmd = dirs.command();
    cmd.env_remove("SESSIOND_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let log = std::fs::File::create(dirs.log_path()).unwrap();
    let mut child = cmd
        .arg("serve")
        .stdin(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"daemon/status"}"#;
    sessiond_tests::wait_for("the daemon to answer", || async {
        http_post(&dirs.socket(), body).await.ok()
    })
    .await;
    // SAFETY: our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    std::fs::read_to_string(dirs.log_path()).unwrap()
}

#[tokio::test]
async fn rust_log_is_honoured_and_sessiond_log_wins() {
    let quiet = log_with(&[("RUST_LOG", "warn")]).await;
    assert!(!quiet.contains("sessiond serving"), "{quiet}");
    let both = log_with(&[("RUST_LOG", "warn"), ("SESSIOND_LOG", "info")]).await;
    assert!(both.contains("sessiond serving"), "{both}");
}
