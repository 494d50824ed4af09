//! Races through the real daemon: many TUIs taking a session over while they
//! prompt with `interrupt`, and prompts racing `close` and `admin/kill`. Every
//! accepted turn ends with exactly one `turn_complete`, every cancelled verdict
//! names exactly one cause, and seqs strictly increase on every subscription.

use sessiond_client::Client;
use sessiond_protocol::params::{NewSessionParams, PromptParams, PromptResult};
use sessiond_protocol::{codes, Event, SessionId, StopReason, TurnId};
use sessiond_tests::Daemon;
use std::collections::{BTreeMap, BTreeSet};

const AGENTS: &str = "max_queued_turns = 4\n\
[agents.slow]\nkind = \"echo\"\nchunk_chars = 2\nchunk_delay_ms = 2\n";

fn prompt(id: &SessionId, text: &str, interrupt: bool, wait: bool) -> PromptParams {
    PromptParams {
        session_id: id.clone(),
        text: text.into(),
        attachments: None,
        interrupt: Some(interrupt),
        wait: Some(wait),
    }
}

async fn new_slow(c: &Client) -> SessionId {
    c.new_session(NewSessionParams {
        agent: Some("slow".into()),
        keep_siblings: Some(true),
        ..Default::default()
    })
    .await
    .unwrap()
    .session
    .session_id
}

/// Errors a racing call may legitimately get.
fn expected(e: &sessiond_client::Error) -> bool {
    [
        codes::SESSION_NOT_OWNED,
        codes::SESSION_BUSY,
        codes::SESSION_TERMINATED,
    ]
    .contains(&e.code().unwrap_or(0))
}

#[tokio::test]
async fn take_over_and_interrupt_storms_keep_one_verdict_per_turn() {
    let d = Daemon::start_with(AGENTS).await;
    let anon = d.client().await;
    let id = new_slow(&anon).await;
    let mut sub = anon.subscribe(&id, Some(0)).await.unwrap();
    let mut tuis = Vec::new();
    for _ in 0..4 {
        tuis.push(d.tui().await);
    }
    let storms = tuis.iter().enumerate().map(|(n, c)| {
        let id = id.clone();
        async move {
            let mut accepted = Vec::new();
            for i in 0..12 {
                match c.load_session(&id, true, true).await {
                    Ok(_) => {}
                    Err(e) => panic!("take_over load failed: {e}"),
                }
                match c
                    .prompt(prompt(
                        &id,
                        &format!("tui {n} prompt {i} with some text"),
                        i % 2 == 0,
                        false,
                    ))
                    .await
                {
                    Ok(PromptResult::Accepted(a)) => accepted.push(a.turn_id),
                    Ok(PromptResult::Finished(_)) => panic!("a verdict without wait"),
                    Err(e) => assert!(expected(&e), "{e}"),
                }
            }
            accepted
        }
    });
    let accepted: Vec<TurnId> = futures::future::join_all(storms)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(!accepted.is_empty());
    let mut waiting: BTreeSet<TurnId> = accepted.iter().cloned().collect();
    assert_eq!(
        waiting.len(),
        accepted.len(),
        "a turn id was handed out twice"
    );
    let mut completes: BTreeMap<TurnId, usize> = BTreeMap::new();
    let mut last = 0;
    while !waiting.is_empty() {
        let ev = sub.next_event().await.unwrap().unwrap();
        assert!(ev.seq > last, "seq {} after {}", ev.seq, last);
        last = ev.seq;
        if let Event::TurnComplete { verdict } = ev.event {
            *completes.entry(verdict.turn_id.clone()).or_default() += 1;
            assert_eq!(
                verdict.stop_reason == StopReason::Cancelled,
                verdict.cancel_cause.is_some(),
                "{verdict:?}"
            );
            waiting.remove(&verdict.turn_id);
        }
    }
    for (t, n) in completes {
        assert_eq!(n, 1, "{t} completed {n} times");
    }
}

#[tokio::test]
async fn prompts_racing_close_and_kill_end_exactly_once() {
    let d = Daemon::start_with(AGENTS).await;
    let c = d.client().await;
    let admin = d.client().await;
    let mut all = Vec::new();
    for round in 0..10 {
        let id = new_slow(&c).await;
        c.prompt(prompt(&id, "first turn", false, false))
            .await
            .unwrap();
        let prompts =
            (0..4).map(|i| c.prompt(prompt(&id, &format!("r{round} p{i}"), i == 3, true)));
        let (verdicts, close, kill) = tokio::join!(
            futures::future::join_all(prompts),
            c.close_session(&id),
            admin.admin_kill(&id)
        );
        close.unwrap();
        kill.unwrap();
        for v in verdicts {
            match v {
                Ok(PromptResult::Finished(v)) => {
                    assert_eq!(
                        v.stop_reason == StopReason::Cancelled,
                        v.cancel_cause.is_some(),
                        "{v:?}"
                    );
                    all.push(v.turn_id);
                }
                Ok(PromptResult::Accepted(_)) => panic!("accepted without a verdict"),
                Err(e) => assert!(expected(&e), "{e}"),
            }
        }
    }
    let unique: BTreeSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "a verdict was delivered twice");
    // The audit trail: every turn has exactly one verdict, with a cause iff cancelled.
    let mut d = d;
    d.sigterm();
    let conn = rusqlite::Connection::open(d.dirs.data_dir().join("sessiond.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT turn_id, stop_reason, cancel_cause FROM turns")
        .unwrap();
    let rows: Vec<(String, Option<String>, Option<String>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (t, reason, cause) in rows {
        let reason = reason.unwrap_or_else(|| panic!("turn {t} has no verdict"));
        assert_eq!(reason == "cancelled", cause.is_some(), "turn {t}");
    }
}
