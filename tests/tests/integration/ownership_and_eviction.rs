//! Ownership across TUIs and same-mode sibling eviction.

use sessiond_client::Client;
use sessiond_protocol::params::{ListParams, NewSessionParams, OverridesPatch};
use sessiond_protocol::{codes, CloseReason, Event, Mode, Patch, SessionId};
use sessiond_tests::{new_session, Daemon};

async fn new(c: &Client, mode: Mode, keep: bool) -> (SessionId, Vec<SessionId>) {
    let r = c
        .new_session(NewSessionParams {
            mode: Some(mode),
            keep_siblings: Some(keep),
            ..Default::default()
        })
        .await
        .unwrap();
    (
        r.session.session_id,
        r.evicted.into_iter().map(|e| e.session_id).collect(),
    )
}

#[tokio::test]
async fn only_the_owner_mutates_everyone_reads() {
    let d = Daemon::start().await;
    let a = d.tui().await;
    let b = d.tui().await;
    let (id, _) = new(&a, Mode::Chat, false).await;
    a.prompt_wait(&id, "hi").await.unwrap();
    let not_owned = |r: Result<(), sessiond_client::Error>| {
        assert_eq!(r.unwrap_err().code(), Some(codes::SESSION_NOT_OWNED));
    };
    not_owned(b.prompt_text(&id, "x").await.map(|_| ()));
    not_owned(b.cancel(&id).await.map(|_| ()));
    not_owned(
        b.configure(
            &id,
            OverridesPatch {
                temperature: Patch::Set(1.0),
                ..Default::default()
            },
        )
        .await
        .map(|_| ()),
    );
    not_owned(b.upload_bytes(&id, "f.txt", None, b"x").await.map(|_| ()));
    not_owned(
        b.respond(&id, None, serde_json::json!("yes"))
            .await
            .map(|_| ()),
    );
    not_owned(b.close_session(&id).await.map(|_| ()));
    not_owned(b.delete_session(&id).await.map(|_| ()));
    not_owned(b.load_session(&id, false, true).await.map(|_| ()));
    // Anonymous clients cannot mutate an owned session either.
    let anon = d.client().await;
    not_owned(anon.prompt_text(&id, "x").await.map(|_| ()));
    // Reads are open to all.
    assert_eq!(b.get_session(&id).await.unwrap().message_count, 2);
    assert_eq!(b.messages(&id, None, None).await.unwrap().total, 2);
    let _events = b.subscribe(&id, Some(0)).await.unwrap();
    // Nothing changed.
    let info = a.get_session(&id).await.unwrap();
    assert_eq!(info.owner_tui_id, a.identity().map(|i| i.tui_id));
    assert_eq!(info.overrides.temperature, None);
    assert!(info.live);
}

#[tokio::test]
async fn unowned_sessions_are_usable_by_anyone_and_claimable() {
    let d = Daemon::start().await;
    let anon = d.client().await;
    let (id, _) = new(&anon, Mode::Chat, false).await;
    let a = d.tui().await;
    assert_eq!(
        a.prompt_wait(&id, "anyone").await.unwrap().content,
        "anyone"
    );
    let mut events = anon.subscribe(&id, None).await.unwrap();
    let loaded = a.load_session(&id, false, false).await.unwrap();
    assert_eq!(
        loaded.session.owner_tui_id,
        a.identity().map(|i| i.tui_id.clone())
    );
    let ev = events.next_event().await.unwrap().unwrap();
    assert!(matches!(
        ev.event,
        Event::OwnerChanged {
            previous_owner_tui_id: None,
            ..
        }
    ));
    // Now it is A's.
    assert_eq!(
        anon.prompt_text(&id, "x").await.unwrap_err().code(),
        Some(codes::SESSION_NOT_OWNED)
    );
}

#[tokio::test]
async fn take_over_moves_ownership() {
    let d = Daemon::start().await;
    let a = d.tui().await;
    let b = d.tui().await;
    let (id, _) = new(&a, Mode::Chat, false).await;
    let mut events = a.subscribe(&id, None).await.unwrap();
    let r = b.load_session(&id, true, true).await.unwrap();
    let b_id = b.identity().unwrap().tui_id;
    assert_eq!(r.session.owner_tui_id.as_ref(), Some(&b_id));
    let ev = events.next_event().await.unwrap().unwrap();
    match ev.event {
        Event::OwnerChanged {
            owner_tui_id,
            previous_owner_tui_id,
        } => {
            assert_eq!(owner_tui_id, Some(b_id));
            assert_eq!(previous_owner_tui_id, a.identity().map(|i| i.tui_id));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        a.prompt_text(&id, "mine?").await.unwrap_err().code(),
        Some(codes::SESSION_NOT_OWNED)
    );
    assert_eq!(b.prompt_wait(&id, "mine").await.unwrap().content, "mine");
}

#[tokio::test]
async fn same_mode_siblings_of_the_same_tui_are_evicted_only() {
    let d = Daemon::start().await;
    let a = d.tui().await;
    let b = d.tui().await;
    let (chat1, ev) = new(&a, Mode::Chat, false).await;
    assert!(ev.is_empty());
    let (code1, ev) = new(&a, Mode::Code, false).await;
    assert!(ev.is_empty(), "code never evicts chat");
    let (b_chat, _) = new(&b, Mode::Chat, false).await;
    a.prompt_wait(&chat1, "remember me").await.unwrap();
    let mut watch = b.subscribe(&chat1, None).await.unwrap();

    let r = a
        .new_session(NewSessionParams {
            mode: Some(Mode::Chat),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(r.evicted.len(), 1);
    assert_eq!(r.evicted[0].session_id, chat1);
    assert_eq!(r.evicted[0].agent, "echo");
    let chat2 = r.session.session_id;
    let closed = watch.next_event().await.unwrap().unwrap();
    assert!(matches!(
        closed.event,
        Event::SessionClosed {
            reason: CloseReason::Evicted
        }
    ));
    assert!(!a.get_session(&chat1).await.unwrap().live);
    assert!(
        a.get_session(&code1).await.unwrap().live,
        "other mode untouched"
    );
    assert!(
        b.get_session(&b_chat).await.unwrap().live,
        "other TUI untouched"
    );

    // keep_siblings keeps chat2 live.
    let (chat3, ev) = new(&a, Mode::Chat, true).await;
    assert!(ev.is_empty());
    assert!(a.get_session(&chat2).await.unwrap().live);

    // Loading chat1 back evicts chat2 and chat3, and chat1 has everything it had.
    let r = a.load_session(&chat1, false, false).await.unwrap();
    let mut evicted: Vec<_> = r.evicted.iter().map(|e| e.session_id.clone()).collect();
    evicted.sort();
    let mut expected = vec![chat2, chat3.clone()];
    expected.sort();
    assert_eq!(evicted, expected);
    assert_eq!(r.session.message_count, 2);
    assert_eq!(
        a.messages(&chat1, None, None).await.unwrap().messages[1].content,
        "remember me"
    );

    // Prompting an evicted session loads it back.
    let v = a.prompt_wait(&chat3, "wake up").await.unwrap();
    assert_eq!(v.content, "wake up");
    assert!(a.get_session(&chat3).await.unwrap().live);
}

#[tokio::test]
async fn a_session_with_a_running_turn_is_never_evicted() {
    let d = Daemon::start_with(
        "[agents.slow]\nkind = \"echo\"\nchunk_chars = 1\nchunk_delay_ms = 20\n",
    )
    .await;
    let a = d.tui().await;
    let busy = new_session(&a, "slow").await;
    a.prompt_text(&busy, "x".repeat(500)).await.unwrap();
    let (_, evicted) = new(&a, Mode::Chat, false).await;
    assert!(evicted.is_empty(), "running session evicted: {evicted:?}");
    assert!(a.get_session(&busy).await.unwrap().live);
    a.cancel(&busy).await.unwrap();
}

#[tokio::test]
async fn list_filters_and_paging() {
    let d = Daemon::start().await;
    let a = d.tui().await;
    let b = d.tui().await;
    let mut a_ids = Vec::new();
    for i in 0..5 {
        let mode = if i % 2 == 0 { Mode::Chat } else { Mode::Code };
        a_ids.push(new(&a, mode, true).await.0);
    }
    new(&b, Mode::Chat, true).await;
    let anon = d.client().await;
    new(&anon, Mode::Chat, true).await;
    a.close_session(&a_ids[0]).await.unwrap();

    let mine = a.list_sessions(ListParams::default()).await.unwrap();
    assert_eq!(mine.sessions.len(), 5);
    let any = a
        .list_sessions(ListParams {
            owner: Some("any".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(any.sessions.len(), 7);
    let none = a
        .list_sessions(ListParams {
            owner: Some("none".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(none.sessions.len(), 1);
    let b_id = b.identity().unwrap().tui_id.0;
    let of_b = a
        .list_sessions(ListParams {
            owner: Some(b_id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(of_b.sessions.len(), 1);
    let code = a
        .list_sessions(ListParams {
            mode: Some(Mode::Code),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(code.sessions.len(), 2);
    let not_live = a
        .list_sessions(ListParams {
            live: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(not_live.sessions.len(), 1);
    assert_eq!(not_live.sessions[0].session_id, a_ids[0]);
    let created = a
        .list_sessions(ListParams {
            status: Some(sessiond_protocol::SessionStatus::Created),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(created.sessions.len(), 5);

    // Paging by two walks every session once, newest first.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = a
            .list_sessions(ListParams {
                limit: Some(2),
                cursor: cursor.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(page.sessions.len() <= 2);
        seen.extend(
            page.sessions
                .into_iter()
                .map(|s| (s.updated_at, s.session_id)),
        );
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    let mut sorted = seen.clone();
    sorted.sort_by(|x, y| y.cmp(x));
    assert_eq!(seen, sorted, "newest updated_at first");
    let err = a
        .list_sessions(ListParams {
            cursor: Some("garbage!".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::INVALID_PARAMS));
}
