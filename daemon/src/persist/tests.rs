//! The database rules that integration tests cannot time: a prune never removes a
//! session holding a seq reservation, a strict reservation of a pruned session
//! fails, a release only gives back what nobody extended, and recovery closes seq
//! gaps before appending interrupted verdicts; a run of events is stored as single
//! appends would store it, and an idle writer gives memory back after much history.

use super::{Db, Op};
use crate::record::{SessionRecord, TurnRecord};
use sessiond_protocol::{Event, EventEnvelope, SessionId, SessionStatus, StopReason};

fn record(id: &str) -> SessionRecord {
    SessionRecord {
        id: SessionId(id.into()),
        agent: "echo".into(),
        mode: Default::default(),
        title: None,
        cwd: None,
        owner: None,
        status: SessionStatus::Created,
        overrides: Default::default(),
        ttl_secs: None,
        created_at: "2026-01-01T00:00:00.000000Z".into(),
        updated_at: "2026-01-01T00:00:00.000000Z".into(),
        last_active_at: "2026-01-01T00:00:00.000000Z".into(),
        message_count: 0,
        round_count: 0,
        usage: Default::default(),
        last_seq: 0,
        seq_reserved: 0,
    }
}

fn reserve(id: &SessionId, upto: u64, strict: bool) -> Op {
    Op::ReserveSeq {
        session_id: id.clone(),
        upto,
        strict,
    }
}

fn event(id: &SessionId, seq: u64) -> Op {
    Op::AppendEvent {
        session_id: id.clone(),
        seq,
        body: "{}".into(),
        keep: 1000,
    }
}

#[tokio::test]
async fn prune_skips_reserved_sessions_and_a_pruned_session_cannot_be_reserved() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = Db::open(dir.path(), dir.path()).unwrap();
    let s = record("ses_a");
    let id = s.id.clone();
    db.write(vec![
        Op::InsertSession(s),
        reserve(&id, 100, true),
        event(&id, 1),
    ])
    .await
    .unwrap();
    // Live (reservation outstanding): the prune is a no-op.
    db.write(vec![Op::PruneSession(id.clone())]).await.unwrap();
    assert!(db.get_session(&id).await.unwrap().is_some());
    // A release with a stale `held` (someone extended meanwhile) gives nothing back.
    db.write(vec![reserve(&id, 200, false)]).await.unwrap();
    db.write(vec![Op::ReleaseSeq {
        session_id: id.clone(),
        last: 1,
        held: Some(100),
    }])
    .await
    .unwrap();
    assert_eq!(
        db.get_session(&id).await.unwrap().unwrap().seq_reserved,
        200
    );
    db.write(vec![Op::ReleaseSeq {
        session_id: id.clone(),
        last: 1,
        held: Some(200),
    }])
    .await
    .unwrap();
    let rec = db.get_session(&id).await.unwrap().unwrap();
    assert_eq!((rec.last_seq, rec.seq_reserved), (1, 1));
    // Released: pruned, and loading it afterwards fails instead of resurrecting it.
    db.write(vec![Op::PruneSession(id.clone())]).await.unwrap();
    assert!(db.get_session(&id).await.unwrap().is_none());
    assert!(db.write(vec![reserve(&id, 300, true)]).await.is_err());
    // Updates of a deleted session do not bring it back either.
    db.write(vec![Op::UpdateSession(record("ses_a"))])
        .await
        .unwrap();
    assert!(db.get_session(&id).await.unwrap().is_none());
    db.close();
}

#[tokio::test]
async fn recovery_skips_reserved_seqs_then_records_interrupted_turns() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = Db::open(dir.path(), dir.path()).unwrap();
    let id = SessionId("ses_b".into());
    db.write(vec![
        Op::InsertSession(record("ses_b")),
        reserve(&id, 50, true),
        event(&id, 1),
        event(&id, 2),
        Op::StartTurn(TurnRecord {
            turn_id: "turn_x".into(),
            session_id: id.clone(),
            generation: 0,
            prompt: "p".into(),
            started_at: "2026-01-01T00:00:01.000000Z".into(),
        }),
    ])
    .await
    .unwrap();
    db.close(); // as if the process died here: reservation 50, last stored seq 2
    let (db, recovery) = Db::open(dir.path(), dir.path()).unwrap();
    assert_eq!(recovery.seq_gaps, 1);
    assert_eq!(recovery.interrupted.len(), 1);
    let rec = db.get_session(&id).await.unwrap().unwrap();
    assert_eq!(
        (rec.last_seq, rec.seq_reserved, rec.round_count),
        (51, 50, 1)
    );
    let events = db.recent_events(&id, 10).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, [1, 2, 50, 51]);
    let marker: EventEnvelope = serde_json::from_str(&events[2].1).unwrap();
    assert!(matches!(marker.event, Event::Resync { from_seq: 51 }));
    let verdict: EventEnvelope = serde_json::from_str(&events[3].1).unwrap();
    assert!(matches!(
        verdict.event,
        Event::TurnComplete { ref verdict } if verdict.stop_reason == StopReason::Failed
    ));
    db.close();
    // A second start finds nothing to repair.
    let (_db, recovery) = Db::open(dir.path(), dir.path()).unwrap();
    assert_eq!((recovery.seq_gaps, recovery.interrupted.len()), (0, 0));
}

#[tokio::test]
async fn a_run_of_events_is_stored_whole_with_last_seq_and_the_trim_of_single_appends() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = Db::open(dir.path(), dir.path()).unwrap();
    let id = SessionId("ses_c".into());
    db.write(vec![Op::InsertSession(record("ses_c"))])
        .await
        .unwrap();
    // Two jobs as the event writer queues them; the second crosses seq 128, where a
    // single append would trim to the last 64.
    for run in [1..=100u64, 101..=130] {
        db.write(vec![Op::AppendEvents {
            session_id: id.clone(),
            events: run.map(|s| (s, format!("{{\"n\":{s}}}"))).collect(),
            keep: 64,
        }])
        .await
        .unwrap();
    }
    let rec = db.get_session(&id).await.unwrap().unwrap();
    assert_eq!(rec.last_seq, 130);
    let events = db.recent_events(&id, 1000).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (67..=130).collect::<Vec<_>>());
    assert_eq!(events[0].1, "{\"n\":67}");
    db.close();
}

#[tokio::test]
async fn an_idle_writer_gives_memory_back_after_much_history() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = Db::open(dir.path(), dir.path()).unwrap();
    let id = SessionId("ses_d".into());
    db.write(vec![Op::InsertSession(record("ses_d"))])
        .await
        .unwrap();
    let before = crate::memory::trims();
    let n = crate::memory::TRIM_AFTER_OPS + 1;
    db.write(vec![Op::AppendEvents {
        session_id: id.clone(),
        events: (1..=n).map(|s| (s, "{}".to_owned())).collect(),
        keep: 64,
    }])
    .await
    .unwrap();
    // Nothing more is written: once idle, the writer trims (bounded wait).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while crate::memory::trims() == before {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never trimmed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // And it still writes afterwards.
    db.write(vec![event(&id, n + 1)]).await.unwrap();
    assert_eq!(db.get_session(&id).await.unwrap().unwrap().last_seq, n + 1);
    db.close();
}

/// Defect 1 of issue 10, at the database: a full-row write made from a record read
/// before a kill (a loading prompt's) never puts a killed or expired session back
/// to active; its other fields are still written.
#[tokio::test]
async fn a_stale_row_write_never_revives_a_killed_or_expired_session() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = Db::open(dir.path(), dir.path()).unwrap();
    for (name, ended) in [
        ("ses_k", SessionStatus::Killed),
        ("ses_e", SessionStatus::Expired),
    ] {
        let stale = record(name);
        let id = stale.id.clone();
        db.write(vec![Op::InsertSession(stale.clone())])
            .await
            .unwrap();
        let mut end = stale.clone();
        end.status = ended;
        db.write(vec![Op::UpdateSession(end)]).await.unwrap();
        let mut revive = stale;
        revive.status = SessionStatus::Active;
        revive.title = Some("written late".into());
        db.write(vec![Op::UpdateSession(revive)]).await.unwrap();
        let now = db.get_session(&id).await.unwrap().unwrap();
        assert_eq!(now.status, ended, "{name} came back");
        assert_eq!(now.title.as_deref(), Some("written late"));
    }
    db.close();
}

/// The process registry writes to the same database from its own connection. A write
/// of the daemon's writer that reads before it changes anything (a delete looks up
/// the session's uploads first) must not fail because the registry committed in
/// between: in a deferred transaction that is SQLITE_BUSY_SNAPSHOT at once, with no
/// busy wait; the writer's transactions take the write lock first instead.
#[tokio::test]
async fn writes_do_not_fail_while_another_connection_commits() {
    use std::sync::atomic::{AtomicBool, Ordering};
    const N: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = Db::open(dir.path(), dir.path()).unwrap();
    for i in 0..N {
        db.write(vec![Op::InsertSession(record(&format!("ses_{i}")))])
            .await
            .unwrap();
    }
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let other = {
        let (stop, path) = (stop.clone(), db.path().to_path_buf());
        std::thread::spawn(move || {
            let c = rusqlite::Connection::open(path).unwrap();
            c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            c.execute_batch("PRAGMA synchronous = OFF").unwrap();
            c.execute_batch(crate::agent::process::REGISTRY_TABLE)
                .unwrap();
            let mut commits = 0u64;
            while !stop.load(Ordering::Relaxed) && commits < 10_000_000 {
                c.execute(
                    "INSERT OR REPLACE INTO agent_processes (pgid, tag, started_at) VALUES (1, 't', 'x')",
                    [],
                )
                .unwrap();
                commits += 1;
            }
            commits
        })
    };
    let mut failed = Vec::new();
    for i in 0..N {
        let id = SessionId(format!("ses_{i}"));
        if let Err(e) = db.write(vec![Op::DeleteSession(id)]).await {
            failed.push(e.to_string());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let commits = other.join().unwrap();
    assert!(
        failed.is_empty(),
        "{} of {N} deletes failed while the other connection made {commits} commits: {:?}",
        failed.len(),
        failed.first()
    );
    db.close();
}
