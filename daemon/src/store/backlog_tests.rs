//! The storage backlog of a session is bounded: with the database writer stalled,
//! a fast agent's turn stops being polled once its session has
//! [`BACKLOG_LIMIT`](super::event_writer::BACKLOG_LIMIT) bytes queued, and goes on
//! when the writer catches up; another session's writes are not held behind it.

use super::event_writer::BACKLOG_LIMIT;
use super::{Caller, PromptRequest, Store};
use crate::agent::Agents;
use crate::persist::Db;
use sessiond_config::Config;
use sessiond_protocol::params::NewSessionParams;
use std::sync::Arc;
use std::time::Duration;

/// Events published (user message, turn start, then reply chunks) before the
/// writer is stalled.
const STREAMING: u64 = 16;

// One thread: each `yield_now` of the test lets every other ready task (the turn,
// whose echo agent yields after each chunk) run once, so "the turn kept publishing"
// is seen whatever the machine's load, and "it did not" is not a scheduling accident.
#[tokio::test(flavor = "current_thread")]
async fn a_stalled_writer_stops_the_turn_at_the_backlog_bound() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::from_toml_str(
        "[agents.fast]\nkind = \"echo\"\nchunk_chars = 64\nchunk_delay_ms = 0\n",
    )
    .unwrap();
    let blobs = dir.path().join("uploads");
    std::fs::create_dir_all(&blobs).unwrap();
    let (db, _) = Db::open(dir.path(), &blobs).unwrap();
    let agents = Arc::new(Agents::from_config(&cfg));
    let store = Store::new(Arc::new(cfg), db, agents, blobs, 0);
    let caller = Caller::default();
    let p = NewSessionParams {
        agent: Some("fast".into()),
        ..Default::default()
    };
    let (info, _) = store.create(&caller, p).await.unwrap();
    let id = info.session_id;
    store.db().pause_writes(true);
    let req = PromptRequest {
        text: "y".repeat(8 << 20),
        attachments: vec![],
        interrupt: false,
        wait: true,
    };
    // The prompt's own commit is stalled too: accept it in the background.
    let s2 = store.clone();
    let id2 = id.clone();
    let waiter = tokio::spawn(async move { s2.prompt(&caller, &id2, req).await });
    store.db().pause_writes(false);
    // The writer is stalled only once the reply streams: a turn held before its
    // first chunk (e.g. by a read behind the stalled writer) would show nothing.
    let writer = loop {
        if let Some(w) = store
            .sessions
            .get(&id)
            .filter(|e| e.turn.is_some() && e.hub.last_seq() >= STREAMING)
            .map(|e| e.writer.clone())
        {
            break w;
        }
        tokio::task::yield_now().await;
    };
    store.db().pause_writes(true);
    // The turn runs until its backlog passes the bound, then is held there.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while writer.backlog() <= BACKLOG_LIMIT {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the backlog never filled"
        );
        tokio::task::yield_now().await;
    }
    let held = store.sessions.get(&id).unwrap().hub.last_seq();
    for _ in 0..2000 {
        tokio::task::yield_now().await;
    }
    let still = store.sessions.get(&id).unwrap().hub.last_seq();
    assert_eq!(held, still, "the turn kept publishing with a full backlog");
    // Stopped midway: far fewer chunks than the reply has (8 MiB in 64-byte chunks).
    assert!(
        still < (8 << 20) / 64 / 2,
        "the turn was not held ({still} events)"
    );
    // Queued: the prompt's own `user_message` event (as large as the prompt), the
    // bound, and at most one coalesced flush past it.
    let bound = (8 << 20) + 2 * BACKLOG_LIMIT;
    assert!(
        writer.backlog() <= bound,
        "{} bytes queued",
        writer.backlog()
    );
    store.db().pause_writes(false);
    let accepted = tokio::time::timeout(Duration::from_secs(120), waiter)
        .await
        .expect("the prompt is answered")
        .unwrap()
        .unwrap();
    let verdict = tokio::time::timeout(Duration::from_secs(120), accepted.verdict.unwrap())
        .await
        .expect("the turn ends once the writer caught up")
        .unwrap();
    assert_eq!(verdict.content.len(), 8 << 20);
}
