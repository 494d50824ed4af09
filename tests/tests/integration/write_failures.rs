//! A durable write of the real daemon that fails leaves the session as if the call
//! had never been made (issue 10, defect 2): the take-over, rename, close and
//! prompt refused while writes fail change neither owner, title nor queue, and once
//! writes succeed again the same session runs a turn and closes at once. Writes are
//! made to fail through a debug-build hook: they fail while the file named by
//! `SESSIOND_TEST_FAIL_WRITES_WHILE` exists (the disk-full test shows the same
//! through a real full filesystem, where which write fails is not up to the test).

use sessiond_protocol::error::codes;
use sessiond_protocol::SessionStatus;
use sessiond_tests::{new_session, Daemon, Dirs, WAIT};
use std::future::Future;

/// Waits for the answer of a call that must be refused, with a bound.
async fn refused<T: std::fmt::Debug>(
    what: &str,
    call: impl Future<Output = sessiond_client::Result<T>>,
) {
    let r = tokio::time::timeout(WAIT, call)
        .await
        .unwrap_or_else(|_| panic!("{what}: not answered while writes fail"));
    let e = r.expect_err(&format!("{what}: succeeded while writes fail"));
    assert_eq!(e.code(), Some(codes::INTERNAL_ERROR), "{what}: {e}");
}

#[tokio::test]
async fn a_call_whose_write_fails_changes_nothing_and_the_session_goes_on() {
    let dirs = Dirs::new();
    let marker = dirs.path().join("fail-writes");
    let d = Daemon::start_in_with(dirs, |cmd| {
        cmd.env("SESSIOND_TEST_FAIL_WRITES_WHILE", &marker);
    })
    .await
    .expect("daemon starts");
    let a = d.tui().await;
    let b = d.tui().await;
    let id = new_session(&a, "echo").await;
    a.prompt_wait(&id, "before").await.expect("turn");
    let before = a.get_session(&id).await.expect("get");

    std::fs::write(&marker, b"").unwrap();
    refused("take-over", b.load_session(&id, true, true)).await;
    refused("rename", a.rename(&id, "renamed while failing")).await;
    refused("prompt", a.prompt_text(&id, "while failing")).await;
    refused("close", a.close_session(&id)).await;
    std::fs::remove_file(&marker).unwrap();

    // Nothing the refused calls asked for happened.
    let now = a.get_session(&id).await.expect("get");
    assert_eq!(now.owner_tui_id, before.owner_tui_id, "owner moved");
    assert_eq!(now.title, before.title, "title changed");
    assert_eq!(now.status, SessionStatus::Active, "{:?}", now.status);
    assert!(now.live, "the session was unloaded");
    assert_eq!(now.queued_turns, 0, "a refused prompt stayed queued");
    assert!(
        now.turn.is_none(),
        "a refused prompt is running: {:?}",
        now.turn
    );
    assert_eq!(
        b.prompt_text(&id, "mine?").await.unwrap_err().code(),
        Some(codes::SESSION_NOT_OWNED),
        "the refused take-over gave the session away"
    );
    // And the session works: a turn runs, and a close finishes at once.
    let v = tokio::time::timeout(WAIT, a.prompt_wait(&id, "after"))
        .await
        .expect("a turn after the failures is answered")
        .expect("turn");
    assert_eq!(v.content, "after");
    assert_eq!(a.messages(&id, None, None).await.unwrap().total, 4);
    tokio::time::timeout(WAIT, a.close_session(&id))
        .await
        .expect("the close is answered")
        .expect("closed");
}
