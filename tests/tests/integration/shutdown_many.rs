//! The graceful stop with hundreds of live sessions (the batched stop): every running
//! and queued turn ends exactly once with cause `shutdown`, every seq reservation is
//! given back in the stop's write, and after a restart every session loads, its seqs
//! go on by one and nothing it acknowledged is lost.

use sessiond_protocol::{CancelCause, Event, EventEnvelope, SessionId, StopReason, TurnId};
use sessiond_tests::{new_session, prompt_params, wait_for, Daemon};
use std::collections::HashMap;

const AGENTS: &str = "max_live_sessions = 1000\n[agents.slow]\nkind = \"echo\"\nchunk_chars = 1\nchunk_delay_ms = 50\n";
/// Live sessions with nothing running (every third has finished a turn).
const IDLE: usize = 280;
/// Live sessions with a running turn (every other one has a turn queued behind it).
const BUSY: usize = 20;

/// What the database holds once the daemon has stopped.
struct Stored {
    /// `last_seq` of every session.
    last_seq: HashMap<String, u64>,
    /// Sessions whose seq reservation runs past their last event.
    outstanding: Vec<String>,
    /// Each turn's stored verdict (`stop_reason`, `cancel_cause`).
    verdicts: HashMap<String, (Option<String>, Option<String>)>,
    /// The `turn_complete` events stored, by turn.
    completes: HashMap<String, Vec<sessiond_protocol::TurnVerdict>>,
}

fn read_stored(d: &Daemon) -> Stored {
    let conn = rusqlite::Connection::open(d.dirs.db_path()).expect("open the database");
    let mut last_seq = HashMap::new();
    let mut outstanding = Vec::new();
    let mut stmt = conn
        .prepare("SELECT id, last_seq, seq_reserved FROM sessions")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (id, last, reserved) = row.unwrap();
        if reserved > last {
            outstanding.push(id.clone());
        }
        last_seq.insert(id, last as u64);
    }
    let mut verdicts = HashMap::new();
    let mut stmt = conn
        .prepare("SELECT turn_id, stop_reason, cancel_cause FROM turns")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap();
    for row in rows {
        let (turn, v) = row.unwrap();
        verdicts.insert(turn, v);
    }
    let mut completes: HashMap<String, Vec<_>> = HashMap::new();
    let mut stmt = conn.prepare("SELECT body FROM events").unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    for body in rows {
        let env: EventEnvelope = serde_json::from_str(&body.unwrap()).expect("stored event");
        if let Event::TurnComplete { verdict } = env.event {
            completes
                .entry(verdict.turn_id.0.clone())
                .or_default()
                .push(verdict);
        }
    }
    Stored {
        last_seq,
        outstanding,
        verdicts,
        completes,
    }
}

/// The first event after `last` once a new turn ran: the seq right after `last`.
async fn next_seq_after(c: &sessiond_client::Client, id: &SessionId, last: u64) -> (u64, Event) {
    c.prompt_wait(id, "after the restart").await.unwrap();
    let mut sub = c.subscribe(id, Some(last)).await.unwrap();
    let ev = sub.next_event().await.expect("an event").unwrap();
    (ev.seq, ev.event)
}

#[tokio::test]
async fn sigterm_with_hundreds_of_live_sessions_ends_every_turn_once_and_keeps_seqs() {
    let mut d = Daemon::start_with(AGENTS).await;
    let c = d.tui().await;
    let mut idle = Vec::new();
    for i in 0..IDLE {
        let id = new_session(&c, "echo").await;
        if i % 3 == 0 {
            c.prompt_wait(&id, format!("reply {i}")).await.unwrap();
        }
        idle.push(id);
    }
    let mut busy = Vec::new();
    let mut turns: Vec<TurnId> = Vec::new();
    for i in 0..BUSY {
        let id = new_session(&c, "slow").await;
        let long = "x".repeat(4000);
        turns.push(c.prompt_text(&id, long).await.unwrap().turn_id);
        if i % 2 == 0 {
            let queued = c.prompt(prompt_params(&id, "queued", false)).await.unwrap();
            let sessiond_protocol::params::PromptResult::Accepted(a) = queued else {
                panic!("a queued prompt is accepted, not finished");
            };
            turns.push(a.turn_id);
        }
        busy.push(id);
    }
    // Each first turn is running (not only queued) when the stop comes.
    for id in &busy {
        wait_for("the turn to run", || async {
            let info = c.get_session(id).await.ok()?;
            info.turn.is_some().then_some(())
        })
        .await;
    }
    let before = c.status().await.unwrap();
    assert_eq!(before.sessions_live as usize, IDLE + BUSY);

    let st = d.sigterm();
    assert!(st.success(), "exit status {st}");
    let stored = read_stored(&d);
    // The stop's write gave every reservation back: nothing for recovery to skip.
    assert!(
        stored.outstanding.is_empty(),
        "{} sessions keep a seq reservation after a graceful stop",
        stored.outstanding.len()
    );
    for turn in &turns {
        let v = stored.verdicts.get(&turn.0).expect("the turn is stored");
        assert_eq!(
            v,
            &(Some("cancelled".to_owned()), Some("shutdown".to_owned())),
            "turn {turn}"
        );
        let completes = stored.completes.get(&turn.0).map_or(&[][..], |v| &v[..]);
        assert_eq!(completes.len(), 1, "turn {turn}: {completes:?}");
        assert_eq!(completes[0].stop_reason, StopReason::Cancelled);
        assert_eq!(completes[0].cancel_cause, Some(CancelCause::Shutdown));
    }

    let d = d.restart().await;
    assert!(
        !d.log().contains("were skipped"),
        "a graceful stop left seq gaps: {}",
        d.log()
    );
    let c = d.tui().await;
    for id in idle.iter().chain(&busy) {
        c.load_session(id, true, true)
            .await
            .unwrap_or_else(|e| panic!("{id} does not load: {e}"));
    }
    // Seqs go on by one after the restart, on busy sessions and on idle ones.
    let checked: Vec<&SessionId> = busy.iter().chain(idle.iter().step_by(10)).collect();
    let next = futures::future::join_all(checked.iter().map(|id| {
        let last = stored.last_seq[&id.0];
        let c = &c;
        async move { (last, next_seq_after(c, id, last).await) }
    }))
    .await;
    for (id, (last, (seq, event))) in checked.iter().zip(next) {
        assert_eq!(seq, last + 1, "{id}: {event:?}");
        assert!(!matches!(event, Event::Resync { .. }), "{id}: {event:?}");
    }
    // The replies finished before the stop are still there.
    for (i, id) in idle.iter().enumerate().step_by(3) {
        let m = c.messages(id, None, None).await.unwrap().messages;
        assert_eq!(m[1].content, format!("reply {i}"), "{id}");
    }
}
