//! `session/rename` (owner only, title rules, `title_changed`, durable) and
//! `daemon/agents` (every alias with its kind and model, the default marked).

use sessiond_protocol::params::NewSessionParams;
use sessiond_protocol::{codes, Event};
use sessiond_tests::{new_session, Daemon};
use std::time::Duration;

#[tokio::test]
async fn the_owner_renames_and_everyone_sees_it() {
    let d = Daemon::start().await;
    let a = d.tui().await;
    let b = d.tui().await;
    let id = new_session(&a, "echo").await;
    let mut events = b.subscribe(&id, None).await.unwrap();

    let long = format!("  {}\nsecond line", "x".repeat(80));
    let info = a.rename(&id, &long).await.unwrap();
    assert_eq!(info.title.as_deref(), Some("x".repeat(60).as_str()));

    let title = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(ev) = events.next_event().await {
            if let Event::TitleChanged { title } = ev.unwrap().event {
                return title;
            }
        }
        panic!("stream ended before title_changed");
    })
    .await
    .expect("title_changed within 30 s");
    assert_eq!(title, "x".repeat(60));

    // Another TUI may read but not rename; a blank title changes nothing.
    let err = b.rename(&id, "mine now").await.unwrap_err();
    assert_eq!(err.code(), Some(codes::SESSION_NOT_OWNED));
    let err = a.rename(&id, "   ").await.unwrap_err();
    assert_eq!(err.code(), Some(codes::INVALID_PARAMS));
    let err = a
        .rename(&sessiond_protocol::SessionId("ses_nope".into()), "t")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::SESSION_NOT_FOUND));
    assert_eq!(
        b.get_session(&id).await.unwrap().title.as_deref(),
        Some("x".repeat(60).as_str())
    );
}

#[tokio::test]
async fn a_rename_survives_unload_and_restart() {
    let d = Daemon::start().await;
    let a = d.tui().await;
    let id = new_session(&a, "echo").await;
    a.close_session(&id).await.unwrap();
    // Renaming a session that is not live loads it, like configure.
    a.rename(&id, "kept title").await.unwrap();
    let d = d.crash_and_restart().await;
    let anon = d.client().await;
    let info = anon.get_session(&id).await.unwrap();
    assert_eq!(info.title.as_deref(), Some("kept title"));
}

#[tokio::test]
async fn a_killed_session_cannot_be_renamed() {
    let d = Daemon::start().await;
    let a = d.client().await;
    let id = a
        .new_session(NewSessionParams::default())
        .await
        .unwrap()
        .session
        .session_id;
    a.admin_kill(&id).await.unwrap();
    let err = a.rename(&id, "after death").await.unwrap_err();
    assert_eq!(err.code(), Some(codes::SESSION_TERMINATED));
}

#[tokio::test]
async fn agents_lists_every_alias_without_secrets() {
    let d = Daemon::start_with(
        r#"
default_agent = "slow"

[agents.slow]
kind = "echo"
chunk_delay_ms = 5

[agents.remote]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "tiny-model"
api_key_env = "SOME_SECRET_KEY"
"#,
    )
    .await;
    let c = d.client().await;
    let agents = c.agents().await.unwrap().agents;
    let names: Vec<&str> = agents.iter().map(|a| a.alias.as_str()).collect();
    assert_eq!(names, ["echo", "remote", "slow"]);
    let remote = agents.iter().find(|a| a.alias == "remote").unwrap();
    assert_eq!(remote.kind, "openai");
    assert_eq!(remote.model.as_deref(), Some("tiny-model"));
    assert!(!remote.default);
    assert!(agents.iter().find(|a| a.alias == "slow").unwrap().default);
    let raw = d
        .http(r#"{"jsonrpc":"2.0","id":1,"method":"daemon/agents"}"#)
        .await;
    let text = raw.to_string();
    assert!(
        !text.contains("SOME_SECRET_KEY") && !text.contains("127.0.0.1:9"),
        "{text}"
    );
}
