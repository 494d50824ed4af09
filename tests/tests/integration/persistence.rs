//! Persistence through the real binary: everything is back after a stop and after
//! `kill -9`; a `kill -9` loop with writes in flight from several clients loses
//! nothing acknowledged and half-applies nothing; a turn running at `kill -9` becomes
//! `failed` and its seqs are never handed out again; a killed session stays killed;
//! a version 1 database is migrated (in migration.rs; retention is in retention.rs).

use sessiond_client::Client;
use sessiond_protocol::params::{ListParams, NewSessionParams, OverridesPatch};
use sessiond_protocol::{
    codes, Event, Mode, Overrides, Patch, SessionId, SessionInfo, SessionStatus, StopReason, TurnId,
};
use sessiond_tests::{is_turn_complete, new_session, replay_until, wait_for, Daemon};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SLOW: &str = "[agents.slow]\nkind = \"echo\"\nchunk_chars = 1\nchunk_delay_ms = 2\n";

/// What a client can read back about a session; `live`-related fields cleared.
#[derive(Debug, PartialEq)]
struct Snapshot {
    info: SessionInfo,
    messages: Vec<(u64, String, String)>,
    uploads: Vec<(String, String, u64)>,
}

async fn snapshot(c: &Client, id: &SessionId) -> Snapshot {
    let mut info = c.get_session(id).await.expect("session/get");
    info.live = false;
    info.turn = None;
    info.queued_turns = 0;
    info.pending_requests = 0;
    // Presence (open subscriptions), not persisted state.
    info.watchers = 0;
    let messages = c
        .messages(id, None, None)
        .await
        .expect("session/messages")
        .messages
        .into_iter()
        .map(|m| (m.index, format!("{:?}", m.role), m.content))
        .collect();
    let uploads = c
        .uploads(id)
        .await
        .expect("session/uploads")
        .uploads
        .into_iter()
        .map(|u| (u.ref_id, u.name, u.size_bytes))
        .collect();
    Snapshot {
        info,
        messages,
        uploads,
    }
}

#[tokio::test]
async fn everything_is_back_after_a_stop_and_after_kill_9() {
    let d = Daemon::start().await;
    let c = d.tui().await;
    let s = c
        .new_session(NewSessionParams {
            title: Some("kept".into()),
            mode: Some(Mode::Code),
            cwd: Some("/srv/project".into()),
            ttl_secs: Some(10 * 365 * 24 * 3600),
            overrides: Some(Overrides {
                model: Some("m-1".into()),
                model_provider: None,
                temperature: Some(0.5),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .session;
    let id = s.session_id.clone();
    c.configure(
        &id,
        OverridesPatch {
            temperature: Patch::Set(0.25),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let v = c.prompt_wait(&id, "remember this").await.unwrap();
    assert_eq!(v.stop_reason, StopReason::EndTurn);
    let up = c
        .upload_bytes(&id, "notes.txt", Some("text/plain".into()), b"persist me")
        .await
        .unwrap();
    let before = snapshot(&c, &id).await;
    assert_eq!(before.info.owner_tui_id, s.owner_tui_id);
    assert_eq!(before.messages.len(), 2);
    let history = replay_until(&c, &id, "upload_added", |e| {
        matches!(e.event, Event::UploadAdded { .. })
    })
    .await;
    let seqs: Vec<u64> = history.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    drop(c);

    // Graceful stop: the same session, the same everything, the same event history,
    // and the next event continues right after the last one.
    let d = d.restart().await;
    let c = d.client().await;
    assert_eq!(snapshot(&c, &id).await, before);
    let listed = c.admin_sessions(ListParams::default()).await.unwrap();
    assert_eq!(listed.sessions.len(), 1);
    assert!(!listed.sessions[0].live, "sessions load lazily");
    let replayed = replay_until(&c, &id, "upload_added", |e| {
        matches!(e.event, Event::UploadAdded { .. })
    })
    .await;
    assert_eq!(replayed, history);
    assert_eq!(
        std::fs::read(&up.workspace_path).unwrap(),
        b"persist me",
        "the upload's bytes are on disk"
    );
    // A stop publishes nothing: the next event follows the last one directly.
    let last_seq = history.last().unwrap().seq;
    let mut events = c.subscribe(&id, Some(last_seq)).await.unwrap();
    let anon = c.prompt_wait(&id, "after the stop").await;
    assert_eq!(
        anon.unwrap_err().code(),
        Some(codes::SESSION_NOT_OWNED),
        "ownership survived"
    );
    let tui_again = d.tui().await;
    tui_again.load_session(&id, true, true).await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(20), events.next_event())
        .await
        .expect("an event")
        .unwrap()
        .unwrap();
    assert_eq!(ev.seq, last_seq + 1, "seq continues after the last one");
    let before = snapshot(&tui_again, &id).await;
    drop((c, tui_again, events));

    // kill -9 while the session is live: everything acknowledged is back.
    let d = d.crash_and_restart().await;
    let c = d.client().await;
    let after = snapshot(&c, &id).await;
    assert_eq!(after, before);
    // The session was live at the crash: the seqs it had reserved are skipped and
    // marked; everything before is intact.
    let replayed = replay_until(&c, &id, "the resync marker", |e| {
        matches!(e.event, Event::Resync { .. })
    })
    .await;
    assert!(replayed.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(&replayed[..history.len()], &history[..]);
    assert!(replayed.last().unwrap().seq >= ev.seq);
}

/// What each writer had acknowledged, and what it had in flight when the daemon died.
#[derive(Default, Debug)]
struct Acked {
    /// session -> title
    sessions: BTreeMap<SessionId, String>,
    /// session -> temperature acknowledged by `session/configure`
    configured: BTreeMap<SessionId, f64>,
    /// session -> temperature sent but not acknowledged
    configuring: BTreeMap<SessionId, f64>,
    /// session -> (ref_id, bytes)
    uploads: Vec<(SessionId, String, Vec<u8>)>,
    turns: Vec<(SessionId, TurnId)>,
}

/// One writer: create, configure, upload, prompt, over and over, until an error.
async fn writer(
    c: Client,
    who: usize,
    round: usize,
    acked: Arc<Mutex<Acked>>,
    ops: Arc<AtomicUsize>,
) {
    for k in 0..10_000usize {
        let title = format!("w{who}-r{round}-{k}");
        let Ok(r) = c
            .new_session(NewSessionParams {
                title: Some(title.clone()),
                ..Default::default()
            })
            .await
        else {
            return;
        };
        let id = r.session.session_id;
        acked.lock().unwrap().sessions.insert(id.clone(), title);
        ops.fetch_add(1, Ordering::SeqCst);
        let t = (who * 1000 + k % 1000) as f64 / 1000.0;
        acked.lock().unwrap().configuring.insert(id.clone(), t);
        let patch = OverridesPatch {
            temperature: Patch::Set(t),
            ..Default::default()
        };
        if c.configure(&id, patch).await.is_err() {
            return;
        }
        acked.lock().unwrap().configured.insert(id.clone(), t);
        ops.fetch_add(1, Ordering::SeqCst);
        let bytes = format!("writer {who} round {round} op {k}").into_bytes();
        let Ok(u) = c.upload_bytes(&id, "w.txt", None, &bytes).await else {
            return;
        };
        acked
            .lock()
            .unwrap()
            .uploads
            .push((id.clone(), u.ref_id, bytes));
        ops.fetch_add(1, Ordering::SeqCst);
        let Ok(a) = c.prompt_text(&id, format!("prompt {k}")).await else {
            return;
        };
        acked.lock().unwrap().turns.push((id.clone(), a.turn_id));
        ops.fetch_add(1, Ordering::SeqCst);
        if c.close_session(&id).await.is_err() {
            return;
        }
    }
}

async fn verify_acked(c: &Client, d: &Daemon, acked: &Acked) {
    for (id, title) in &acked.sessions {
        let info = c
            .get_session(id)
            .await
            .unwrap_or_else(|e| panic!("acknowledged session {id} lost: {e}"));
        assert_eq!(info.title.as_deref(), Some(title.as_str()));
        let t = info.overrides.temperature;
        match acked.configured.get(id) {
            Some(v) => assert_eq!(t, Some(*v), "acknowledged configure of {id} lost"),
            None => assert!(
                t.is_none() || t == acked.configuring.get(id).copied(),
                "configure of {id} half-applied: {t:?}"
            ),
        }
        // Transcript and counters are written together, never one without the other.
        let m = c.messages(id, None, None).await.unwrap();
        assert_eq!(m.messages.len() as u64, m.total, "messages of {id}");
        assert_eq!(m.total, info.message_count);
        for (i, msg) in m.messages.iter().enumerate() {
            assert_eq!(msg.index, i as u64);
        }
    }
    for (id, ref_id, bytes) in &acked.uploads {
        let index = c.uploads(id).await.unwrap().uploads;
        let u = index
            .iter()
            .find(|u| &u.ref_id == ref_id)
            .unwrap_or_else(|| panic!("acknowledged upload {ref_id} of {id} lost"));
        assert_eq!(&std::fs::read(&u.workspace_path).unwrap(), bytes);
    }
    // Every indexed upload of any session has its file (no index without bytes).
    let all = c
        .admin_sessions(ListParams {
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap();
    for s in &all.sessions {
        for u in c.uploads(&s.session_id).await.unwrap().uploads {
            assert!(
                std::path::Path::new(&u.workspace_path).exists(),
                "{}",
                d.log()
            );
        }
    }
}

#[tokio::test]
async fn kill_9_loop_with_writes_in_flight_loses_nothing_acknowledged() {
    kill_9_loop("max_live_sessions = 10000\n").await;
}

/// `durability = "crash"` skips the fsync per commit, but keeps the contract: what a
/// reply acknowledged survives `kill -9` of the daemon.
#[tokio::test]
async fn with_crash_durability_kill_9_loses_nothing_acknowledged() {
    kill_9_loop("max_live_sessions = 10000\ndurability = \"crash\"\n").await;
}

async fn kill_9_loop(config: &str) {
    let mut d = Daemon::start_with(config).await;
    let acked = Arc::new(Mutex::new(Acked::default()));
    const WRITERS: usize = 4;
    for round in 0..4 {
        let ops = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for who in 0..WRITERS {
            let c = d.client().await;
            tasks.push(tokio::spawn(writer(
                c,
                who,
                round,
                acked.clone(),
                ops.clone(),
            )));
        }
        // Kill at a different point of the write stream each round.
        let target = 8 + round * 13;
        wait_for("writes to be acknowledged", || {
            let n = ops.load(Ordering::SeqCst);
            async move { (n >= target).then_some(()) }
        })
        .await;
        d.kill9();
        for t in tasks {
            t.await.unwrap();
        }
        let dirs = std::mem::take(&mut d.dirs);
        drop(d);
        d = Daemon::start_in(dirs).await.expect("restart after kill -9");
        let c = d.client().await;
        let snapshot = std::mem::take(&mut *acked.lock().unwrap());
        verify_acked(&c, &d, &snapshot).await;
        *acked.lock().unwrap() = snapshot;
    }
    // The audit trail: every acknowledged prompt has its turn, and none is left open.
    let turns = acked.lock().unwrap().turns.clone();
    assert!(!turns.is_empty());
    let st = d.sigterm();
    assert!(st.success());
    let db = rusqlite::Connection::open(d.dirs.db_path()).unwrap();
    let ok: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    for (id, turn) in turns {
        let (sid, ended): (String, Option<String>) = db
            .query_row(
                "SELECT session_id, ended_at FROM turns WHERE turn_id = ?1",
                [turn.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap_or_else(|e| panic!("acknowledged turn {turn} lost: {e}"));
        assert_eq!(sid, id.as_str());
        assert!(ended.is_some(), "turn {turn} left open");
    }
}

#[tokio::test]
async fn a_turn_running_at_kill_9_becomes_failed_and_its_seqs_are_not_reused() {
    let d = Daemon::start_with(SLOW).await;
    let c = d.tui().await;
    let id = new_session(&c, "slow").await;
    let mut events = c.subscribe(&id, None).await.unwrap();
    let accepted = c.prompt_text(&id, "y".repeat(20_000)).await.unwrap();
    let mut seen = 0;
    let mut chunks = 0;
    while chunks < 100 {
        let ev = events.next_event().await.expect("event").unwrap();
        seen = ev.seq;
        if matches!(ev.event, Event::AgentMessageChunk { .. }) {
            chunks += 1;
        }
    }
    drop((c, events));
    let d = d.crash_and_restart().await;
    let c = d.client().await;
    let info = c.get_session(&id).await.unwrap();
    assert!(info.turn.is_none());
    assert_eq!(info.round_count, 1);
    let replay = replay_until(&c, &id, "the interrupted turn's verdict", |e| {
        is_turn_complete(e, &accepted.turn_id)
    })
    .await;
    let last = replay.last().unwrap();
    let Event::TurnComplete { verdict } = &last.event else {
        unreachable!()
    };
    assert_eq!(verdict.stop_reason, StopReason::Failed);
    assert!(
        verdict
            .error
            .as_deref()
            .unwrap_or("")
            .contains("daemon stopped"),
        "{verdict:?}"
    );
    assert!(
        last.seq > seen,
        "seq {} handed out again (the client had seen {seen})",
        last.seq
    );
    // The seqs that may have been lost are marked, so a resuming client reloads.
    let marker = replay
        .iter()
        .find(|e| matches!(e.event, Event::Resync { .. }))
        .expect("a resync marker where events may be missing");
    assert!(matches!(marker.event, Event::Resync { from_seq } if from_seq == marker.seq + 1));
    assert!(marker.seq >= seen && marker.seq < last.seq);
    assert!(replay.windows(2).all(|w| w[0].seq < w[1].seq));
    // A client that resumes after what it saw gets the verdict, nothing reused.
    let mut resumed = c.subscribe(&id, Some(seen)).await.unwrap();
    let first = resumed.next_event().await.unwrap().unwrap();
    assert!(first.seq > seen);
    // The transcript has the user message and nothing half-written.
    let m = c.messages(&id, None, None).await.unwrap();
    assert_eq!(m.total, m.messages.len() as u64);
}

#[tokio::test]
async fn a_killed_session_stays_killed_after_kill_9_and_after_a_stop() {
    let d = Daemon::start_with(SLOW).await;
    let c = d.tui().await;
    let id = new_session(&c, "slow").await;
    let mut events = c.subscribe(&id, None).await.unwrap();
    c.prompt_text(&id, "k".repeat(5_000)).await.unwrap();
    loop {
        let ev = events.next_event().await.expect("event").unwrap();
        if matches!(ev.event, Event::AgentMessageChunk { .. }) {
            break;
        }
    }
    let admin = d.client().await;
    assert!(admin.admin_kill(&id).await.unwrap().killed);
    let me = c.identity().unwrap();
    drop((c, admin, events));
    let mut d = d.crash_and_restart().await;
    for _ in 0..2 {
        // The owner itself, so that only the killed status can refuse.
        let c = d.client().await;
        c.initialize("owner", Some(me.clone())).await.unwrap();
        let info = c.get_session(&id).await.unwrap();
        assert_eq!(info.status, SessionStatus::Killed);
        assert!(!info.live);
        let err = c.load_session(&id, true, false).await.unwrap_err();
        assert_eq!(err.code(), Some(codes::SESSION_TERMINATED));
        let err = c.prompt_text(&id, "again").await.unwrap_err();
        assert_eq!(err.code(), Some(codes::SESSION_TERMINATED));
        let err = c.subscribe(&id, None).await.unwrap_err();
        assert_eq!(err.code(), Some(codes::SESSION_TERMINATED));
        drop(c);
        d = d.restart().await;
    }
}

#[tokio::test]
async fn temp_upload_files_left_by_a_crash_are_removed_at_start_up() {
    let d = Daemon::start().await;
    let c = d.tui().await;
    let id = new_session(&c, "echo").await;
    let up = c
        .upload_bytes(&id, "kept.txt", None, b"kept")
        .await
        .unwrap();
    // What a crash between the temp write and the rename leaves behind.
    let leftover = d.dirs.data_dir().join("uploads/.tmp-interrupted");
    std::fs::write(&leftover, b"half a file").unwrap();
    drop(c);

    let d = d.crash_and_restart().await;
    assert!(!leftover.exists(), "the temp file is removed");
    assert_eq!(std::fs::read(&up.workspace_path).unwrap(), b"kept");
    let c = d.client().await;
    assert_eq!(c.uploads(&id).await.unwrap().uploads.len(), 1);
}
