//! Writes a live session's events to its history, behind its hub. Chunk events
//! (and the reply text they carry, kept as the running turn's partial reply) are
//! coalesced into one database job per [`FLUSH_EVERY`] or [`FLUSH_BYTES`], checked
//! when the agent yields; every other event flushes at once (with what was buffered). What a session has queued to the writer is bounded ([`BACKLOG_LIMIT`]):
//! past it, the session's turn is not polled until the writer caught up, so a fast
//! agent slows only its own turn, never other sessions' writes.

use super::SEQ_BLOCK;
use crate::events::Published;
use crate::persist::{Db, Op};
use futures::future::BoxFuture;
use sessiond_protocol::{Event, TurnId};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Bytes of event history a session may have queued to the database writer.
pub const BACKLOG_LIMIT: usize = 1 << 20;
/// Buffered chunk bytes that force a flush even while the agent keeps going.
const FLUSH_BYTES: usize = 64 << 10;
/// How long chunks may wait in the buffer when the agent yields (a crash loses at
/// most about this much of a streamed reply, besides what the writer had queued).
const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// Bytes queued and not yet committed.
#[derive(Default)]
struct Backlog {
    bytes: AtomicUsize,
    notify: Notify,
}

/// Released when the writer is done with a job.
struct Credit {
    backlog: Arc<Backlog>,
    bytes: usize,
}

impl Drop for Credit {
    fn drop(&mut self) {
        self.backlog.bytes.fetch_sub(self.bytes, Ordering::AcqRel);
        self.backlog.notify.notify_waiters();
    }
}

struct Buffer {
    ops: Vec<Op>,
    bytes: usize,
    flushed_at: Instant,
}

/// One live session's event writer (shared by its hub's sink and its entry).
pub struct EventWriter {
    db: Db,
    keep: u64,
    /// The durable seq reservation this residency holds.
    held: AtomicU64,
    buffer: Mutex<Buffer>,
    backlog: Arc<Backlog>,
}

impl EventWriter {
    pub fn new(db: Db, keep: u64, reserved: u64) -> EventWriter {
        EventWriter {
            db,
            keep,
            held: AtomicU64::new(reserved),
            buffer: Mutex::new(Buffer {
                ops: Vec::new(),
                bytes: 0,
                flushed_at: Instant::now(),
            }),
            backlog: Arc::default(),
        }
    }

    fn buffer(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a published event: appended to the history, keeping the durable seq
    /// reservation at least half a block ahead; the final `session_closed` gives the
    /// unused reservation back.
    pub fn on_event(&self, env: &Published) {
        // The hub's serialisation, shared with the subscribers.
        let Some(body) = env.json().map(|j| j.get().to_owned()) else {
            return;
        };
        let mut buf = self.buffer();
        if env.seq + SEQ_BLOCK / 2 > self.held.load(Ordering::Acquire) {
            let upto = env.seq + SEQ_BLOCK;
            if self.held.fetch_max(upto, Ordering::AcqRel) < upto {
                buf.ops.push(Op::ReserveSeq {
                    session_id: env.session_id.clone(),
                    upto,
                    strict: false,
                });
            }
        }
        buf.bytes += body.len();
        let coalesce = match &env.event {
            Event::AgentMessageChunk { turn_id, text } => {
                push_partial(&mut buf.ops, turn_id, env.seq, text);
                buf.bytes += text.len();
                true
            }
            Event::AgentThoughtChunk { .. } => true,
            _ => false,
        };
        push_event(&mut buf.ops, env, body, self.keep);
        if matches!(env.event, Event::SessionClosed { .. }) {
            buf.ops.push(Op::ReleaseSeq {
                session_id: env.session_id.clone(),
                last: env.seq,
                held: Some(self.held.load(Ordering::Acquire)),
            });
        }
        if !coalesce || buf.bytes >= FLUSH_BYTES {
            self.flush_locked(&mut buf);
        }
    }

    /// Queues whatever is buffered.
    pub fn flush(&self) {
        let mut buf = self.buffer();
        self.flush_locked(&mut buf);
    }

    fn flush_locked(&self, buf: &mut Buffer) {
        if buf.ops.is_empty() {
            return;
        }
        let ops = std::mem::take(&mut buf.ops);
        let bytes = std::mem::take(&mut buf.bytes);
        buf.flushed_at = Instant::now();
        self.backlog.bytes.fetch_add(bytes, Ordering::AcqRel);
        let credit = Credit {
            backlog: self.backlog.clone(),
            bytes,
        };
        self.db.write_detached_with(ops, Some(Box::new(credit)));
    }

    /// Bytes queued to the writer and not yet committed.
    pub fn backlog(&self) -> usize {
        self.backlog.bytes.load(Ordering::Acquire)
    }

    /// Flushes when the buffer is old enough; then `None` when the backlog has room,
    /// else a future that resolves once it has. Called each time the turn's agent
    /// yields.
    pub fn full(&self) -> Option<BoxFuture<'static, ()>> {
        {
            let mut buf = self.buffer();
            if buf.flushed_at.elapsed() >= FLUSH_EVERY {
                self.flush_locked(&mut buf);
            }
        }
        if self.backlog() <= BACKLOG_LIMIT {
            return None;
        }
        let backlog = self.backlog.clone();
        Some(Box::pin(async move {
            loop {
                let notified = backlog.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if backlog.bytes.load(Ordering::Acquire) <= BACKLOG_LIMIT {
                    return;
                }
                notified.await;
            }
        }))
    }
}

/// Adds an event to the buffered job: to the last op when that appends events of the
/// same session (one `last_seq` update and trim per run of events), else as a new op.
fn push_event(ops: &mut Vec<Op>, env: &Published, body: String, keep: u64) {
    if let Some(Op::AppendEvents {
        session_id, events, ..
    }) = ops.last_mut()
    {
        if *session_id == env.session_id {
            events.push((env.seq, body));
            return;
        }
    }
    ops.push(Op::AppendEvents {
        session_id: env.session_id.clone(),
        events: vec![(env.seq, body)],
        keep,
    });
}

/// Adds reply text to the buffered partial reply of `turn_id` (one piece per flush).
fn push_partial(ops: &mut Vec<Op>, turn_id: &TurnId, seq: u64, text: &str) {
    for op in ops.iter_mut().rev() {
        if let Op::TurnPartial {
            turn_id: t,
            seq: s,
            text: acc,
        } = op
        {
            if t == turn_id {
                acc.push_str(text);
                *s = seq;
                return;
            }
        }
    }
    ops.push(Op::TurnPartial {
        turn_id: turn_id.clone(),
        seq,
        text: text.to_owned(),
    });
}
