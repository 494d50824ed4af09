//! The daemon process: socket permissions, one daemon per socket, stale sockets,
//! graceful stop on SIGTERM, and errors for unknown methods and bad params.

use serde_json::json;
use sessiond_protocol::codes;
use sessiond_tests::{cli, Daemon, Dirs};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Stdio;

#[tokio::test]
async fn socket_and_directory_are_private() {
    let d = Daemon::start().await;
    let sock = fs::metadata(d.socket()).unwrap();
    assert_eq!(sock.mode() & 0o777, 0o600, "socket mode");
    let dir = fs::metadata(d.socket().parent().unwrap()).unwrap();
    assert_eq!(dir.mode() & 0o777, 0o700, "socket dir mode");
    let data = fs::metadata(d.dirs.data_dir()).unwrap();
    assert_eq!(data.mode() & 0o777, 0o700, "data dir mode");
    // The secret is created by the first `initialize` (tests/tests/integration/fresh_start.rs).
    let _tui = d.tui().await;
    let secret = fs::metadata(d.dirs.data_dir().join("tui.secret")).unwrap();
    assert_eq!(secret.mode() & 0o777, 0o600, "secret mode");
}

#[tokio::test]
async fn refuses_a_socket_directory_others_can_read() {
    let dirs = Dirs::new();
    let sock_dir = dirs.path().join("run/sessiond");
    fs::create_dir_all(&sock_dir).unwrap();
    fs::set_permissions(&sock_dir, fs::Permissions::from_mode(0o755)).unwrap();
    let (code, _, err) = cli(&dirs, &["serve"]);
    assert_ne!(code, 0);
    assert!(err.contains("accessible by group or others"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[tokio::test]
async fn second_daemon_on_the_same_socket_names_the_running_pid() {
    let d = Daemon::start().await;
    let out = d
        .dirs
        .command()
        .arg("serve")
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("pid {}", d.pid())), "{err}");
    // The first daemon still answers.
    let st = d
        .http(r#"{"jsonrpc":"2.0","id":1,"method":"daemon/status"}"#)
        .await;
    assert_eq!(st["result"]["pid"], d.pid());
}

#[tokio::test]
async fn stale_socket_after_kill9_is_replaced() {
    let mut d = Daemon::start().await;
    d.kill9();
    assert!(d.socket().exists(), "kill -9 leaves the socket file behind");
    let dirs = std::mem::take(&mut d.dirs);
    drop(d);
    let d2 = Daemon::start_in(dirs)
        .await
        .expect("starts over a stale socket");
    let st = d2
        .http(r#"{"jsonrpc":"2.0","id":1,"method":"daemon/status"}"#)
        .await;
    assert_eq!(st["result"]["pid"], d2.pid());
}

#[tokio::test]
async fn sigterm_mid_turn_ends_it_with_cause_shutdown_and_removes_the_socket() {
    let mut d = Daemon::start_with(
        "[agents.slow]\nkind = \"echo\"\nchunk_chars = 1\nchunk_delay_ms = 50\n",
    )
    .await;
    let c = d.tui().await;
    let s = c
        .new_session(sessiond_protocol::params::NewSessionParams {
            agent: Some("slow".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .session;
    let mut events = c.subscribe(&s.session_id, None).await.unwrap();
    c.prompt_text(&s.session_id, &"x".repeat(400))
        .await
        .unwrap();
    // Wait until the turn streams, then stop the daemon.
    loop {
        let ev = events.next_event().await.expect("event").unwrap();
        if matches!(ev.event, sessiond_protocol::Event::AgentMessageChunk { .. }) {
            break;
        }
    }
    d.signal(libc::SIGTERM);
    let mut verdict = None;
    while let Some(Ok(ev)) = events.next_event().await {
        if let sessiond_protocol::Event::TurnComplete { verdict: v } = ev.event {
            verdict = Some(v);
        }
    }
    let st = d.wait_exit();
    assert!(st.success(), "exit status {st}");
    let v = verdict.expect("turn_complete delivered before the stop");
    assert_eq!(v.stop_reason, sessiond_protocol::StopReason::Cancelled);
    assert_eq!(
        v.cancel_cause,
        Some(sessiond_protocol::CancelCause::Shutdown)
    );
    assert!(!d.socket().exists(), "socket removed");
    // The verdict was persisted: after a restart the transcript has the partial reply.
    let d = d.restart().await;
    let msgs = d
        .http(&json!({"jsonrpc":"2.0","id":1,"method":"session/messages","params":{"session_id": s.session_id}}).to_string())
        .await;
    let m = msgs["result"]["messages"].as_array().unwrap();
    assert_eq!(m.len(), 2, "{msgs}");
    assert_eq!(m[1]["role"], "assistant");
    assert!(!m[1]["content"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn json_rpc_errors_for_bad_requests() {
    let d = Daemon::start().await;
    let r = d
        .http(r#"{"jsonrpc":"2.0","id":1,"method":"no/such"}"#)
        .await;
    assert_eq!(r["error"]["code"], codes::METHOD_NOT_FOUND);
    let r = d
        .http(r#"{"jsonrpc":"2.0","id":2,"method":"session/get","params":{}}"#)
        .await;
    assert_eq!(r["error"]["code"], codes::INVALID_PARAMS);
    let r = d
        .http(
            r#"{"jsonrpc":"2.0","id":3,"method":"session/get","params":{"session_id":"ses_nope"}}"#,
        )
        .await;
    assert_eq!(r["error"]["code"], codes::SESSION_NOT_FOUND);
    assert_eq!(r["error"]["data"]["session_id"], "ses_nope");
    let r = d
        .http(r#"{"jsonrpc":"2.0","id":4,"method":"session/new","params":{"mode":"poetry"}}"#)
        .await;
    assert_eq!(r["error"]["code"], codes::INVALID_PARAMS);
    let r = d
        .http(r#"{"jsonrpc":"2.0","id":5,"method":"session/new","params":{"agent":"nope"}}"#)
        .await;
    assert_eq!(r["error"]["code"], codes::AGENT_UNAVAILABLE);
    let r = d
        .http(r#"{"jsonrpc":"2.0","id":6,"method":"initialize","params":{"protocol_version":99}}"#)
        .await;
    assert_eq!(r["error"]["code"], codes::UNSUPPORTED_PROTOCOL);
    let (_, body) = d.http_raw("{not json").await.unwrap();
    let r: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["error"]["code"], codes::PARSE_ERROR);
    assert!(r["id"].is_null());
    let (_, body) = d.http_raw("[]").await.unwrap();
    let r: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["error"]["code"], codes::INVALID_REQUEST);
    // A batch over HTTP gets one reply per call.
    let r = d
        .http(r#"[{"jsonrpc":"2.0","id":1,"method":"daemon/status"},{"jsonrpc":"2.0","id":2,"method":"no/such"}]"#)
        .await;
    assert_eq!(r.as_array().unwrap().len(), 2);
    // Nothing of the above changed anything.
    let st = d
        .http(r#"{"jsonrpc":"2.0","id":1,"method":"daemon/status"}"#)
        .await;
    assert_eq!(st["result"]["sessions_total"], 0);
}

#[tokio::test]
async fn initialize_twice_and_forged_signature_are_refused() {
    let d = Daemon::start().await;
    let c = d.client().await;
    let init = c.initialize("t", None).await.unwrap();
    let again = c.initialize("t", None).await.unwrap_err();
    assert_eq!(again.code(), Some(codes::INVALID_PARAMS));
    let c2 = d.client().await;
    let forged = sessiond_client::Identity {
        tui_id: init.tui_id.clone(),
        tui_sig: "00".repeat(32),
    };
    let err = c2.initialize("t", Some(forged)).await.unwrap_err();
    assert_eq!(err.code(), Some(codes::INVALID_TUI_SIGNATURE));
    let good = sessiond_client::Identity {
        tui_id: init.tui_id.clone(),
        tui_sig: init.tui_sig.clone(),
    };
    let c3 = d.client().await;
    let back = c3.initialize("t", Some(good)).await.unwrap();
    assert_eq!(back.tui_id, init.tui_id);
}

#[tokio::test]
async fn rust_log_is_honoured_and_each_call_has_a_span_with_method_and_session() {
    let dirs = sessiond_tests::Dirs::new();
    let d = Daemon::start_in_with(dirs, |cmd| {
        cmd.env_remove("SESSIOND_LOG")
            .env("RUST_LOG", "sessiond=debug");
    })
    .await
    .expect("start");
    let c = d.tui().await;
    let id = sessiond_tests::new_session(&c, "echo").await;
    c.get_session(&id).await.expect("get");
    let span = format!("rpc{{method=session/get session_id={id}}}");
    sessiond_tests::wait_for("the call's span in the log", || async {
        d.log().contains(&span).then_some(())
    })
    .await;
}
