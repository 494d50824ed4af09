//! Start-up recovery after a process that died (kill -9, crash, power loss), in one
//! transaction before anything is served:
//!
//! 1. Seqs a session had reserved but whose events never reached the disk are
//!    skipped for good: a stored `resync` marker takes the last reserved seq, so the
//!    next event continues after every seq the dead process may have handed out.
//! 2. Turns left open (running or queued) are recorded `failed` with an error saying
//!    the daemon stopped, and their `turn_complete` is appended to the session's
//!    event history so a subscriber replaying from 0 sees that verdict. A turn that
//!    was running keeps the reply it had streamed (as far as it was stored): in its
//!    verdict's `content` and as its assistant message in the transcript.

use super::write::apply;
use super::{Op, Recovery};
use crate::util::now_rfc3339;
use rusqlite::{params, Connection, Transaction};
use sessiond_protocol::{Event, EventEnvelope, SessionId, StopReason, TurnId, TurnVerdict, Usage};

/// The error recorded for a turn that was running when the daemon stopped.
pub const INTERRUPTED_ERROR: &str = "the daemon stopped while this turn was running";

pub(super) fn recover(conn: &mut Connection) -> Result<Recovery, rusqlite::Error> {
    // IMMEDIATE, as every write of the daemon's connections (see `write::apply_batch`).
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut recovery = Recovery {
        seq_gaps: close_seq_gaps(&tx)?,
        ..Recovery::default()
    };
    let open: Vec<(String, String, Option<String>)> = {
        let mut stmt = tx.prepare(
            "SELECT turn_id, session_id,
                (SELECT group_concat(text, '') FROM
                    (SELECT text FROM partials p WHERE p.turn_id = t.turn_id ORDER BY seq))
             FROM turns t WHERE ended_at IS NULL
             ORDER BY session_id, started_at, turn_id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (turn_id, session_id, partial) in open {
        let content = partial.unwrap_or_default();
        let verdict = TurnVerdict {
            turn_id: TurnId(turn_id),
            stop_reason: StopReason::Failed,
            cancel_cause: None,
            error: Some(INTERRUPTED_ERROR.to_owned()),
            usage: Usage::default(),
            content: content.clone(),
        };
        let session_id = SessionId(session_id);
        if !content.is_empty() {
            keep_reply(&tx, &session_id, &verdict.turn_id, content)?;
        }
        apply(
            &tx,
            &Op::FinishTurn {
                turn_id: verdict.turn_id.clone(),
                verdict: verdict.clone(),
            },
            &mut Vec::new(),
        )?;
        let seq: Option<i64> = tx
            .query_row(
                "UPDATE sessions SET round_count = round_count + 1, last_seq = last_seq + 1
                 WHERE id = ?1 RETURNING last_seq",
                [session_id.as_str()],
                |r| r.get(0),
            )
            .ok();
        if let Some(seq) = seq {
            let event = Event::TurnComplete {
                verdict: verdict.clone(),
            };
            store_event(&tx, &session_id, seq.max(0) as u64, event)?;
        }
        recovery.interrupted.push((session_id, verdict));
    }
    tx.commit()?;
    Ok(recovery)
}

/// Appends the streamed part of an interrupted turn's reply to the transcript.
fn keep_reply(
    tx: &Transaction<'_>,
    session_id: &SessionId,
    turn_id: &TurnId,
    content: String,
) -> Result<(), rusqlite::Error> {
    let index: Option<i64> = tx
        .query_row(
            "UPDATE sessions SET message_count = message_count + 1 WHERE id = ?1
             RETURNING message_count - 1",
            [session_id.as_str()],
            |r| r.get(0),
        )
        .ok();
    let Some(index) = index else {
        return Ok(());
    };
    let message = crate::record::MessageRecord {
        session_id: session_id.clone(),
        index: index.max(0) as u64,
        role: sessiond_protocol::Role::Assistant,
        content,
        turn_id: Some(turn_id.0.clone()),
        created_at: now_rfc3339(),
    };
    apply(tx, &Op::InsertMessage(message), &mut Vec::new())
}

/// Sessions whose reservation runs past their last stored event: the events between
/// may have been delivered and lost. Returns how many sessions were repaired.
fn close_seq_gaps(tx: &Transaction<'_>) -> Result<usize, rusqlite::Error> {
    let gaps: Vec<(String, i64)> = {
        let mut stmt = tx.prepare(
            "SELECT id, seq_reserved FROM sessions INDEXED BY sessions_seq_outstanding
             WHERE seq_reserved > last_seq",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (id, reserved) in &gaps {
        let session_id = SessionId(id.clone());
        let seq = (*reserved).max(1) as u64;
        store_event(tx, &session_id, seq, Event::Resync { from_seq: seq + 1 })?;
        tx.execute(
            "UPDATE sessions SET last_seq = ?2, seq_reserved = ?2 WHERE id = ?1",
            params![id, seq as i64],
        )?;
    }
    Ok(gaps.len())
}

fn store_event(
    tx: &Transaction<'_>,
    session_id: &SessionId,
    seq: u64,
    event: Event,
) -> Result<(), rusqlite::Error> {
    let env = EventEnvelope {
        session_id: session_id.clone(),
        seq,
        at: now_rfc3339(),
        event,
    };
    let body = serde_json::to_string(&env)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    tx.execute(
        "INSERT OR REPLACE INTO events (session_id, seq, body) VALUES (?1, ?2, ?3)",
        params![session_id.as_str(), seq as i64, body],
    )?;
    Ok(())
}
