//! The writer thread: drains queued jobs, applies them in one transaction (group
//! commit), then acknowledges every job of the batch.

use super::faults::Faults;
use super::Job;
use crate::record::{MessageRecord, SessionRecord, TurnRecord, UploadRecord};
use crate::util::now_rfc3339;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use sessiond_protocol::{SessionId, TurnId, TurnVerdict};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;

/// One write.
#[derive(Debug, Clone)]
pub enum Op {
    /// Inserts a new session row.
    InsertSession(SessionRecord),
    /// Rewrites the row of an existing session (everything but the seq reservation;
    /// `last_seq` never goes down). A session that was deleted stays deleted. A row
    /// that already holds these values is left alone (no page or index write: a stop
    /// rewrites every live session, most of them unchanged).
    UpdateSession(SessionRecord),
    InsertMessage(MessageRecord),
    StartTurn(TurnRecord),
    /// Records the generation a turn got when it started.
    SetTurnGeneration {
        turn_id: TurnId,
        generation: u64,
    },
    FinishTurn {
        turn_id: TurnId,
        verdict: TurnVerdict,
    },
    /// Removes the record of a turn whose admission was undone (never queued).
    DiscardTurn(TurnId),
    /// Stores a piece of a running turn's streamed reply (`seq`: the event seq of
    /// its last chunk), which start-up recovery keeps when the daemon died during
    /// the turn.
    TurnPartial {
        turn_id: TurnId,
        seq: u64,
        text: String,
    },
    AddUpload(UploadRecord),
    /// Removes a session with its transcript, turns, uploads and events; blobs no
    /// longer referenced by any session are deleted after the commit.
    DeleteSession(SessionId),
    /// Retention: as [`Op::DeleteSession`], but only while no process holds a seq
    /// reservation for the session (it is neither live nor being loaded).
    PruneSession(SessionId),
    /// Appends an event (already serialised) to a session's history and trims it to `keep`.
    AppendEvent {
        session_id: SessionId,
        seq: u64,
        body: String,
        keep: u64,
    },
    /// Appends consecutive events (seq, serialised body; ascending) of one session, as
    /// [`Op::AppendEvent`] each, but with one update of the session's `last_seq` and
    /// at most one trim: the event writer's jobs, where a streamed reply's chunks
    /// arrive a few at a time (issue 14's profile: the per-event update was a third
    /// of the writer's statements).
    AppendEvents {
        session_id: SessionId,
        events: Vec<(u64, String)>,
        keep: u64,
    },
    /// Raises the session's reserved seq high-water mark to `upto`. With `strict`, a
    /// missing session fails the write (loading a session that was just pruned).
    ReserveSeq {
        session_id: SessionId,
        upto: u64,
        strict: bool,
    },
    /// Gives back an unloaded session's unused reservation: sets it to `last` (the
    /// final seq of the closed hub) if it is still `held` (nobody reserved since).
    /// `held: None` releases unconditionally (a graceful stop, when nothing can
    /// load the session again in this process).
    ReleaseSeq {
        session_id: SessionId,
        last: u64,
        held: Option<u64>,
    },
    /// Sets (or with `None` removes) a value an agent keeps for a session; nothing is
    /// written for a session that no longer exists.
    SetAgentState {
        session_id: SessionId,
        key: String,
        value: Option<String>,
    },
}

/// Operations applied in one transaction at most (a single larger job is applied whole).
const MAX_BATCH_OPS: usize = 2048;

impl Op {
    /// How many operations this one counts as in a transaction's budget.
    fn weight(&self) -> usize {
        match self {
            Op::AppendEvents { events, .. } => events.len().max(1),
            _ => 1,
        }
    }
}

fn job_weight(job: &Job) -> usize {
    job.ops.iter().map(Op::weight).sum::<usize>().max(1)
}

/// How long a batch of writes that nobody waits for (event history, detached steps)
/// may wait for more before it is committed. Each commit rewrites every page it
/// touched and syncs: with 100 sessions streaming, a commit per few jobs wrote
/// about 2.3 WAL pages per 200-byte event (callgrind, issue 14). A write someone
/// waits for ends the wait at once, so no reply waits longer for it.
const GATHER: std::time::Duration = std::time::Duration::from_millis(20);

/// The next batch, starting with `first`: whatever is queued, up to MAX_BATCH_OPS
/// operations (jobs of coalesced events carry many: a huge transaction would grow
/// the WAL and slow every commit). While every job in it is detached, it waits up
/// to `window` (from now) for more.
fn gather(first: Job, rx: &Receiver<Job>, window: std::time::Duration) -> Vec<Job> {
    let until = std::time::Instant::now() + window;
    let mut ops = job_weight(&first);
    let mut awaited = first.done.is_some();
    let mut batch = vec![first];
    while ops < MAX_BATCH_OPS {
        let more = match rx.try_recv() {
            Ok(more) => more,
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {
                let left = until.saturating_duration_since(std::time::Instant::now());
                if awaited || left.is_zero() {
                    break;
                }
                match rx.recv_timeout(left) {
                    Ok(more) => more,
                    Err(_) => break,
                }
            }
        };
        ops += job_weight(&more);
        awaited |= more.done.is_some();
        batch.push(more);
    }
    batch
}

pub(super) fn writer_loop(
    mut conn: Connection,
    rx: Receiver<Job>,
    blobs: PathBuf,
    faults: Arc<Faults>,
) {
    // Operations written since memory was last given back.
    let mut written = 0u64;
    loop {
        // After much history, an idle writer gives memory back: its page cache (up
        // to `cache_size`, filled by a long turn's pages) and what glibc kept.
        let first = if written >= crate::memory::TRIM_AFTER_OPS {
            match rx.recv_timeout(crate::memory::IDLE_BEFORE_TRIM) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(e) = conn.execute_batch("PRAGMA shrink_memory") {
                        tracing::debug!(error = %e, "cannot shrink the writer's page cache");
                    }
                    crate::memory::give_back();
                    written = 0;
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match rx.recv() {
                Ok(job) => job,
                Err(_) => break,
            }
        };
        while faults.paused.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let batch = gather(first, &rx, GATHER);
        written += batch.iter().map(job_weight).sum::<usize>() as u64;
        if faults.failing_now() {
            for job in batch {
                if let Some(done) = job.done {
                    let _ = done.send(Err("injected write failure".into()));
                }
            }
            continue;
        }
        let mut orphans = Vec::new();
        let started = std::time::Instant::now();
        let result = apply_batch(&mut conn, &batch, &mut orphans);
        crate::metrics::commit(started.elapsed());
        if let Err(e) = &result {
            tracing::error!(error = %e, "database batch failed; retrying jobs one by one");
        }
        let acks: Vec<_> = match result {
            Ok(()) => batch.into_iter().map(|job| (job, Ok(()))).collect(),
            Err(_) => {
                // A bad op must not fail the good ones sharing its batch.
                batch
                    .into_iter()
                    .map(|job| {
                        let r = apply_batch(&mut conn, std::slice::from_ref(&job), &mut orphans)
                            .map_err(|e| e.to_string());
                        (job, r)
                    })
                    .collect()
            }
        };
        // Files nothing references any more go before the writes are acknowledged:
        // a delete's reply means its files are gone, and a later write that
        // references the same bytes finds them missing and writes them again.
        for hash in orphans {
            let path = blobs.join(&hash);
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(error = %e, "cannot remove unreferenced upload");
                }
            }
        }
        for (job, r) in acks {
            if let Some(done) = job.done {
                let _ = done.send(r);
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
    // IMMEDIATE: the write lock is taken first. A deferred transaction that read
    // before it wrote (an op that looks up what it changes) failed at once with
    // SQLITE_BUSY_SNAPSHOT when the process registry's connection committed in
    // between; waiting for the lock up front goes through the busy timeout instead.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
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

pub(super) fn apply(
    tx: &Transaction<'_>,
    op: &Op,
    orphan_candidates: &mut Vec<String>,
) -> Result<(), rusqlite::Error> {
    match op {
        Op::InsertSession(s) => {
            tx.prepare_cached(
                "INSERT INTO sessions (id, agent, mode, title, cwd, owner, status, overrides, ttl_secs,
                    created_at, updated_at, last_active_at, message_count, round_count,
                    input_tokens, output_tokens, last_seq)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)",
            )?
            .execute(rusqlite::params_from_iter(session_params(s)))?;
        }
        Op::UpdateSession(s) => {
            tx.prepare_cached(
                "UPDATE sessions SET agent=?2, mode=?3, title=?4, cwd=?5, owner=?6,
                    status=CASE WHEN status IN ('killed', 'expired')
                        AND ?7 NOT IN ('killed', 'expired') THEN status ELSE ?7 END,
                    overrides=?8, ttl_secs=?9, created_at=?10, updated_at=?11, last_active_at=?12,
                    message_count=?13, round_count=?14, input_tokens=?15, output_tokens=?16,
                    last_seq=MAX(last_seq, ?17)
                 WHERE id=?1 AND (agent IS NOT ?2 OR mode IS NOT ?3 OR title IS NOT ?4
                    OR cwd IS NOT ?5 OR owner IS NOT ?6 OR status IS NOT ?7
                    OR overrides IS NOT ?8 OR ttl_secs IS NOT ?9 OR created_at IS NOT ?10
                    OR updated_at IS NOT ?11 OR last_active_at IS NOT ?12
                    OR message_count IS NOT ?13 OR round_count IS NOT ?14
                    OR input_tokens IS NOT ?15 OR output_tokens IS NOT ?16 OR last_seq < ?17)",
            )?
            .execute(rusqlite::params_from_iter(session_params(s)))?;
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
        Op::SetTurnGeneration {
            turn_id,
            generation,
        } => {
            tx.prepare_cached("UPDATE turns SET generation = ?2 WHERE turn_id = ?1")?
                .execute(params![turn_id.as_str(), *generation as i64])?;
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
            tx.prepare_cached("DELETE FROM partials WHERE turn_id = ?1")?
                .execute([turn_id.as_str()])?;
        }
        Op::DiscardTurn(turn_id) => {
            tx.prepare_cached("DELETE FROM turns WHERE turn_id = ?1 AND ended_at IS NULL")?
                .execute([turn_id.as_str()])?;
        }
        Op::TurnPartial { turn_id, seq, text } => {
            // Only while the turn is open (a piece flushed after its verdict is dropped).
            tx.prepare_cached(
                "INSERT OR REPLACE INTO partials (turn_id, seq, text)
                 SELECT ?1, ?2, ?3 WHERE EXISTS
                   (SELECT 1 FROM turns WHERE turn_id = ?1 AND ended_at IS NULL)",
            )?
            .execute(params![turn_id.as_str(), *seq as i64, text])?;
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
        Op::PruneSession(id) => {
            let free: Option<i64> = tx
                .prepare_cached(
                    "SELECT 1 FROM sessions WHERE id = ?1 AND seq_reserved <= last_seq",
                )?
                .query_row([id.as_str()], |r| r.get(0))
                .optional()?;
            if free.is_some() {
                apply(tx, &Op::DeleteSession(id.clone()), orphan_candidates)?;
            }
        }
        Op::DeleteSession(id) => {
            let id = id.as_str();
            let mut hashes = tx.prepare_cached("SELECT hash FROM uploads WHERE session_id = ?1")?;
            let rows = hashes.query_map([id], |r| r.get::<_, String>(0))?;
            for h in rows {
                orphan_candidates.push(h?);
            }
            tx.execute(
                "DELETE FROM partials WHERE turn_id IN (SELECT turn_id FROM turns WHERE session_id = ?1)",
                [id],
            )?;
            for table in ["messages", "turns", "uploads", "events", "agent_state"] {
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
        Op::AppendEvents {
            session_id,
            events,
            keep,
        } => {
            let id = session_id.as_str();
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO events (session_id, seq, body) VALUES (?1,?2,?3)",
            )?;
            let mut last = 0;
            let mut trim = false;
            for (seq, body) in events {
                insert.execute(params![id, *seq as i64, body])?;
                trim |= *seq > *keep && seq % 64 == 0;
                last = last.max(*seq);
            }
            if trim {
                tx.prepare_cached("DELETE FROM events WHERE session_id = ?1 AND seq <= ?2")?
                    .execute(params![id, (last - *keep) as i64])?;
            }
            if last > 0 {
                tx.prepare_cached(
                    "UPDATE sessions SET last_seq = MAX(last_seq, ?2) WHERE id = ?1",
                )?
                .execute(params![id, last as i64])?;
            }
        }
        Op::ReserveSeq {
            session_id,
            upto,
            strict,
        } => {
            let n = tx
                .prepare_cached(
                    "UPDATE sessions SET seq_reserved = MAX(seq_reserved, ?2) WHERE id = ?1",
                )?
                .execute(params![session_id.as_str(), *upto as i64])?;
            if n == 0 && *strict {
                return Err(rusqlite::Error::QueryReturnedNoRows);
            }
        }
        Op::SetAgentState {
            session_id,
            key,
            value,
        } => match value {
            Some(v) => {
                tx.prepare_cached(
                    "INSERT INTO agent_state (session_id, key, value)
                     SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM sessions WHERE id = ?1)
                     ON CONFLICT (session_id, key) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![session_id.as_str(), key, v])?;
            }
            None => {
                tx.prepare_cached("DELETE FROM agent_state WHERE session_id = ?1 AND key = ?2")?
                    .execute(params![session_id.as_str(), key])?;
            }
        },
        Op::ReleaseSeq {
            session_id,
            last,
            held,
        } => {
            match held {
                Some(held) => tx
                    .prepare_cached(
                        "UPDATE sessions SET seq_reserved = ?2 WHERE id = ?1 AND seq_reserved = ?3",
                    )?
                    .execute(params![session_id.as_str(), *last as i64, *held as i64])?,
                None => tx
                    .prepare_cached("UPDATE sessions SET seq_reserved = ?2 WHERE id = ?1")?
                    .execute(params![session_id.as_str(), *last as i64])?,
            };
        }
    }
    Ok(())
}

fn session_params(s: &SessionRecord) -> Vec<Box<dyn rusqlite::ToSql + '_>> {
    let overrides = serde_json::to_string(&s.overrides).unwrap_or_else(|_| "{}".into());
    vec![
        Box::new(s.id.as_str()),
        Box::new(s.agent.as_str()),
        Box::new(s.mode.as_str()),
        Box::new(s.title.as_deref()),
        Box::new(s.cwd.as_deref()),
        Box::new(s.owner.as_ref().map(|o| o.as_str())),
        Box::new(s.status.as_str()),
        Box::new(overrides),
        Box::new(s.ttl_secs.map(|t| t.min(i64::MAX as u64) as i64)),
        Box::new(s.created_at.as_str()),
        Box::new(s.updated_at.as_str()),
        Box::new(s.last_active_at.as_str()),
        Box::new(s.message_count as i64),
        Box::new(s.round_count as i64),
        Box::new(s.usage.input_tokens as i64),
        Box::new(s.usage.output_tokens as i64),
        Box::new(s.last_seq as i64),
    ]
}

#[cfg(test)]
mod gather_tests {
    use super::*;
    use std::time::Duration;

    fn job(
        awaited: bool,
    ) -> (
        Job,
        Option<tokio::sync::oneshot::Receiver<Result<(), String>>>,
    ) {
        let (done, rx) = match awaited {
            true => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                (Some(tx), Some(rx))
            }
            false => (None, None),
        };
        let job = Job {
            ops: vec![Op::DiscardTurn(TurnId("t".into()))],
            done,
            _guard: None,
        };
        (job, rx)
    }

    #[test]
    fn a_write_someone_waits_for_ends_the_wait_for_more() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (first, _) = job(false);
        let (awaited, _keep) = job(true);
        tx.send(awaited).unwrap();
        // With an hour to gather, only the awaited job can end the wait: the
        // sender stays open and sends nothing more.
        let batch = gather(first, &rx, Duration::from_secs(3600));
        assert_eq!(batch.len(), 2);
        assert!(batch[1].done.is_some());
        drop(tx);
    }

    #[test]
    fn detached_writes_are_gathered_until_the_window_ends() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (first, _) = job(false);
        let sender = std::thread::spawn(move || {
            for _ in 0..3 {
                tx.send(job(false).0).unwrap();
            }
            // Kept open: the batch ends with the window, not with the channel.
            tx
        });
        let tx = sender.join().unwrap();
        let batch = gather(first, &rx, Duration::from_millis(1));
        assert_eq!(batch.len(), 4);
        drop(tx);
    }

    #[test]
    fn an_awaited_first_write_commits_with_what_is_queued_only() {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let (first, _keep) = job(true);
        let batch = gather(first, &rx, Duration::from_secs(3600));
        assert_eq!(batch.len(), 1);
        drop(tx);
    }
}
