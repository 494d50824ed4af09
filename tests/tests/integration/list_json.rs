//! `session/list` serves each live session's kept JSON text (daemon/src/store/listed.rs)
//! through its own method registration (daemon/src/rpc/list_json.rs): a listed row
//! must show every change as soon as `session/get` does, and the method must decode
//! its params and answer errors exactly as the macro-made `admin/sessions` does.

use serde_json::Value;
use sessiond_protocol::params::OverridesPatch;
use sessiond_protocol::{Patch, SessionId};
use sessiond_tests::{new_session, wait_for, Daemon};

/// The listed row of `id` and its `session/get`, both as the daemon wrote them.
async fn listed_and_got(d: &Daemon, id: &SessionId) -> (Value, Value) {
    let list = d
        .http(r#"{"jsonrpc":"2.0","id":1,"method":"session/list","params":{"owner":"any","limit":1000}}"#)
        .await;
    let row = list["result"]["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["session_id"] == id.0.as_str())
        .cloned()
        .expect("the session is listed");
    let got = d
        .http(&format!(
            r#"{{"jsonrpc":"2.0","id":2,"method":"session/get","params":{{"session_id":"{}"}}}}"#,
            id.0
        ))
        .await;
    (row, got["result"].clone())
}

/// The listed row equals `session/get` (the typed serialisation of the current state).
async fn assert_fresh(d: &Daemon, id: &SessionId, after: &str) -> Value {
    let (row, got) = listed_and_got(d, id).await;
    assert_eq!(
        row, got,
        "the listed row after {after} is the session as it is now"
    );
    row
}

#[tokio::test]
async fn a_listed_session_shows_every_change_at_once() {
    let d = Daemon::start().await;
    let tui = d.tui().await;
    let id = new_session(&tui, "echo").await;
    let other = new_session(&tui, "echo").await;
    // Listed once: the texts are kept from here on.
    let first = assert_fresh(&d, &id, "creation").await;
    assert!(first["title"].is_null());
    assert_fresh(&d, &other, "creation").await;

    tui.rename(&id, "renamed").await.expect("rename");
    let row = assert_fresh(&d, &id, "a rename").await;
    assert_eq!(row["title"], "renamed");

    tui.configure(
        &id,
        OverridesPatch {
            model: Patch::Set("small".into()),
            ..Default::default()
        },
    )
    .await
    .expect("configure");
    let row = assert_fresh(&d, &id, "a configure").await;
    assert_eq!(row["overrides"]["model"], "small");

    tui.prompt_wait(&id, "hello").await.expect("prompt");
    let row = assert_fresh(&d, &id, "a turn").await;
    assert_eq!(row["status"], "active");
    assert_eq!(row["message_count"], 2);
    assert_ne!(row["updated_at"], first["updated_at"]);

    let watcher = d.client().await;
    let events = watcher.subscribe(&id, None).await.expect("subscribe");
    let row = assert_fresh(&d, &id, "a subscription").await;
    assert_eq!(row["watchers"], 1);

    drop(events);
    drop(watcher);
    wait_for("the subscription to end", || async {
        let (_, got) = listed_and_got(&d, &id).await;
        (got["watchers"] == 0).then_some(())
    })
    .await;
    let row = assert_fresh(&d, &id, "the subscriber left").await;
    assert_eq!(row["watchers"], 0);

    // The untouched session kept its first text, still right.
    assert_fresh(&d, &other, "changes to another session").await;
}

#[tokio::test]
async fn session_list_decodes_params_and_answers_errors_as_admin_sessions_does() {
    let d = Daemon::start().await;
    let tui = d.tui().await;
    for _ in 0..3 {
        new_session(&tui, "echo").await;
    }
    tui.rename(&new_session(&tui, "echo").await, "Xylophone")
        .await
        .expect("rename");
    // An anonymous connection on the Unix socket: `session/list` lists every owner by
    // default, as `admin/sessions` does, so both answer the same to the same params.
    let cases = [
        "",
        r#","params":{}"#,
        r#","params":{"limit":2}"#,
        r#","params":{"owner":"any","limit":1}"#,
        r#","params":{"title_contains":"xylo"}"#,
        r#","params":{"titleContains":"XYLO"}"#,
        r#","params":{"mode":"chat","live":true,"status":"created"}"#,
        r#","params":{"unknown_field":1,"limit":3}"#,
        r#","params":["any",null,null,null,2]"#,
        r#","params":["any","chat",true,"active",5,null,null,"xylo"]"#,
        r#","params":[]"#,
        r#","params":{"limit":"many"}"#,
        r#","params":{"limit":0}"#,
        r#","params":{"mode":"bogus"}"#,
        r#","params":{"owner":"me"}"#,
        r#","params":{"owner":" "}"#,
        r#","params":{"cursor":"not a cursor"}"#,
        r#","params":{"limit":1,"limit":2}"#,
        r#","params":[1]"#,
        r#","params":"text""#,
    ];
    for params in cases {
        let body =
            |method: &str| format!(r#"{{"jsonrpc":"2.0","id":"q","method":"{method}"{params}}}"#);
        let (s1, listed) = d.http_raw(&body("session/list")).await.expect("post");
        let (s2, admin) = d.http_raw(&body("admin/sessions")).await.expect("post");
        assert_eq!((s1, &listed), (s2, &admin), "params {params}");
    }
    // Paging with the cursor a page hands out.
    let page = d
        .http(r#"{"jsonrpc":"2.0","id":1,"method":"session/list","params":{"limit":2}}"#)
        .await;
    let cursor = page["result"]["next_cursor"].as_str().expect("a next page");
    let body = |method: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{{"limit":2,"cursor":"{cursor}"}}}}"#
        )
    };
    let listed = d.http_raw(&body("session/list")).await.expect("post");
    let admin = d.http_raw(&body("admin/sessions")).await.expect("post");
    assert_eq!(listed, admin);
    let next: Value = serde_json::from_str(&listed.1).expect("json");
    assert_eq!(next["result"]["sessions"].as_array().map(Vec::len), Some(2));
}
