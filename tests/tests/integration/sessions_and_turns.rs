//! Sessions and turns end to end through the SDK and raw HTTP: create, list, get,
//! close, load, delete; prompts with `wait`; streamed events; cancel; admin kill.

use serde_json::json;
use sessiond_client::Client;
use sessiond_protocol::params::{ListParams, NewSessionParams};
use sessiond_protocol::{
    codes, CancelCause, Event, EventEnvelope, SessionId, SessionStatus, StopReason,
};
use sessiond_tests::Daemon;
use std::time::{Duration, Instant};

const SLOW: &str = "[agents.slow]\nkind = \"echo\"\nchunk_chars = 2\nchunk_delay_ms = 20\n";

async fn new_session(c: &Client, agent: Option<&str>) -> SessionId {
    c.new_session(NewSessionParams {
        agent: agent.map(str::to_owned),
        ..Default::default()
    })
    .await
    .expect("session/new")
    .session
    .session_id
}

async fn next_matching(
    events: &mut sessiond_client::EventStream,
    what: &str,
    f: impl Fn(&EventEnvelope) -> bool,
) -> EventEnvelope {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = tokio::time::timeout(left, events.next_event())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .unwrap_or_else(|| panic!("stream ended before {what}"))
            .expect("event");
        if f(&ev) {
            return ev;
        }
    }
}

#[tokio::test]
async fn create_list_get_close_load_delete() {
    let d = Daemon::start().await;
    let c = d.tui().await;
    let created = c
        .new_session(NewSessionParams {
            title: Some("first".into()),
            mode: Some(sessiond_protocol::Mode::Code),
            cwd: Some("/tmp".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let s = created.session;
    assert!(s.session_id.as_str().len() >= 24, "unpredictable id");
    assert_eq!(s.status, SessionStatus::Created);
    assert!(s.live);
    assert_eq!(s.owner_tui_id, c.identity().map(|i| i.tui_id));
    assert_eq!(s.title.as_deref(), Some("first"));
    let other = new_session(&c, None).await;
    assert_ne!(other, s.session_id);

    let listed = c.list_sessions(ListParams::default()).await.unwrap();
    assert_eq!(listed.sessions.len(), 2);
    assert_eq!(listed.sessions[0].session_id, other, "newest first");

    let got = c.get_session(&s.session_id).await.unwrap();
    assert_eq!(got.mode, sessiond_protocol::Mode::Code);
    assert_eq!(got.cwd.as_deref(), Some("/tmp"));

    let closed = c.close_session(&s.session_id).await.unwrap();
    assert!(closed.closed);
    assert_eq!(closed.cancelled_turn, None);
    assert!(!c.get_session(&s.session_id).await.unwrap().live);

    let loaded = c.load_session(&s.session_id, false, true).await.unwrap();
    assert!(loaded.session.live);
    assert_eq!(loaded.session.title.as_deref(), Some("first"));

    c.delete_session(&s.session_id).await.unwrap();
    let err = c.get_session(&s.session_id).await.unwrap_err();
    assert_eq!(err.code(), Some(codes::SESSION_NOT_FOUND));
    let st = c.status().await.unwrap();
    assert_eq!(st.sessions_total, 1);
}

#[tokio::test]
async fn prompt_with_wait_returns_the_verdict_and_the_transcript_has_it() {
    let d = Daemon::start().await;
    let c = d.tui().await;
    let id = new_session(&c, None).await;
    let v = c
        .prompt_wait(&id, "hello there\nsecond line")
        .await
        .unwrap();
    assert_eq!(v.stop_reason, StopReason::EndTurn);
    assert_eq!(v.content, "hello there\nsecond line");
    assert_eq!(v.usage.input_tokens, 4);
    let msgs = c.messages(&id, None, None).await.unwrap();
    assert_eq!(msgs.total, 2);
    assert_eq!(msgs.messages[0].content, "hello there\nsecond line");
    assert_eq!(msgs.messages[1].content, v.content);
    assert_eq!(msgs.messages[1].turn_id.as_ref(), Some(&v.turn_id));
    let info = c.get_session(&id).await.unwrap();
    assert_eq!(info.status, SessionStatus::Active);
    assert_eq!(info.title.as_deref(), Some("hello there"));
    assert_eq!(info.round_count, 1);
    assert_eq!(info.usage.output_tokens, 4);
    // Paging past the end is an empty page, not an error.
    let past = c.messages(&id, Some(10), None).await.unwrap();
    assert!(past.messages.is_empty());
    assert_eq!(past.total, 2);
}

#[tokio::test]
async fn prompt_over_raw_http_with_wait() {
    let d = Daemon::start().await;
    let r = d
        .http(r#"{"jsonrpc":"2.0","id":1,"method":"session/new","params":{}}"#)
        .await;
    let id = r["result"]["session"]["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        r["result"]["session"]["owner_tui_id"].is_null(),
        "anonymous sessions are unowned"
    );
    let body = json!({"jsonrpc":"2.0","id":2,"method":"session/prompt","params":{"session_id": id, "text":"via curl","wait":true}});
    let r = d.http(&body.to_string()).await;
    assert_eq!(r["result"]["stop_reason"], "end_turn");
    assert_eq!(r["result"]["content"], "via curl");
    let body = json!({"jsonrpc":"2.0","id":3,"method":"session/prompt","params":{"session_id": id, "text":"  "}});
    let r = d.http(&body.to_string()).await;
    assert_eq!(r["error"]["code"], codes::INVALID_PARAMS);
}

#[tokio::test]
async fn subscription_sees_the_turn_in_order_with_consecutive_seq() {
    let d = Daemon::start_with("[agents.small]\nkind = \"echo\"\nchunk_chars = 3\n").await;
    let c = d.tui().await;
    let id = new_session(&c, Some("small")).await;
    let mut events = c.subscribe(&id, None).await.unwrap();
    let text = "the quick brown fox jumps over the lazy dog";
    let accepted = c.prompt_text(&id, text).await.unwrap();
    let mut seen = Vec::new();
    loop {
        let ev = next_matching(&mut events, "events", |_| true).await;
        let done = matches!(ev.event, Event::TurnComplete { .. });
        seen.push(ev);
        if done {
            break;
        }
    }
    for w in seen.windows(2) {
        assert_eq!(w[1].seq, w[0].seq + 1, "seq increases by one");
    }
    assert!(
        matches!(&seen[0].event, Event::UserMessage { text: t, turn_id, .. } if t == text && *turn_id == accepted.turn_id)
    );
    assert!(
        matches!(&seen[1].event, Event::TurnStarted { turn_id, generation } if *turn_id == accepted.turn_id && *generation > 0)
    );
    let chunks: Vec<&str> = seen
        .iter()
        .filter_map(|e| match &e.event {
            Event::AgentMessageChunk { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(chunks.len(), text.chars().count().div_ceil(3));
    assert_eq!(chunks.concat(), text);
    match &seen.last().unwrap().event {
        Event::TurnComplete { verdict } => {
            assert_eq!(verdict.stop_reason, StopReason::EndTurn);
            assert_eq!(verdict.content, text);
        }
        other => panic!("last event {other:?}"),
    }
}

#[tokio::test]
async fn cancel_of_a_long_turn_is_prompt_and_names_client_rpc() {
    let d = Daemon::start_with(SLOW).await;
    let c = d.tui().await;
    let id = new_session(&c, Some("slow")).await;
    let mut events = c.subscribe(&id, None).await.unwrap();
    let accepted = c.prompt_text(&id, "y".repeat(10_000)).await.unwrap();
    next_matching(&mut events, "first chunk", |e| {
        matches!(e.event, Event::AgentMessageChunk { .. })
    })
    .await;
    let started = Instant::now();
    let r = c.cancel(&id).await.unwrap();
    assert!(r.cancelled);
    assert_eq!(r.turn_id.as_ref(), Some(&accepted.turn_id));
    let ev = next_matching(&mut events, "turn_complete", |e| {
        matches!(e.event, Event::TurnComplete { .. })
    })
    .await;
    let elapsed = started.elapsed();
    let Event::TurnComplete { verdict } = ev.event else {
        unreachable!()
    };
    assert_eq!(verdict.stop_reason, StopReason::Cancelled);
    assert_eq!(verdict.cancel_cause, Some(CancelCause::ClientRpc));
    assert!(!verdict.content.is_empty() && verdict.content.len() < 10_000);
    assert!(
        elapsed < Duration::from_millis(900),
        "verdict took {elapsed:?}"
    );
    let stats = c.admin_stats().await.unwrap();
    assert_eq!(stats.cancels_by_cause[&CancelCause::ClientRpc], 1);
    // The partial reply is kept in the transcript.
    let msgs = c.messages(&id, None, None).await.unwrap();
    assert_eq!(msgs.messages[1].content, verdict.content);
}

#[tokio::test]
async fn cancel_with_nothing_running_counts_no_cause() {
    let d = Daemon::start().await;
    let c = d.tui().await;
    let id = new_session(&c, None).await;
    let r = c.cancel(&id).await.unwrap();
    assert!(!r.cancelled);
    assert_eq!(r.turn_id, None);
    let stats = c.admin_stats().await.unwrap();
    assert!(
        stats.cancels_by_cause.values().all(|n| *n == 0),
        "{:?}",
        stats.cancels_by_cause
    );
}

#[tokio::test]
async fn admin_kill_mid_turn() {
    let d = Daemon::start_with(SLOW).await;
    let c = d.tui().await;
    let id = new_session(&c, Some("slow")).await;
    let mut events = c.subscribe(&id, None).await.unwrap();
    let accepted = c.prompt_text(&id, "z".repeat(5_000)).await.unwrap();
    next_matching(&mut events, "first chunk", |e| {
        matches!(e.event, Event::AgentMessageChunk { .. })
    })
    .await;
    let admin = d.client().await;
    let k = admin.admin_kill(&id).await.unwrap();
    assert!(k.killed);
    assert_eq!(k.cancelled_turn.as_ref(), Some(&accepted.turn_id));
    let ev = next_matching(&mut events, "turn_complete", |e| {
        matches!(e.event, Event::TurnComplete { .. })
    })
    .await;
    let Event::TurnComplete { verdict } = ev.event else {
        unreachable!()
    };
    assert_eq!(verdict.cancel_cause, Some(CancelCause::AdminKill));
    let closed = next_matching(&mut events, "session_closed", |e| {
        matches!(e.event, Event::SessionClosed { .. })
    })
    .await;
    assert!(matches!(
        closed.event,
        Event::SessionClosed {
            reason: sessiond_protocol::CloseReason::Killed
        }
    ));
    let info = c.get_session(&id).await.unwrap();
    assert_eq!(info.status, SessionStatus::Killed);
    assert!(!info.live);
    let err = c.prompt_text(&id, "again").await.unwrap_err();
    assert_eq!(err.code(), Some(codes::SESSION_TERMINATED));
    let err = c.load_session(&id, false, false).await.unwrap_err();
    assert_eq!(err.code(), Some(codes::SESSION_TERMINATED));
    // The transcript stays readable.
    assert_eq!(c.messages(&id, None, None).await.unwrap().total, 2);
    let stats = c.admin_stats().await.unwrap();
    assert_eq!(stats.cancels_by_cause[&CancelCause::AdminKill], 1);
    // Killing again reports it was already killed.
    assert!(!admin.admin_kill(&id).await.unwrap().killed);
}

#[tokio::test]
async fn close_mid_turn_cancels_with_session_removed() {
    let d = Daemon::start_with(SLOW).await;
    let c = d.tui().await;
    let id = new_session(&c, Some("slow")).await;
    let mut events = c.subscribe(&id, None).await.unwrap();
    let accepted = c.prompt_text(&id, "q".repeat(5_000)).await.unwrap();
    next_matching(&mut events, "first chunk", |e| {
        matches!(e.event, Event::AgentMessageChunk { .. })
    })
    .await;
    let r = c.close_session(&id).await.unwrap();
    assert_eq!(r.cancelled_turn.as_ref(), Some(&accepted.turn_id));
    let ev = next_matching(&mut events, "turn_complete", |e| {
        matches!(e.event, Event::TurnComplete { .. })
    })
    .await;
    let Event::TurnComplete { verdict } = ev.event else {
        unreachable!()
    };
    assert_eq!(verdict.cancel_cause, Some(CancelCause::SessionRemoved));
    next_matching(&mut events, "session_closed", |e| {
        matches!(
            e.event,
            Event::SessionClosed {
                reason: sessiond_protocol::CloseReason::Closed
            }
        )
    })
    .await;
    // A prompt loads it back.
    let v = c.prompt_wait(&id, "back").await.unwrap();
    assert_eq!(v.stop_reason, StopReason::EndTurn);
}

#[tokio::test]
async fn admin_methods_report_tuis_sessions_and_stats() {
    let d = Daemon::start().await;
    let a = d.tui().await;
    let b = d.tui().await;
    new_session(&a, None).await;
    new_session(&b, None).await;
    let admin = d.client().await;
    let tuis = admin.admin_tuis().await.unwrap();
    assert_eq!(tuis.tuis.len(), 2);
    assert!(tuis
        .tuis
        .iter()
        .all(|t| t.transport == "unix" && t.peer.starts_with("uid:")));
    let all = admin.admin_sessions(ListParams::default()).await.unwrap();
    assert_eq!(all.sessions.len(), 2);
    let mine = a.list_sessions(ListParams::default()).await.unwrap();
    assert_eq!(
        mine.sessions.len(),
        1,
        "a TUI lists its own sessions by default"
    );
    let stats = admin.admin_stats().await.unwrap();
    assert_eq!(stats.sessions_live, 2);
    assert_eq!(stats.tuis, 2);
    assert_eq!(stats.by_agent["echo"], 2);
    assert!(stats.rss_bytes > 0);
    assert!(stats.connections >= 3);
    drop(b);
    sessiond_tests::wait_for("tui to disappear", || async {
        (admin.admin_tuis().await.unwrap().tuis.len() == 1).then_some(())
    })
    .await;
    // Its session stays.
    assert_eq!(admin.admin_stats().await.unwrap().sessions_live, 2);
}

#[tokio::test]
async fn admin_shutdown_stops_the_daemon() {
    let mut d = Daemon::start().await;
    let c = d.client().await;
    assert!(c.admin_shutdown(None).await.unwrap().ok);
    assert!(d.wait_exit().success());
    assert!(!d.socket().exists());
}
