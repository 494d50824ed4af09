//! Retention through the real binary: by count and by age, it prunes only stored
//! sessions that are not live, and with them their unshared upload files.

use sessiond_protocol::codes;
use sessiond_protocol::params::NewSessionParams;
use sessiond_tests::{admin_count, wait_for, Daemon};

#[tokio::test]
async fn retention_by_count_prunes_the_oldest_unloaded_sessions_never_a_live_one() {
    let d = Daemon::start_with("[retention]\nmax_sessions = 3\n").await;
    let c = d.client().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let s = c
            .new_session(NewSessionParams {
                title: Some(format!("s{i}")),
                ..Default::default()
            })
            .await
            .unwrap()
            .session;
        ids.push(s.session_id);
    }
    // Unload three, oldest first: two of them are over the limit and go.
    for id in &ids[1..4] {
        c.close_session(id).await.unwrap();
    }
    wait_for("retention to prune down to three", || async {
        (admin_count(&c).await == 3).then_some(())
    })
    .await;
    for (i, id) in ids.iter().enumerate() {
        let r = c.get_session(id).await;
        match i {
            1 | 2 => assert_eq!(
                r.unwrap_err().code(),
                Some(codes::SESSION_NOT_FOUND),
                "s{i}"
            ),
            3 => assert!(!r.unwrap().live, "s3 kept: within the limit"),
            _ => assert!(r.unwrap().live, "live s{i} kept"),
        }
    }
}

#[tokio::test]
async fn retention_by_age_prunes_old_unloaded_sessions_and_their_unshared_uploads() {
    let d = Daemon::start_with("[retention]\nmax_age_days = 30\n").await;
    let c = d.client().await;
    let new = |t: &str| NewSessionParams {
        title: Some(t.into()),
        ..Default::default()
    };
    let old = c.new_session(new("old")).await.unwrap().session.session_id;
    let recent = c
        .new_session(new("recent"))
        .await
        .unwrap()
        .session
        .session_id;
    let killed = c
        .new_session(new("killed"))
        .await
        .unwrap()
        .session
        .session_id;
    let shared = c
        .upload_bytes(&old, "s", None, b"shared bytes")
        .await
        .unwrap();
    c.upload_bytes(&recent, "s", None, b"shared bytes")
        .await
        .unwrap();
    let own = c.upload_bytes(&old, "o", None, b"only old").await.unwrap();
    c.admin_kill(&killed).await.unwrap();
    drop(c);
    let mut d = d;
    assert!(d.sigterm().success());
    {
        let db = rusqlite::Connection::open(d.dirs.db_path()).unwrap();
        for id in [&old, &killed] {
            db.execute(
                "UPDATE sessions SET updated_at = '2020-01-01T00:00:00.000000Z' WHERE id = ?1",
                [id.as_str()],
            )
            .unwrap();
        }
    }
    let dirs = std::mem::take(&mut d.dirs);
    drop(d);
    let d = Daemon::start_in(dirs).await.unwrap();
    let c = d.client().await;
    wait_for("the start-up pass", || async {
        (admin_count(&c).await == 1).then_some(())
    })
    .await;
    for id in [&old, &killed] {
        let err = c.get_session(id).await.unwrap_err();
        assert_eq!(err.code(), Some(codes::SESSION_NOT_FOUND));
    }
    assert_eq!(
        c.get_session(&recent).await.unwrap().title.as_deref(),
        Some("recent")
    );
    assert_eq!(c.uploads(&recent).await.unwrap().uploads.len(), 1);
    assert!(
        std::path::Path::new(&shared.workspace_path).exists(),
        "a file another session references stays"
    );
    wait_for("the unreferenced upload to be removed", || {
        let gone = !std::path::Path::new(&own.workspace_path).exists();
        async move { gone.then_some(()) }
    })
    .await;
}
