//! The client against a scripted jsonrpsee server (no daemon): method names and params
//! on the wire, result parsing, error mapping, timeouts, subscriptions, transports.

use jsonrpsee::server::{
    serve_with_graceful_shutdown, stop_channel, RpcModule, Server, ServerHandle, StopHandle,
};
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::{json, Value};
use sessiond_client::protocol::methods;
use sessiond_client::protocol::params::*;
use sessiond_client::protocol::patch::Patch;
use sessiond_client::protocol::types::{CloseReason, Mode, SessionStatus, StopReason};
use sessiond_client::protocol::{codes, PROTOCOL_VERSION};
use sessiond_client::{
    Client, ConnectOptions, Error, Event, EventEnvelope, Identity, RequestId, SessionId, StreamEnd,
    TuiId,
};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(String, Value)>>,
    recorded: tokio::sync::Notify,
}

impl Recorder {
    fn record(&self, name: &str, params: Value) {
        self.calls.lock().unwrap().push((name.to_owned(), params));
        self.recorded.notify_waiters();
    }

    /// Waits until a call (or marker) named `name` has been recorded.
    async fn wait_recorded(&self, name: &str) {
        loop {
            let recorded = self.recorded.notified();
            if self.calls.lock().unwrap().iter().any(|(n, _)| n == name) {
                return;
            }
            recorded.await;
        }
    }

    fn take(&self) -> Vec<(String, Value)> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    fn last(&self, method: &str) -> Value {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(m, _)| m == method)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| panic!("{method} was not called"))
    }
}

fn session_info(id: &str) -> Value {
    json!({
        "session_id": id, "agent": "echo", "mode": "chat", "title": null, "cwd": null,
        "owner_tui_id": null, "status": "created", "live": true, "turn": null,
        "queued_turns": 0, "pending_requests": 0, "overrides": {},
        "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z",
        "last_active_at": "2025-01-01T00:00:00Z", "message_count": 0, "round_count": 0,
        "usage": {"input_tokens": 0, "output_tokens": 0}
    })
}

fn verdict(turn_id: &str, content: &str) -> Value {
    json!({
        "turn_id": turn_id, "stop_reason": "end_turn", "cancel_cause": null, "error": null,
        "usage": {"input_tokens": 1, "output_tokens": 1}, "content": content
    })
}

fn upload_entry(p: &Value) -> Value {
    let size = match p["data_b64"].as_str() {
        Some(b64) => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .expect("client sent invalid base64")
                .len() as u64
        }
        None => 0,
    };
    json!({
        "ref_id": format!("sha256:{}", "0".repeat(64)), "marker": "[file]",
        "workspace_path": "/x", "size_bytes": size, "deduplicated": false,
        "name": p["name"], "mime_type": p["mime_type"]
    })
}

/// The scripted answer of each method.
async fn answer(method: &str, p: &Value) -> Result<Value, ErrorObjectOwned> {
    let sid = p["session_id"].as_str().unwrap_or("");
    if sid == "missing" {
        return Err(ErrorObjectOwned::owned(
            codes::SESSION_NOT_FOUND,
            "no such session",
            Some(json!({"session_id": "missing"})),
        ));
    }
    if sid == "slow" {
        // A call that never answers: the client's own timeout must end it.
        std::future::pending::<()>().await;
    }
    Ok(match method {
        methods::INITIALIZE => {
            if p["tui_sig"] == "bad" {
                return Err(ErrorObjectOwned::owned::<()>(
                    codes::INVALID_TUI_SIGNATURE,
                    "invalid tui signature",
                    None,
                ));
            }
            json!({
                "protocol_version": 1, "server_version": "0.0.0-mock", "server_pid": 42,
                "daemon_id": "d1",
                "tui_id": p["tui_id"].as_str().unwrap_or("tui-new"),
                "tui_sig": p["tui_sig"].as_str().unwrap_or("sig-new"),
                "capabilities": methods::ALL,
            })
        }
        methods::DAEMON_STATUS => json!({
            "server_version": "0.0.0-mock", "protocol_version": 1, "pid": 42, "uptime_secs": 3,
            "socket": "/tmp/s.sock", "ws_listen": null, "data_dir": "/tmp/d",
            "sessions_live": 1, "sessions_total": 2
        }),
        methods::SESSION_NEW | methods::SESSION_LOAD => json!({
            "session": session_info("s1"),
            "evicted": [{"session_id": "old", "agent": "echo"}]
        }),
        methods::SESSION_LIST | methods::ADMIN_SESSIONS => {
            json!({"sessions": [session_info("s1")], "next_cursor": "c2"})
        }
        methods::SESSION_GET => session_info(sid),
        methods::SESSION_MESSAGES => json!({
            "messages": [{"index": 0, "role": "user", "content": "hi", "turn_id": "t1",
                          "created_at": "2025-01-01T00:00:00Z"}],
            "total": 1
        }),
        methods::SESSION_CONFIGURE => json!({"overrides": {"model": "m", "temperature": 0.5}}),
        methods::SESSION_CLOSE => json!({"closed": true, "cancelled_turn": null}),
        methods::SESSION_DELETE => json!({"deleted": true}),
        methods::SESSION_PROMPT => {
            let text = p["text"].as_str().unwrap_or("");
            if let Some(ms) = text.strip_prefix("sleep:") {
                tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
            }
            if p["wait"] == true {
                verdict("t1", text)
            } else {
                json!({"turn_id": "t1", "queued_behind": 0})
            }
        }
        methods::SESSION_CANCEL => json!({"cancelled": true, "turn_id": "t1"}),
        methods::SESSION_RESPOND => json!({"remaining": 0}),
        methods::SESSION_UPLOAD => upload_entry(p),
        methods::SESSION_UPLOADS => json!({"uploads": [upload_entry(&json!({"name": "a"}))]}),
        methods::ADMIN_KILL => json!({"killed": true, "cancelled_turn": "t1"}),
        methods::ADMIN_STATS => json!({
            "connections": 1, "tuis": 1, "sessions_live": 1, "sessions_total": 1,
            "by_agent": {"echo": 1}, "turns_running": 0, "turns_queued": 0,
            "cancels_by_cause": {"client_rpc": 2}, "rss_bytes": 1000
        }),
        methods::ADMIN_TUIS => json!({"tuis": [{"tui_id": "tui-1",
            "connected_at": "2025-01-01T00:00:00Z", "transport": "unix", "peer": "uid:0 pid:1"}]}),
        methods::ADMIN_SHUTDOWN => json!({"ok": true}),
        other => panic!("unscripted method {other}"),
    })
}

fn envelope(sid: &str, seq: u64, event: Event) -> EventEnvelope {
    EventEnvelope {
        session_id: SessionId::from(sid),
        seq,
        at: "2025-01-01T00:00:00Z".into(),
        event,
    }
}

fn chunk(sid: &str, seq: u64) -> EventEnvelope {
    envelope(
        sid,
        seq,
        Event::AgentMessageChunk {
            turn_id: "t1".into(),
            text: format!("c{seq}"),
        },
    )
}

fn module(rec: Arc<Recorder>) -> RpcModule<Arc<Recorder>> {
    let mut m = RpcModule::new(rec);
    for &name in methods::ALL {
        if name == methods::SESSION_SUBSCRIBE || name == methods::SESSION_UNSUBSCRIBE {
            continue;
        }
        m.register_async_method(name, move |params, rec, _| async move {
            let p: Value = params
                .as_str()
                .map(|s| serde_json::from_str(s).unwrap())
                .unwrap_or(Value::Null);
            rec.record(name, p.clone());
            answer(name, &p).await
        })
        .unwrap();
    }
    m.register_subscription(
        methods::SESSION_SUBSCRIBE,
        methods::SESSION_UPDATE,
        methods::SESSION_UNSUBSCRIBE,
        |params, pending, rec, _| async move {
            let p: Value = params.parse()?;
            rec.record(methods::SESSION_SUBSCRIBE, p.clone());
            let sid = p["session_id"].as_str().unwrap_or("").to_owned();
            if sid == "missing" {
                pending
                    .reject(ErrorObjectOwned::owned::<()>(
                        codes::SESSION_NOT_FOUND,
                        "no such session",
                        None,
                    ))
                    .await;
                return Ok(());
            }
            let since = p["since_seq"].as_u64().unwrap_or(0);
            let sink = pending.accept().await?;
            let send = |env: &EventEnvelope| serde_json::value::to_raw_value(env).unwrap();
            match sid.as_str() {
                "lag" => {
                    for seq in 1..=200 {
                        if sink.send(send(&chunk(&sid, seq))).await.is_err() {
                            break;
                        }
                    }
                    rec.record("lag-done", Value::Null);
                    // Stay subscribed: only the client's buffer decides.
                    sink.closed().await;
                }
                "garbage" => {
                    let bad = serde_json::value::to_raw_value(&json!({"seq": "nope"})).unwrap();
                    sink.send(bad).await?;
                    sink.send(send(&chunk(&sid, since + 1))).await?;
                    sink.closed().await;
                }
                "open" => {
                    sink.send(send(&chunk(&sid, since + 1))).await?;
                    sink.closed().await;
                }
                _ => {
                    for seq in since + 1..=since + 3 {
                        sink.send(send(&chunk(&sid, seq))).await?;
                    }
                    let closed = envelope(
                        &sid,
                        since + 4,
                        Event::SessionClosed {
                            reason: CloseReason::Closed,
                        },
                    );
                    sink.send(send(&closed)).await?;
                    // Anything after session_closed must not reach the stream.
                    sink.send(send(&chunk(&sid, since + 5))).await?;
                    sink.closed().await;
                }
            }
            Ok(())
        },
    )
    .unwrap();
    m
}

struct Mock {
    _dir: tempfile::TempDir,
    path: PathBuf,
    rec: Arc<Recorder>,
    handle: ServerHandle,
}

fn spawn_conn<S>(stream: S, module: RpcModule<Arc<Recorder>>, stop: StopHandle)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let svc = Server::builder()
        .to_service_builder()
        .build(module, stop.clone());
    tokio::spawn(async move {
        let _ = serve_with_graceful_shutdown(stream, svc, stop.shutdown()).await;
    });
}

async fn mock() -> Mock {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessiond.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let rec = Arc::new(Recorder::default());
    let m = module(rec.clone());
    let (stop, handle) = stop_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            spawn_conn(stream, m.clone(), stop.clone());
        }
    });
    Mock {
        _dir: dir,
        path,
        rec,
        handle,
    }
}

async fn connect(m: &Mock) -> Client {
    Client::connect_unix(&m.path, ConnectOptions::default())
        .await
        .unwrap()
}

fn sid(s: &str) -> SessionId {
    SessionId::from(s)
}

#[tokio::test]
async fn initialize_sends_the_protocol_version_and_remembers_the_identity() {
    let m = mock().await;
    let c = connect(&m).await;
    assert_eq!(c.identity(), None);

    let r = c.initialize("tui-test", None).await.unwrap();
    assert_eq!(r.tui_id, TuiId::from("tui-new"));
    assert_eq!(r.capabilities.len(), methods::ALL.len());
    let sent = m.rec.last(methods::INITIALIZE);
    assert_eq!(sent["protocol_version"], json!(PROTOCOL_VERSION));
    assert_eq!(sent["client"]["name"], "tui-test");
    assert!(
        sent["tui_id"].is_null() && sent["tui_sig"].is_null(),
        "{sent}"
    );
    assert_eq!(
        c.identity(),
        Some(Identity {
            tui_id: TuiId::from("tui-new"),
            tui_sig: "sig-new".into()
        })
    );

    // A second connection presents the identity it was given.
    let c2 = connect(&m).await;
    let id = Identity {
        tui_id: TuiId::from("tui-7"),
        tui_sig: "sig-7".into(),
    };
    c2.initialize("tui-test", Some(id.clone())).await.unwrap();
    let sent = m.rec.last(methods::INITIALIZE);
    assert_eq!(sent["tui_id"], "tui-7");
    assert_eq!(sent["tui_sig"], "sig-7");
    assert_eq!(c2.identity(), Some(id));
    // Clones share the identity.
    assert_eq!(c2.clone().identity().unwrap().tui_id, TuiId::from("tui-7"));
}

#[tokio::test]
async fn a_rejected_initialize_keeps_no_identity() {
    let m = mock().await;
    let c = connect(&m).await;
    let bad = Identity {
        tui_id: TuiId::from("tui-7"),
        tui_sig: "bad".into(),
    };
    let err = c.initialize("t", Some(bad)).await.unwrap_err();
    assert_eq!(err.code(), Some(codes::INVALID_TUI_SIGNATURE));
    assert_eq!(
        err.to_string(),
        "invalid tui signature (INVALID_TUI_SIGNATURE)"
    );
    assert_eq!(c.identity(), None);
}

#[tokio::test]
async fn every_typed_method_calls_its_protocol_method_with_its_params() {
    let m = mock().await;
    let c = connect(&m).await;
    let s1 = sid("s1");

    let st = c.status().await.unwrap();
    assert_eq!((st.pid, st.sessions_total), (42, 2));

    let new = c
        .new_session(NewSessionParams {
            agent: Some("echo".into()),
            mode: Some(Mode::Code),
            keep_siblings: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(new.session.session_id, s1);
    assert_eq!(new.evicted[0].session_id, sid("old"));

    let loaded = c.load_session(&s1, true, false).await.unwrap();
    assert_eq!(loaded.session.status, SessionStatus::Created);

    let list = c
        .list_sessions(ListParams {
            owner: Some("any".into()),
            limit: Some(5),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(list.next_cursor.as_deref(), Some("c2"));
    assert_eq!(c.get_session(&s1).await.unwrap().session_id, s1);
    assert_eq!(c.messages(&s1, Some(3), Some(10)).await.unwrap().total, 1);
    let conf = c
        .configure(
            &s1,
            OverridesPatch {
                model: Patch::Clear,
                temperature: Patch::Set(0.5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(conf.overrides.temperature, Some(0.5));
    assert!(c.close_session(&s1).await.unwrap().closed);
    assert!(c.delete_session(&s1).await.unwrap().deleted);
    assert_eq!(
        c.prompt_text(&s1, "hello").await.unwrap().turn_id.as_str(),
        "t1"
    );
    let v = c.prompt_wait(&s1, "hello").await.unwrap();
    assert_eq!(
        (v.stop_reason, v.content.as_str()),
        (StopReason::EndTurn, "hello")
    );
    assert!(c.cancel(&s1).await.unwrap().cancelled);
    assert_eq!(
        c.respond(&s1, Some(RequestId::from("r1")), json!({"allow": true}))
            .await
            .unwrap()
            .remaining,
        0
    );
    let up = c
        .upload_bytes(&s1, "a.txt", Some("text/plain".into()), b"hello world")
        .await
        .unwrap();
    assert_eq!(up.size_bytes, 11);
    c.upload_path(&s1, "b.txt", "rel/b.txt").await.unwrap();
    assert_eq!(c.uploads(&s1).await.unwrap().uploads.len(), 1);
    assert!(c.admin_kill(&s1).await.unwrap().killed);
    assert_eq!(
        c.admin_sessions(ListParams::default())
            .await
            .unwrap()
            .sessions
            .len(),
        1
    );
    let stats = c.admin_stats().await.unwrap();
    assert_eq!(stats.by_agent.get("echo"), Some(&1));
    assert_eq!(c.admin_tuis().await.unwrap().tuis[0].transport, "unix");
    assert!(c.admin_shutdown(Some(2)).await.unwrap().ok);

    let calls = m.rec.take();
    let names: Vec<&str> = calls.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            methods::DAEMON_STATUS,
            methods::SESSION_NEW,
            methods::SESSION_LOAD,
            methods::SESSION_LIST,
            methods::SESSION_GET,
            methods::SESSION_MESSAGES,
            methods::SESSION_CONFIGURE,
            methods::SESSION_CLOSE,
            methods::SESSION_DELETE,
            methods::SESSION_PROMPT,
            methods::SESSION_PROMPT,
            methods::SESSION_CANCEL,
            methods::SESSION_RESPOND,
            methods::SESSION_UPLOAD,
            methods::SESSION_UPLOAD,
            methods::SESSION_UPLOADS,
            methods::ADMIN_KILL,
            methods::ADMIN_SESSIONS,
            methods::ADMIN_STATS,
            methods::ADMIN_TUIS,
            methods::ADMIN_SHUTDOWN,
        ]
    );
    let p = |i: usize| calls[i].1.clone();
    assert_eq!(p(1)["agent"], "echo");
    assert_eq!(p(1)["mode"], "code");
    assert_eq!(p(1)["keep_siblings"], true);
    assert_eq!(
        p(2),
        json!({"session_id": "s1", "take_over": true, "keep_siblings": false})
    );
    assert_eq!(p(3)["owner"], "any");
    assert_eq!(p(3)["limit"], 5);
    assert_eq!(p(4), json!({"session_id": "s1"}));
    assert_eq!(p(5), json!({"session_id": "s1", "from": 3, "limit": 10}));
    // Absent stays absent, Clear is null, Set is the value.
    assert_eq!(
        p(6),
        json!({"session_id": "s1", "overrides": {"model": null, "temperature": 0.5}})
    );
    assert_eq!(p(9)["text"], "hello");
    assert!(p(9)["wait"].is_null(), "{}", p(9));
    assert_eq!(p(10)["wait"], true);
    assert_eq!(p(11), json!({"session_id": "s1"}));
    assert_eq!(
        p(12),
        json!({"session_id": "s1", "request_id": "r1", "response": {"allow": true}})
    );
    assert_eq!(p(13)["name"], "a.txt");
    assert_eq!(p(13)["mime_type"], "text/plain");
    assert_eq!(p(13)["data_b64"], "aGVsbG8gd29ybGQ=");
    assert!(p(13)["path"].is_null());
    let path = p(14)["path"].as_str().unwrap().to_owned();
    assert!(
        path.starts_with('/') && path.ends_with("/rel/b.txt"),
        "{path}"
    );
    assert!(p(14)["data_b64"].is_null());
    assert_eq!(p(16), json!({"session_id": "s1"}));
    assert_eq!(p(20), json!({"grace_secs": 2}));
}

#[tokio::test]
async fn daemon_errors_become_rpc_errors_with_data() {
    let m = mock().await;
    let c = connect(&m).await;
    let err = c.get_session(&sid("missing")).await.unwrap_err();
    match &err {
        Error::Rpc {
            code,
            message,
            data,
        } => {
            assert_eq!(*code, codes::SESSION_NOT_FOUND);
            assert_eq!(message, "no such session");
            assert_eq!(data, &Some(json!({"session_id": "missing"})));
        }
        other => panic!("expected Rpc, got {other:?}"),
    }
    assert_eq!(err.to_string(), "no such session (SESSION_NOT_FOUND)");
    let err = c.subscribe(&sid("missing"), None).await.unwrap_err();
    assert_eq!(err.code(), Some(codes::SESSION_NOT_FOUND));
}

#[tokio::test]
async fn calls_time_out_but_a_waiting_prompt_does_not() {
    let m = mock().await;
    let opts = ConnectOptions {
        call_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let c = Client::connect_unix(&m.path, opts).await.unwrap();
    let started = std::time::Instant::now();
    assert!(matches!(c.cancel(&sid("slow")).await, Err(Error::Timeout)));
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(
        c.prompt_text(&sid("s1"), "sleep:1000").await,
        Err(Error::Timeout)
    ));

    let v = c.prompt_wait(&sid("s1"), "sleep:1000").await.unwrap();
    assert_eq!(v.content, "sleep:1000");
    let r = c
        .prompt(PromptParams {
            session_id: sid("s1"),
            text: "sleep:800".into(),
            attachments: None,
            interrupt: None,
            wait: Some(true),
        })
        .await
        .unwrap();
    assert!(matches!(r, PromptResult::Finished(_)));
    // The connection is still usable after a timeout.
    assert_eq!(c.status().await.unwrap().pid, 42);
}

#[tokio::test]
async fn event_stream_yields_in_order_tracks_seq_and_ends_at_session_closed() {
    let m = mock().await;
    let c = connect(&m).await;
    let mut ev = c.subscribe(&sid("s1"), Some(10)).await.unwrap();
    assert_eq!(
        m.rec.last(methods::SESSION_SUBSCRIBE),
        json!({"session_id": "s1", "since_seq": 10})
    );
    assert_eq!(ev.last_seq(), Some(10));
    assert_eq!(ev.session_id(), &sid("s1"));
    let mut seqs = vec![];
    while let Some(item) = tokio::time::timeout(Duration::from_secs(5), ev.next_event())
        .await
        .expect("stream did not end after session_closed")
    {
        let env = item.unwrap();
        seqs.push(env.seq);
        assert_eq!(ev.last_seq(), Some(env.seq));
    }
    assert_eq!(seqs, [11, 12, 13, 14]);
    assert_eq!(ev.last_seq(), Some(14));
    assert_eq!(
        ev.end_reason(),
        Some(StreamEnd::SessionClosed(CloseReason::Closed))
    );
    assert!(ev.next_event().await.is_none());
    ev.unsubscribe().await.unwrap();
}

#[tokio::test]
async fn event_stream_works_as_a_futures_stream() {
    use futures::StreamExt;
    let m = mock().await;
    let c = connect(&m).await;
    let ev = c.subscribe(&sid("s2"), None).await.unwrap();
    let items: Vec<_> = tokio::time::timeout(Duration::from_secs(5), ev.collect::<Vec<_>>())
        .await
        .unwrap();
    let types: Vec<&str> = items
        .iter()
        .map(|i| i.as_ref().unwrap().event.type_name())
        .collect();
    assert_eq!(
        types,
        [
            "agent_message_chunk",
            "agent_message_chunk",
            "agent_message_chunk",
            "session_closed"
        ]
    );
}

#[tokio::test]
async fn a_malformed_event_is_an_error_item_and_the_stream_continues() {
    let m = mock().await;
    let c = connect(&m).await;
    let mut ev = c.subscribe(&sid("garbage"), Some(4)).await.unwrap();
    let first = ev.next_event().await.unwrap();
    assert!(matches!(first, Err(Error::Decode(_))), "{first:?}");
    assert_eq!(ev.last_seq(), Some(4));
    let second = ev.next_event().await.unwrap().unwrap();
    assert_eq!(second.seq, 5);
    assert_eq!(ev.last_seq(), Some(5));
    assert_eq!(ev.end_reason(), None);
    ev.unsubscribe().await.unwrap();
}

#[tokio::test]
async fn a_lagging_subscription_ends_with_lagged() {
    let m = mock().await;
    let opts = ConnectOptions {
        subscription_buffer: 4,
        ..Default::default()
    };
    let c = Client::connect_unix(&m.path, opts).await.unwrap();
    let mut ev = c.subscribe(&sid("lag"), None).await.unwrap();
    // Read nothing until the server has sent everything it will send.
    tokio::time::timeout(Duration::from_secs(10), m.rec.wait_recorded("lag-done"))
        .await
        .expect("the server never finished sending");
    let mut got = vec![];
    let last = loop {
        match tokio::time::timeout(Duration::from_secs(5), ev.next_event())
            .await
            .expect("lagging stream hung")
        {
            Some(Ok(env)) => got.push(env.seq),
            other => break other,
        }
    };
    assert!(matches!(last, Some(Err(Error::Lagged))), "{last:?}");
    assert!(got.len() < 200, "nothing was dropped: {}", got.len());
    assert_eq!(got, (1..=got.len() as u64).collect::<Vec<_>>());
    assert_eq!(ev.last_seq(), got.last().copied());
    assert_eq!(ev.end_reason(), Some(StreamEnd::Lagged));
    assert!(ev.next_event().await.is_none());
}

#[tokio::test]
async fn a_closed_connection_fails_calls_with_closed_and_ends_streams() {
    let m = mock().await;
    let c = connect(&m).await;
    let mut ev = c.subscribe(&sid("open"), None).await.unwrap();
    assert_eq!(ev.next_event().await.unwrap().unwrap().seq, 1);
    assert!(c.is_connected());

    m.handle.stop().unwrap();
    tokio::time::timeout(Duration::from_secs(5), c.closed())
        .await
        .expect("client did not notice the closed connection");
    assert!(!c.is_connected());
    let err = c.status().await.unwrap_err();
    assert!(matches!(err, Error::Closed), "{err:?}");
    assert!(err.is_disconnect());
    let end = tokio::time::timeout(Duration::from_secs(5), ev.next_event())
        .await
        .unwrap();
    assert!(end.is_none(), "{end:?}");
    assert_eq!(ev.end_reason(), Some(StreamEnd::Closed));
    assert_eq!(ev.last_seq(), Some(1));
}

#[tokio::test]
async fn connecting_to_a_missing_socket_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Client::connect_unix(dir.path().join("nope.sock"), ConnectOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err:?}");
}

#[tokio::test]
async fn connect_ws_speaks_to_a_tcp_websocket() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let rec = Arc::new(Recorder::default());
    let m = module(rec.clone());
    let (stop, _handle) = stop_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            spawn_conn(stream, m.clone(), stop.clone());
        }
    });
    let c = Client::connect_ws(
        &format!("ws://{addr}/"),
        "tok-secret-9",
        ConnectOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(c.status().await.unwrap().pid, 42);
    assert!(!format!("{c:?}").contains("tok-secret-9"), "{c:?}");
}

/// A server that records the upgrade request and refuses it.
async fn refusing_server(
    status: &'static str,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Receiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
        let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
        s.write_all(reply.as_bytes()).await.unwrap();
    });
    (addr, rx)
}

#[tokio::test]
async fn connect_ws_sends_the_bearer_token_in_a_header_only() {
    let (addr, req) = refusing_server("401 Unauthorized").await;
    let err = Client::connect_ws(
        &format!("ws://{addr}/"),
        "tok-123",
        ConnectOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::Transport(s) if s.contains("401")),
        "{err:?}"
    );
    let req = req.await.unwrap();
    let mut lines = req.lines();
    assert_eq!(lines.next(), Some("GET / HTTP/1.1"));
    assert!(
        lines.any(|l| l.eq_ignore_ascii_case("authorization: Bearer tok-123")),
        "{req}"
    );
    assert_eq!(req.matches("tok-123").count(), 1, "{req}");
}

#[tokio::test]
async fn connect_ws_does_not_follow_redirects() {
    let (addr, req) = refusing_server("302 Found\r\nlocation: ws://127.0.0.2:1/").await;
    let err = Client::connect_ws(&format!("ws://{addr}/"), "tok", ConnectOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Transport(s) if s.contains("302")),
        "{err:?}"
    );
    req.await.unwrap();
}

#[tokio::test]
async fn connect_times_out_when_the_handshake_never_answers() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let keep = tokio::spawn(async move {
        let (_s, _) = listener.accept().await.unwrap();
        // Accept and never answer the handshake.
        std::future::pending::<()>().await;
    });
    let opts = ConnectOptions {
        call_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let err = Client::connect_ws(&format!("ws://{addr}/"), "tok", opts)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    keep.abort();
}
