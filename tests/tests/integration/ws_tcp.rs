//! The opt-in TCP WebSocket against the real daemon on loopback: off by default,
//! the token file, every guard of the upgrade with its status code, and what is
//! refused over it once connected (admin methods, path uploads).

use sessiond_client::{Client, ConnectOptions};
use sessiond_protocol::error::codes;
use sessiond_protocol::params::NewSessionParams;
use sessiond_protocol::{Mode, StopReason};
use sessiond_tests::{cli, Daemon, Dirs, WAIT};
use std::os::unix::fs::PermissionsExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WS_CONFIG: &str = "[ws]\nlisten = \"127.0.0.1:0\"\n";

/// A daemon with the TCP WebSocket on an ephemeral loopback port, its address
/// (from `daemon/status`) and its token (from the token file).
async fn ws_daemon(extra: &str) -> (Daemon, String, String) {
    let d = Daemon::start_with(&format!("{WS_CONFIG}{extra}")).await;
    let status = d.client().await.status().await.expect("status");
    let addr = status.ws_listen.expect("ws_listen reported");
    let token = std::fs::read_to_string(d.dirs.data_dir().join("ws.token")).expect("token file");
    (d, addr, token.trim().to_string())
}

/// Sends a WebSocket upgrade request with `headers` over raw TCP and returns the
/// status code of the reply.
async fn upgrade_status(addr: &str, headers: &[(&str, &str)]) -> u16 {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = String::from(
        "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    status_line(&mut s).await
}

/// `token` with its last character changed: always wrong, whatever the token is.
fn differs_in_last_char(token: &str) -> String {
    let (head, last) = token.split_at(token.len() - 1);
    let other = if last == "0" { '1' } else { '0' };
    format!("{head}{other}")
}

async fn status_line(s: &mut tokio::net::TcpStream) -> u16 {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    tokio::time::timeout(WAIT, async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut chunk).await.expect("read");
            assert!(n > 0, "connection closed before a reply");
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("reply in time");
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

#[tokio::test]
async fn the_tcp_websocket_is_off_by_default() {
    let d = Daemon::start().await;
    let status = d.client().await.status().await.unwrap();
    assert_eq!(status.ws_listen, None);
    assert!(!d.dirs.data_dir().join("ws.token").exists());
}

#[tokio::test]
async fn a_client_with_the_token_works_and_the_token_file_is_private() {
    let (d, addr, token) = ws_daemon("").await;
    assert!(!addr.ends_with(":0"), "the bound port is reported: {addr}");
    let path = d.dirs.data_dir().join("ws.token");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(token.len() >= 32, "at least 128 bits of hex");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));

    let c = Client::connect_ws(&format!("ws://{addr}/"), &token, ConnectOptions::default())
        .await
        .expect("connect with the token");
    c.initialize("ws-tui", None).await.unwrap();
    let s = c
        .new_session(NewSessionParams {
            mode: Some(Mode::Chat),
            ..Default::default()
        })
        .await
        .unwrap();
    let verdict = c
        .prompt_wait(&s.session.session_id, "over tcp")
        .await
        .unwrap();
    assert_eq!(verdict.stop_reason, StopReason::EndTurn);
    assert_eq!(verdict.content, "over tcp");

    // The TUI shows up with its transport and its TCP peer.
    let tuis = d.client().await.admin_tuis().await.unwrap();
    let ws_tui = tuis
        .tuis
        .iter()
        .find(|t| t.transport == "ws")
        .expect("the ws tui is listed");
    assert!(ws_tui.peer.starts_with("127.0.0.1:"), "{}", ws_tui.peer);

    // The token never reaches the log.
    assert!(!d.log().contains(&token), "token in the log");
}

#[tokio::test]
async fn every_guard_of_the_upgrade_has_its_status() {
    let (d, addr, token) = ws_daemon(
        "allowed_origins = [\"https://tui.example\"]\nallowed_hosts = [\"devbox.lan\"]\n",
    )
    .await;
    let bearer = format!("Bearer {token}");
    let auth = ("Authorization", bearer.as_str());
    let loopback = ("Host", addr.as_str());

    assert_eq!(upgrade_status(&addr, &[loopback, auth]).await, 101);
    assert_eq!(
        upgrade_status(&addr, &[("Host", "localhost:1"), auth]).await,
        101
    );
    assert_eq!(
        upgrade_status(&addr, &[("Host", "devbox.lan:7777"), auth]).await,
        101
    );
    let listed_origin = ("Origin", "https://tui.example");
    assert_eq!(
        upgrade_status(&addr, &[loopback, listed_origin, auth]).await,
        101
    );

    // No token, a wrong one, or one of another scheme: 401.
    assert_eq!(upgrade_status(&addr, &[loopback]).await, 401);
    let wrong = format!("Bearer {}", differs_in_last_char(&token));
    assert_eq!(
        upgrade_status(&addr, &[loopback, ("Authorization", &wrong)]).await,
        401
    );
    let basic = format!("Basic {token}");
    assert_eq!(
        upgrade_status(&addr, &[loopback, ("Authorization", &basic)]).await,
        401
    );

    // An Origin that is not listed: 403, even with the token.
    let evil = ("Origin", "https://evil.example");
    assert_eq!(upgrade_status(&addr, &[loopback, evil, auth]).await, 403);

    // A Host that is neither loopback nor listed (DNS rebinding): 403.
    assert_eq!(
        upgrade_status(&addr, &[("Host", "evil.example"), auth]).await,
        403
    );
    assert_eq!(
        upgrade_status(&addr, &[("Host", "10.1.2.3:80"), auth]).await,
        403
    );
    assert_eq!(upgrade_status(&addr, &[auth]).await, 403);

    // Plain HTTP is not served over TCP.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"daemon/status"}"#;
    let req = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {bearer}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    assert_eq!(status_line(&mut s).await, 426);

    // Nor is a POST that carries an `Upgrade` header: only a GET upgrade is.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let req = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {bearer}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    assert_eq!(status_line(&mut s).await, 426);
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let req = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {bearer}\r\nUpgrade: h2c\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    assert_eq!(status_line(&mut s).await, 426);

    // The SDK with a wrong token is refused at the upgrade.
    let refused = Client::connect_ws(&format!("ws://{addr}/"), &differs_in_last_char(&token), {
        ConnectOptions::default()
    })
    .await;
    assert!(refused.is_err(), "wrong token connects");

    assert!(!d.log().contains(&token), "token in the log");
}

#[tokio::test]
async fn admin_methods_and_path_uploads_are_refused_over_tcp() {
    let (d, addr, token) = ws_daemon("").await;
    let c = Client::connect_ws(&format!("ws://{addr}/"), &token, ConnectOptions::default())
        .await
        .unwrap();
    c.initialize("ws-tui", None).await.unwrap();
    let s = c
        .new_session(NewSessionParams {
            mode: Some(Mode::Code),
            ..Default::default()
        })
        .await
        .unwrap();
    let id = s.session.session_id;

    let e = c.admin_stats().await.unwrap_err();
    assert_eq!(e.code(), Some(codes::ADMIN_REQUIRED), "{e}");
    let e = c.admin_kill(&id).await.unwrap_err();
    assert_eq!(e.code(), Some(codes::ADMIN_REQUIRED), "{e}");
    let e = c.admin_shutdown(None).await.unwrap_err();
    assert_eq!(e.code(), Some(codes::ADMIN_REQUIRED), "{e}");

    let file = d.dirs.path().join("notes.txt");
    std::fs::write(&file, b"secret notes").unwrap();
    let e = c.upload_path(&id, "notes.txt", &file).await.unwrap_err();
    assert_eq!(e.code(), Some(codes::INVALID_PARAMS), "{e}");
    assert!(c.uploads(&id).await.unwrap().uploads.is_empty());

    // Inline uploads work over TCP, and the refused calls changed nothing.
    let up = c.upload_bytes(&id, "a.txt", None, b"inline").await.unwrap();
    assert_eq!(up.size_bytes, 6);
    let local = d.client().await;
    let info = local.get_session(&id).await.unwrap();
    assert!(info.live, "the refused kill did nothing");
    assert_eq!(
        local.status().await.unwrap().ws_listen.as_deref(),
        Some(addr.as_str())
    );
}

#[tokio::test]
async fn a_non_loopback_bind_needs_allow_remote() {
    let dirs = Dirs::new();
    let (code, _out, err) = cli(&dirs, &["serve", "--ws", "0.0.0.0:0"]);
    assert_ne!(code, 0);
    assert!(err.contains("allow_remote"), "{err}");
    assert!(!dirs.socket().exists(), "nothing left behind");
}

#[tokio::test]
async fn a_token_file_readable_by_others_stops_the_daemon() {
    let dirs = Dirs::new();
    let token_file = dirs.path().join("ws.token");
    std::fs::write(&token_file, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = format!(
        "{WS_CONFIG}token_file = \"{}\"\n",
        token_file.display().to_string().replace('\\', "\\\\")
    );
    std::fs::write(dirs.config_path(), config).unwrap();
    let (code, _out, err) = cli(&dirs, &["serve"]);
    assert_ne!(code, 0);
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!err.contains(&"ab".repeat(32)), "the token is not printed");

    // Made private, the same file is used as it is.
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let d = Daemon::start_in(dirs).await.expect("starts");
    let addr = d.client().await.status().await.unwrap().ws_listen.unwrap();
    let c = Client::connect_ws(
        &format!("ws://{addr}/"),
        &"ab".repeat(32),
        ConnectOptions::default(),
    )
    .await
    .expect("the configured token is accepted");
    assert!(c.status().await.is_ok());
}
