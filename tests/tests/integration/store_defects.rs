//! Regression tests of store defects found by attacking the daemon from outside:
//! a kill undone by a racing load, racing loads that both win, a refused prompt that
//! loads the session, the queue cap bypassed by `interrupt`, seqs that jump after
//! close and load, a TTL that overflows, a reply lost at a crash, prompts accepted
//! during a shutdown's grace, and dropped queued turns missing from the cancel counts.

use sessiond_protocol::params::NewSessionParams;
use sessiond_protocol::{codes, CancelCause, Event, SessionStatus, StopReason};
use sessiond_tests::{new_session, prompt_params, wait_for, Daemon, WAIT};

const AGENTS: &str = "max_queued_turns = 2\n\
[agents.slow]\nkind = \"echo\"\nchunk_chars = 1\nchunk_delay_ms = 20\n";

#[tokio::test]
async fn a_kill_racing_a_loading_prompt_is_never_undone() {
    let d = Daemon::start_with(AGENTS).await;
    let c = d.client().await;
    let admin = d.client().await;
    for i in 0..40 {
        let id = new_session(&c, "echo").await;
        c.close_session(&id).await.unwrap();
        let (p, k) = tokio::join!(
            c.prompt_text(&id, format!("hello {i}")),
            admin.admin_kill(&id)
        );
        k.unwrap();
        if let Err(e) = &p {
            assert_eq!(e.code(), Some(codes::SESSION_TERMINATED), "{e}");
        }
        let info = c.get_session(&id).await.unwrap();
        assert_eq!(
            info.status,
            SessionStatus::Killed,
            "try {i}: the kill was undone"
        );
        assert!(!info.live, "try {i}: a killed session is live");
        let again = c.prompt_text(&id, "after the kill").await.unwrap_err();
        assert_eq!(again.code(), Some(codes::SESSION_TERMINATED));
    }
    let mut d = d.restart().await;
    let c = d.client().await;
    let list = c
        .list_sessions(sessiond_protocol::params::ListParams {
            status: Some(SessionStatus::Active),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        list.sessions.is_empty(),
        "a killed session is active after a restart"
    );
    d.sigterm();
}

#[tokio::test]
async fn of_two_tuis_loading_an_unowned_session_exactly_one_wins() {
    let d = Daemon::start().await;
    let anon = d.client().await;
    let a = d.tui().await;
    let b = d.tui().await;
    for _ in 0..20 {
        let id = new_session(&anon, "echo").await;
        anon.close_session(&id).await.unwrap();
        let (ra, rb) = tokio::join!(
            a.load_session(&id, false, true),
            b.load_session(&id, false, true)
        );
        let wins = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "{ra:?} {rb:?}");
        for r in [&ra, &rb] {
            if let Err(e) = r {
                assert_eq!(e.code(), Some(codes::SESSION_NOT_OWNED));
            }
        }
        let owner = anon.get_session(&id).await.unwrap().owner_tui_id;
        let winner = if ra.is_ok() { &a } else { &b };
        assert_eq!(owner, winner.identity().map(|i| i.tui_id));
    }
}

#[tokio::test]
async fn a_refused_prompt_does_not_load_the_session() {
    let d = Daemon::start().await;
    let owner = d.tui().await;
    let other = d.tui().await;
    let id = new_session(&owner, "echo").await;
    owner.close_session(&id).await.unwrap();
    let e = other.prompt_text(&id, "not mine").await.unwrap_err();
    assert_eq!(e.code(), Some(codes::SESSION_NOT_OWNED));
    let e = other.configure(&id, Default::default()).await.unwrap_err();
    assert_eq!(e.code(), Some(codes::SESSION_NOT_OWNED));
    assert!(!owner.get_session(&id).await.unwrap().live);
}

#[tokio::test]
async fn interrupting_prompts_respect_the_queue_cap() {
    let d = Daemon::start_with(AGENTS).await;
    let c = d.client().await;
    let id = new_session(&c, "slow").await;
    let long = "x".repeat(2000);
    c.prompt(prompt_params(&id, &long, false)).await.unwrap();
    // A burst of interrupting prompts arrives before the runner can start the
    // next turn: the cap holds for them too.
    let burst = (0..20).map(|_| c.prompt(prompt_params(&id, &long, true)));
    let results = futures::future::join_all(burst).await;
    let busy = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.code() == Some(codes::SESSION_BUSY)))
        .count();
    for r in &results {
        if let Err(e) = r {
            assert_eq!(e.code(), Some(codes::SESSION_BUSY), "{e}");
        }
    }
    let info = c.get_session(&id).await.unwrap();
    assert!(info.queued_turns <= 2, "{} queued", info.queued_turns);
    assert!(busy > 0, "every interrupting prompt was accepted");
}

/// The next event of a subscription, failing the test (instead of hanging) when none
/// comes: a reload that read a stale seq reservation starts thousands of seqs later,
/// so the event a client asked for never arrives.
async fn next_within(
    sub: &mut sessiond_client::EventStream,
    what: &str,
) -> sessiond_protocol::EventEnvelope {
    match tokio::time::timeout(WAIT, sub.next_event()).await {
        Ok(Some(Ok(ev))) => ev,
        Ok(other) => panic!("{what}: the subscription ended: {other:?}"),
        Err(_) => panic!("{what}: no event within {WAIT:?}"),
    }
}

#[tokio::test]
async fn seqs_go_up_by_one_across_close_and_load() {
    let d = Daemon::start().await;
    let c = d.tui().await;
    let id = new_session(&c, "echo").await;
    let mut last = c.get_session(&id).await.map(|_| 0u64).unwrap();
    for i in 0..30 {
        c.prompt_wait(&id, format!("p{i}")).await.unwrap();
        let mut sub = c.subscribe(&id, Some(last)).await.unwrap();
        let mut seen = Vec::new();
        loop {
            let ev = next_within(&mut sub, &format!("cycle {i}: the turn's events")).await;
            seen.push((ev.seq, ev.event.clone()));
            if matches!(ev.event, Event::TurnComplete { .. }) {
                break;
            }
        }
        for w in seen.windows(2) {
            assert_eq!(w[1].0, w[0].0 + 1, "cycle {i}: {:?}", seen);
        }
        assert!(
            !seen.iter().any(|(_, e)| matches!(e, Event::Resync { .. })),
            "cycle {i}: resync without a crash"
        );
        last = seen.last().map(|(s, _)| *s).unwrap();
        drop(sub);
        c.close_session(&id).await.unwrap();
        c.load_session(&id, false, true).await.unwrap();
        // The next event after the reload is the seq right after `session_closed`.
        let mut sub = c.subscribe(&id, Some(last)).await.unwrap();
        let ev = next_within(
            &mut sub,
            &format!(
                "cycle {i}: session_closed at seq {} after the reload",
                last + 1
            ),
        )
        .await;
        assert_eq!(ev.seq, last + 1, "cycle {i}");
        assert!(
            matches!(ev.event, Event::SessionClosed { .. }),
            "{:?}",
            ev.event
        );
        last = ev.seq;
    }
}

#[tokio::test]
async fn a_huge_ttl_is_refused_and_a_huge_default_never_panics() {
    let d = Daemon::start_with("session_ttl_secs = 9000000000000000000\n").await;
    let c = d.tui().await;
    let e = c
        .new_session(NewSessionParams {
            ttl_secs: Some(10_000_000_000_000),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(codes::INVALID_PARAMS));
    // The configured default is far in the future: the sweeper keeps running and the
    // session keeps answering (a panic would leave these calls unanswered).
    let id = new_session(&c, "echo").await;
    for i in 0..3 {
        c.prompt_wait(&id, format!("still here {i}")).await.unwrap();
        c.close_session(&id).await.unwrap();
        let info = c.load_session(&id, false, true).await.unwrap().session;
        assert_eq!(info.status, SessionStatus::Active);
    }
}

#[tokio::test]
async fn a_turn_running_at_a_crash_keeps_its_streamed_reply() {
    let d = Daemon::start_with(AGENTS).await;
    let c = d.client().await;
    let id = new_session(&c, "slow").await;
    let text = "abcdefghij".repeat(200);
    c.prompt(prompt_params(&id, &text, false)).await.unwrap();
    let db = d.dirs.data_dir().join("sessiond.db");
    // Wait until some of the reply is stored (read from the database itself).
    let stored = wait_for("a stored partial reply", || {
        let db = db.clone();
        async move {
            let conn = rusqlite::Connection::open(&db).ok()?;
            let partial: Option<String> = conn
                .query_row(
                    "SELECT group_concat(text, '') FROM (SELECT text FROM partials ORDER BY seq)",
                    [],
                    |r| r.get(0),
                )
                .ok()?;
            partial.filter(|p| p.len() >= 20)
        }
    })
    .await;
    let d = d.crash_and_restart().await;
    let c = d.client().await;
    let msgs = c.messages(&id, None, None).await.unwrap().messages;
    let reply = msgs.last().unwrap();
    assert_eq!(reply.role, sessiond_protocol::Role::Assistant);
    assert!(
        reply.content.starts_with(&stored),
        "{} vs {}",
        reply.content,
        stored
    );
    assert!(text.starts_with(&reply.content));
    // The verdict of the interrupted turn carries the same content.
    let mut sub = c.subscribe(&id, Some(0)).await.unwrap();
    let verdict = loop {
        let ev = sub.next_event().await.unwrap().unwrap();
        if let Event::TurnComplete { verdict } = ev.event {
            break verdict;
        }
    };
    assert_eq!(verdict.stop_reason, StopReason::Failed);
    assert_eq!(verdict.content, reply.content);
}

#[tokio::test]
async fn prompts_during_a_shutdown_grace_are_refused() {
    let d = Daemon::start_with(AGENTS).await;
    let c = d.client().await;
    let id = new_session(&c, "slow").await;
    c.prompt(prompt_params(&id, &"x".repeat(400), false))
        .await
        .unwrap();
    c.admin_shutdown(Some(30)).await.unwrap();
    let e = c.prompt_text(&id, "too late").await.unwrap_err();
    assert_eq!(e.code(), Some(codes::SHUTTING_DOWN), "{e}");
}

#[tokio::test]
async fn queued_turns_dropped_by_close_and_kill_are_counted_by_cause() {
    let d = Daemon::start_with(AGENTS).await;
    let c = d.client().await;
    let long = "x".repeat(2000);
    let a = new_session(&c, "slow").await;
    let b = new_session(&c, "slow").await;
    for id in [&a, &b] {
        for _ in 0..3 {
            c.prompt(prompt_params(id, &long, false)).await.unwrap();
        }
        wait_for("a running turn", || async {
            c.get_session(id).await.unwrap().turn.map(|_| ())
        })
        .await;
    }
    c.close_session(&a).await.unwrap();
    c.admin_kill(&b).await.unwrap();
    let stats = c.admin_stats().await.unwrap().cancels_by_cause;
    assert_eq!(stats[&CancelCause::SessionRemoved], 3, "{stats:?}");
    assert_eq!(stats[&CancelCause::AdminKill], 3, "{stats:?}");
}
