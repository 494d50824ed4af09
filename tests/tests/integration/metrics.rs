//! `/metrics`, `/healthz` and `/readyz` on the Unix socket: Prometheus text whose
//! counters move when a turn is cancelled; none of them over the TCP WebSocket port.

use sessiond_tests::{Daemon, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One plain HTTP GET on a stream; returns the status and the body.
async fn get<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    path: &str,
) -> (u16, String) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("answer in time")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("http answer");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

async fn unix_get(d: &Daemon, path: &str) -> (u16, String) {
    get(
        tokio::net::UnixStream::connect(d.socket()).await.unwrap(),
        path,
    )
    .await
}

/// The value of the series line that starts with `series` (0 when absent).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .map(|v| v.parse().unwrap())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_move_after_a_cancel() {
    let d = Daemon::start_with(
        "[agents.slow]\nkind = \"echo\"\nchunk_chars = 1\nchunk_delay_ms = 20\n",
    )
    .await;
    let (status, before) = unix_get(&d, "/metrics").await;
    assert_eq!(status, 200);
    for series in [
        "sessiond_sessions_live ",
        "sessiond_sessions ",
        "sessiond_turns_running ",
        "sessiond_turns_queued ",
        "sessiond_connections ",
        "sessiond_subscribers ",
        "sessiond_events_published_total ",
        "sessiond_subscribers_cut_off_total ",
        "sessiond_resyncs_total ",
        "sessiond_resident_memory_bytes ",
        "sessiond_db_commit_duration_seconds_count ",
    ] {
        assert!(before.contains(series), "no {series:?} in:\n{before}");
    }
    assert!(before.trim_end().ends_with("# EOF"), "{before}");
    assert!(value(&before, "sessiond_resident_memory_bytes") > 0.0);
    let cancels = "sessiond_turn_cancels_total{cause=\"client_rpc\"}";
    assert_eq!(value(&before, cancels), 0.0);

    let c = d.tui().await;
    let sid = sessiond_tests::new_session(&c, "slow").await;
    let mut events = c.subscribe(&sid, None).await.unwrap();
    c.prompt_text(&sid, &"w".repeat(2000)).await.unwrap();
    sessiond_tests::wait_for("turn to run", || async {
        c.get_session(&sid).await.unwrap().turn.map(|_| ())
    })
    .await;
    let (_, during) = unix_get(&d, "/metrics").await;
    assert_eq!(value(&during, "sessiond_turns_running"), 1.0, "{during}");
    assert_eq!(value(&during, "sessiond_subscribers"), 1.0, "{during}");
    c.cancel(&sid).await.unwrap();
    while let Some(ev) = events.next_event().await {
        if ev.unwrap().event.type_name() == "turn_complete" {
            break;
        }
    }
    let (_, after) = unix_get(&d, "/metrics").await;
    assert_eq!(value(&after, cancels), 1.0, "{after}");
    assert_eq!(value(&after, "sessiond_turns_running"), 0.0, "{after}");
    let durations = "sessiond_turn_duration_seconds_count{stop_reason=\"cancelled\"}";
    assert_eq!(value(&after, durations), 1.0, "{after}");
    let rpc = "sessiond_rpc_duration_seconds_count{method=\"session/cancel\"}";
    assert!(value(&after, rpc) >= 1.0, "{after}");
    assert!(
        value(&after, "sessiond_events_published_total")
            > value(&before, "sessiond_events_published_total")
    );
}

#[tokio::test]
async fn health_answers_on_the_unix_socket_only() {
    let d = Daemon::start_with("[ws]\nlisten = \"127.0.0.1:0\"\n").await;
    assert_eq!(unix_get(&d, "/healthz").await, (200, "ok\n".to_owned()));
    assert_eq!(unix_get(&d, "/readyz").await, (200, "ready\n".to_owned()));
    let addr = d.client().await.status().await.unwrap().ws_listen.unwrap();
    for path in ["/metrics", "/healthz", "/readyz"] {
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let (status, body) = get(tcp, path).await;
        assert_ne!(status, 200, "{path} over tcp: {body}");
        assert!(!body.contains("sessiond_"), "{body}");
    }
}
