//! A database written by the first schema version (a fixture made by hand, as that
//! version wrote it) is migrated at start-up, and everything in it reads back:
//! sessions, their status, messages, turns and verdicts.

use sessiond_protocol::params::ListParams;
use sessiond_protocol::{codes, Event, Mode, SessionId, SessionStatus, StopReason};
use sessiond_tests::{is_turn_complete, replay_until, Daemon, Dirs};
use std::collections::BTreeSet;
use std::time::Duration;

#[tokio::test]
async fn a_version_1_database_is_migrated_and_fully_readable() {
    const ONE: &str = "ses_aa25052090c6aad3744f791b41aa2928";
    const KILLED: &str = "ses_7edc55d770f3d53e725f2411b892f63c";
    const IDLE: &str = "ses_e1e00030e5fd4c1ef314cd87954c7fb6";
    const HASH: &str = "391ddd428125157f12e40aef64fb2f4952fac82326743e5834e5b32509c06b93";
    let dirs = Dirs::new();
    let uploads = dirs.data_dir().join("uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    for dir in [dirs.data_dir(), uploads.clone()] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    std::fs::write(uploads.join(HASH), b"fixture upload\n").unwrap();
    {
        let db = rusqlite::Connection::open(dirs.db_path()).unwrap();
        db.execute_batch(include_str!("../../fixtures/schema_v1.sql"))
            .unwrap();
        let v: i64 = db
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 1);
    }
    let d = Daemon::start_in(dirs)
        .await
        .expect("starts on a v1 database");
    let c = d.tui().await;
    let all = c.admin_sessions(ListParams::default()).await.unwrap();
    let ids: BTreeSet<&str> = all.sessions.iter().map(|s| s.session_id.as_str()).collect();
    assert_eq!(ids, BTreeSet::from([ONE, KILLED, IDLE]));

    let one = SessionId(ONE.into());
    let info = c.get_session(&one).await.unwrap();
    assert_eq!(info.title.as_deref(), Some("fixture one"));
    assert_eq!(info.mode, Mode::Code);
    assert_eq!(info.cwd.as_deref(), Some("/tmp/project"));
    assert_eq!(info.status, SessionStatus::Active);
    assert_eq!(info.overrides.model.as_deref(), Some("m-1"));
    assert_eq!(info.overrides.temperature, Some(0.25));
    assert_eq!((info.message_count, info.round_count), (4, 2));
    assert_eq!((info.usage.input_tokens, info.usage.output_tokens), (6, 6));
    let m = c.messages(&one, None, None).await.unwrap().messages;
    let texts: Vec<&str> = m.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(
        texts,
        [
            "hello from version one",
            "hello from version one",
            "second prompt",
            "second prompt"
        ]
    );
    let up = c.uploads(&one).await.unwrap().uploads;
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].name, "notes.txt");
    assert_eq!(
        std::fs::read(&up[0].workspace_path).unwrap(),
        b"fixture upload\n"
    );
    let killed = SessionId(KILLED.into());
    assert_eq!(
        c.get_session(&killed).await.unwrap().status,
        SessionStatus::Killed
    );
    let err = c.prompt_text(&killed, "no").await.unwrap_err();
    assert_eq!(err.code(), Some(codes::SESSION_TERMINATED));

    // The stored history replays (up to the `session_closed` at seq 11 that ended the
    // last residency), and new events continue after the stored last seq.
    let replay = replay_until(&c, &one, "the stored history", |e| e.seq == 10).await;
    let seqs: Vec<u64> = replay.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    c.load_session(&one, true, false).await.unwrap();
    let v = c.prompt_wait(&one, "after the migration").await.unwrap();
    assert_eq!(v.stop_reason, StopReason::EndTurn);
    let mut stream = c.subscribe(&one, Some(11)).await.unwrap();
    let mut after = Vec::new();
    loop {
        let e = tokio::time::timeout(Duration::from_secs(20), stream.next_event())
            .await
            .expect("events after the migration")
            .unwrap()
            .unwrap();
        let done = is_turn_complete(&e, &v.turn_id);
        after.push(e);
        if done {
            break;
        }
    }
    let new: Vec<u64> = after.iter().map(|e| e.seq).collect();
    assert_eq!(new, (12..12 + new.len() as u64).collect::<Vec<_>>());
    let generation = after
        .iter()
        .find_map(|e| match e.event {
            Event::TurnStarted { generation, .. } => Some(generation),
            _ => None,
        })
        .unwrap();
    drop(c);

    let mut d = d;
    assert!(d.sigterm().success());
    let db = rusqlite::Connection::open(d.dirs.db_path()).unwrap();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert!(version >= 2, "migrated to {version}");
    let stored: i64 = db
        .query_row(
            "SELECT generation FROM turns WHERE turn_id = ?1",
            [v.turn_id.as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored as u64, generation, "the real generation is stored");
    let old_turns: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM turns WHERE session_id = ?1",
            [ONE],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(old_turns, 3);
}
