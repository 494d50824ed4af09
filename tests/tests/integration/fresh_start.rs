//! A start on a fresh data directory does no more than the first answer needs: the
//! database is created in one step with its schema (no temporary file left), and the
//! TUI secret is created by the first `initialize`, private, and kept across
//! restarts (also after `kill -9`), so a TUI's signature still verifies.

use sessiond_tests::{new_session, Daemon};
use std::fs;
use std::os::unix::fs::MetadataExt;

fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn the_tui_secret_is_created_private_at_the_first_initialize_and_survives_restarts() {
    let d = Daemon::start().await;
    let secret = d.dirs.data_dir().join("tui.secret");
    assert!(
        !secret.exists(),
        "the start does not create the secret: {:?}",
        names_in(&d.dirs.data_dir())
    );
    let c = d.client().await;
    let first = c.initialize("t", None).await.expect("initialize");
    assert_eq!(fs::metadata(&secret).unwrap().mode() & 0o777, 0o600);
    assert_eq!(fs::read(&secret).unwrap().len(), 32);
    drop(c);
    let identity = sessiond_client::Identity {
        tui_id: first.tui_id.clone(),
        tui_sig: first.tui_sig.clone(),
    };

    // A graceful restart, then a kill -9 and a start: the same TUI each time.
    let d = d.restart().await;
    let again = d
        .client()
        .await
        .initialize("t", Some(identity.clone()))
        .await
        .expect("the signature verifies after a restart");
    assert_eq!(again.tui_id, first.tui_id);
    assert_eq!(again.daemon_id, first.daemon_id);
    let d = d.crash_and_restart().await;
    let after_crash = d
        .client()
        .await
        .initialize("t", Some(identity))
        .await
        .expect("the signature verifies after kill -9");
    assert_eq!(after_crash.tui_id, first.tui_id);
    assert_eq!(after_crash.daemon_id, first.daemon_id);
}

#[tokio::test]
async fn a_fresh_data_directory_gets_its_database_in_one_step() {
    let d = Daemon::start().await;
    let data = d.dirs.data_dir();
    // Only the database (and SQLite's own files) and the uploads directory: no
    // temporary database is left behind.
    let stray: Vec<String> = names_in(&data)
        .into_iter()
        .filter(|n| !n.starts_with("sessiond.db") && n != "uploads")
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    assert_eq!(
        fs::metadata(data.join("sessiond.db")).unwrap().mode() & 0o777,
        0o600
    );
    // The schema is there: a session is stored and listed after a kill -9.
    let c = d.tui().await;
    let id = new_session(&c, "echo").await;
    drop(c);
    let d = d.crash_and_restart().await;
    let c = d.client().await;
    let got = c.get_session(&id).await.expect("stored session");
    assert_eq!(got.session_id, id);
}
