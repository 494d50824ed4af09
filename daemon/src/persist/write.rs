//! The writer thread: drains queued jobs, applies them in one transaction (group
//! commit), then acknowledges every job of the batch. Also start-up recovery.

use super::{Job, Recovery};
use crate::store::record::{MessageRecord, SessionRecord, TurnRecord, UploadRecord};
use crate::util::now_rfc3339;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use sessiond_protocol::{CancelCause, SessionId, StopReason, TurnId, TurnVerdict, Usage};
use std::path::PathBuf;
use std::sync::mpsc::Receiver;

/// The error recorded for a turn that was running when the daemon stopped.
pub const INTERRUPTED_ERROR: &str = "the daemon stopped while this turn was running";

/// One write.
#[derive(Debug, Clone)]
pub enum Op {
    /// Insert or replace the whole session row.
    UpsertSession(SessionRecord),
    InsertMessage(MessageRecord),
    StartTurn(TurnRecord),
    FinishTurn {
        turn_id: TurnId,
        verdict: TurnVerdict,
    },
    AddUpload(UploadRecord),
    /// Removes a session with its transcript, turns, uploads and events; blobs no
    /// longer referenced by any session are deleted after the commit.
    DeleteSession(SessionId),
    /// Appends an event (already serialised) to a session's history and trims it to `keep`.
    AppendEvent {
        session_id: SessionId,
        seq: u64,
        body: String,
        keep: u64,
    },
}

pub(super) fn writer_loop(mut conn: Connection, rx: Receiver<Job>, blobs: PathBuf) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
            if batch.len() >= 1024 {
                break;
            }
        }
        let mut orphans = Vec::new();
        let result = apply_batch(&mut conn, &batch, &mut orphans);
        if let Err(e) = &result {
            tracing::error!(error = %e, "database batch failed; retrying jobs one by one");
        }
        match result {
            Ok(()) => {
                for job in batch {
                    if let Some(done) = job.done {
                        let _ = done.send(Ok(()));
                    }
                }
            }
            Err(_) => {
                // A bad op must not fail the good ones sharing its batch.
                for job in batch {
                    let r = apply_batch(&mut conn, std::slice::from_ref(&job), &mut orphans)
                        .map_err(|e| e.to_string());
                    if let Some(done) = job.done {
                        let _ = done.send(r);
                    }
                }
            }
        }
        for hash in orphans {
            let path = blobs.join(&hash);
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(error = %e, "cannot remove unreferenced upload");
                }
            }
        }
    }
    tracing::debug!("database writer stopped");
}

fn apply_batch(
    conn: &mut Connection,
    batch: &[Job],
    orphans: &mut Vec<String>,
) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction()?;
    let mut candidates = Vec::new();
    for job in batch {
        for op in &job.ops {
            apply(&tx, op, &mut candidates)?;
        }
    }
    let mut found = Vec::new();
    for hash in candidates {
        let still: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM uploads WHERE hash = ?1 LIMIT 1",
                [&hash],
                |r| r.get(0),
            )
            .optional()?;
        if still.is_none() {
            found.push(hash);
        }
    }
    tx.commit()?;
    orphans.extend(found);
    Ok(())
}

fn apply(
    tx: &Transaction<'_>,
    op: &Op,
    orphan_candidates: &mut Vec<String>,
) -> Result<(), rusqlite::Error> {
    match op {
        Op::UpsertSession(s) => {
            let overrides = serde_json::to_string(&s.overrides).unwrap_or_else(|_| "{}".into());
            tx.prepare_cached(
                "INSERT INTO sessions (id, agent, mode, title, cwd, owner, status, overrides, ttl_secs,
                    created_at, updated_at, last_active_at, message_count, round_count,
                    input_tokens, output_tokens, last_seq)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)
                 ON CONFLICT(id) DO UPDATE SET agent=excluded.agent, mode=excluded.mode,
                    title=excluded.title, cwd=excluded.cwd, owner=excluded.owner,
                    status=excluded.status, overrides=excluded.overrides, ttl_secs=excluded.ttl_secs,
                    updated_at=excluded.updated_at, last_active_at=excluded.last_active_at,
                    message_count=excluded.message_count, round_count=excluded.round_count,
                    input_tokens=excluded.input_tokens, output_tokens=excluded.output_tokens,
                    last_seq=MAX(sessions.last_seq, excluded.last_seq)",
            )?
            .execute(params![
                s.id.as_str(),
                s.agent,
                s.mode.as_str(),
                s.title,
                s.cwd,
                s.owner.as_ref().map(|o| o.as_str()),
                s.status.as_str(),
                overrides,
                s.ttl_secs.map(|t| t as i64),
                s.created_at,
                s.updated_at,
                s.last_active_at,
                s.message_count as i64,
                s.round_count as i64,
                s.usage.input_tokens as i64,
                s.usage.output_tokens as i64,
                s.last_seq as i64,
            ])?;
        }
        Op::InsertMessage(m) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO messages (session_id, idx, role, content, turn_id, created_at)
                 VALUES (?1,?2,?3,?4,?5,?6)",
            )?
            .execute(params![
                m.session_id.as_str(),
                m.index as i64,
                m.role.as_str(),
                m.content,
                m.turn_id,
                m.created_at
            ])?;
        }
        Op::StartTurn(t) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO turns (turn_id, session_id, generation, prompt, started_at)
                 VALUES (?1,?2,?3,?4,?5)",
            )?
            .execute(params![
                t.turn_id,
                t.session_id.as_str(),
                t.generation as i64,
                t.prompt,
                t.started_at
            ])?;
        }
        Op::FinishTurn { turn_id, verdict } => {
            tx.prepare_cached(
                "UPDATE turns SET ended_at=?2, stop_reason=?3, cancel_cause=?4, error=?5,
                    input_tokens=?6, output_tokens=?7 WHERE turn_id=?1",
            )?
            .execute(params![
                turn_id.as_str(),
                now_rfc3339(),
                verdict.stop_reason.as_str(),
                verdict.cancel_cause.map(|c| c.as_str()),
                verdict.error,
                verdict.usage.input_tokens as i64,
                verdict.usage.output_tokens as i64,
            ])?;
        }
        Op::AddUpload(u) => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO uploads (session_id, hash, name, mime_type, size_bytes, created_at)
                 VALUES (?1,?2,?3,?4,?5,?6)",
            )?
            .execute(params![
                u.session_id.as_str(),
                u.hash,
                u.name,
                u.mime_type,
                u.size_bytes as i64,
                u.created_at
            ])?;
        }
        Op::DeleteSession(id) => {
            let id = id.as_str();
            let mut hashes = tx.prepare_cached("SELECT hash FROM uploads WHERE session_id = ?1")?;
            let rows = hashes.query_map([id], |r| r.get::<_, String>(0))?;
            for h in rows {
                orphan_candidates.push(h?);
            }
            for table in ["messages", "turns", "uploads", "events"] {
                tx.execute(&format!("DELETE FROM {table} WHERE session_id = ?1"), [id])?;
            }
            tx.execute("DELETE FROM sessions WHERE id = ?1", [id])?;
        }
        Op::AppendEvent {
            session_id,
            seq,
            body,
            keep,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO events (session_id, seq, body) VALUES (?1,?2,?3)",
            )?
            .execute(params![session_id.as_str(), *seq as i64, body])?;
            if *seq > *keep && seq % 64 == 0 {
                tx.prepare_cached("DELETE FROM events WHERE session_id = ?1 AND seq <= ?2")?
                    .execute(params![session_id.as_str(), (*seq - *keep) as i64])?;
            }
            tx.prepare_cached("UPDATE sessions SET last_seq = MAX(last_seq, ?2) WHERE id = ?1")?
                .execute(params![session_id.as_str(), *seq as i64])?;
        }
    }
    Ok(())
}

/// Turns left open by a process that died are recorded as failed, with usage zero
/// and the content that was persisted for them (none: content is written at the end).
pub(super) fn recover_interrupted(conn: &mut Connection) -> Result<Recovery, rusqlite::Error> {
    let tx = conn.transaction()?;
    let open: Vec<(String, String)> = {
        let mut stmt =
            tx.prepare("SELECT turn_id, session_id FROM turns WHERE ended_at IS NULL")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut recovery = Recovery::default();
    for (turn_id, session_id) in open {
        let verdict = TurnVerdict {
            turn_id: TurnId(turn_id.clone()),
            stop_reason: StopReason::Failed,
            cancel_cause: None::<CancelCause>,
            error: Some(INTERRUPTED_ERROR.to_owned()),
            usage: Usage::default(),
            content: String::new(),
        };
        apply(
            &tx,
            &Op::FinishTurn {
                turn_id: verdict.turn_id.clone(),
                verdict: verdict.clone(),
            },
            &mut Vec::new(),
        )?;
        recovery.interrupted.push((SessionId(session_id), verdict));
    }
    tx.commit()?;
    Ok(recovery)
}
