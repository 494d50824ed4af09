//! The embedded SQLite database: schema and migrations, one writer thread with group
//! commit, and a small pool of readers. Async code never blocks on SQLite.

mod faults;
mod fresh;
mod read;
mod recover;
mod schema;
#[cfg(test)]
mod tests;
mod write;

pub use read::ListQuery;
pub use recover::INTERRUPTED_ERROR;
pub use schema::SCHEMA_VERSION;
pub use write::Op;

use crate::record::{MessageRecord, SessionRecord, UploadRecord};
use rusqlite::Connection;
use sessiond_config::Durability;
use sessiond_protocol::{SessionId, TurnVerdict};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// The database file name inside the data directory.
pub const DB_FILE: &str = "sessiond.db";

/// Errors of the persistence layer.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database writer stopped")]
    WriterGone,
    #[error("database task failed")]
    Join,
    #[error("database write failed: {0}")]
    Write(String),
    #[error("the database has schema version {found}, newer than this build's {supported}")]
    TooNew { found: i64, supported: i64 },
}

struct Job {
    ops: Vec<Op>,
    done: Option<oneshot::Sender<Result<(), String>>>,
    /// Dropped once the job is committed (or failed): releases a caller's budget.
    _guard: Option<Box<dyn Send>>,
}

/// A queued write; await it for durability.
#[must_use = "await the commit where durability is promised"]
pub struct Commit(CommitState);

enum CommitState {
    Queued(oneshot::Receiver<Result<(), String>>),
    Done,
    Gone,
}

impl Commit {
    /// A commit with nothing to wait for (no writes were queued).
    pub fn done() -> Commit {
        Commit(CommitState::Done)
    }
}

impl std::future::Future for Commit {
    type Output = Result<(), PersistError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let rx = match &mut self.0 {
            CommitState::Queued(rx) => rx,
            CommitState::Done => return std::task::Poll::Ready(Ok(())),
            CommitState::Gone => return std::task::Poll::Ready(Err(PersistError::WriterGone)),
        };
        std::pin::Pin::new(rx).poll(cx).map(|r| match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(PersistError::Write(e)),
            Err(_) => Err(PersistError::WriterGone),
        })
    }
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Arc<DbInner>,
}

struct DbInner {
    tx: Mutex<Option<std::sync::mpsc::Sender<Job>>>,
    readers: Mutex<Vec<Connection>>,
    path: PathBuf,
    durability: Durability,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Fault injection for tests (see [`Db::fail_writes`], [`Db::pause_writes`]).
    #[cfg_attr(not(test), allow(dead_code))]
    faults: Arc<faults::Faults>,
}

/// What start-up recovery found and repaired.
#[derive(Debug, Default, Clone)]
pub struct Recovery {
    /// Turns that were running when the previous process died, now recorded as failed.
    pub interrupted: Vec<(SessionId, TurnVerdict)>,
    /// Sessions whose reserved but unstored seqs were skipped (a `resync` marker).
    pub seq_gaps: usize,
}

impl Db {
    /// Opens (creating if needed) the database in `data_dir`, runs migrations and
    /// start-up recovery, and starts the writer thread.
    pub fn open(data_dir: &Path, blobs_dir: &Path) -> Result<(Db, Recovery), PersistError> {
        Db::open_with(data_dir, blobs_dir, Durability::Power)
    }

    /// As [`Db::open`], committing at the given `durability` (the config key).
    pub fn open_with(
        data_dir: &Path,
        blobs_dir: &Path,
        durability: Durability,
    ) -> Result<(Db, Recovery), PersistError> {
        let path = data_dir.join(DB_FILE);
        fresh::create_if_missing(&path)?;
        let mut conn = schema::open_connection_with(&path, durability)?;
        // The writer's page cache may grow to 16 MiB (SQLite's default is 2 MiB):
        // a large group commit (a stop with thousands of live sessions) then neither
        // re-reads pages it evicted nor spills dirty pages to the log mid-transaction.
        // It is allocated as pages are touched, so an idle daemon does not pay it.
        conn.pragma_update(None, "cache_size", -16_384)?;
        schema::migrate(&mut conn)?;
        let recovery = recover::recover(&mut conn)?;
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let blobs = blobs_dir.to_path_buf();
        let faults = Arc::new(faults::Faults::from_env());
        let fail = faults.clone();
        let writer = std::thread::Builder::new()
            .name("sessiond-db".into())
            .spawn(move || write::writer_loop(conn, rx, blobs, fail))
            .map_err(|e| PersistError::Write(e.to_string()))?;
        // Readers are opened on first use and pooled: a start-up does not pay for
        // connections it may not need.
        let readers = Vec::new();
        let db = Db {
            inner: Arc::new(DbInner {
                tx: Mutex::new(Some(tx)),
                readers: Mutex::new(readers),
                path,
                durability,
                writer: Mutex::new(Some(writer)),
                faults,
            }),
        };
        Ok((db, recovery))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn send(&self, job: Job) -> Result<(), PersistError> {
        let guard = self.inner.tx.lock().map_err(|_| PersistError::WriterGone)?;
        let tx = guard.as_ref().ok_or(PersistError::WriterGone)?;
        tx.send(job).map_err(|_| PersistError::WriterGone)
    }

    /// Queues `ops` (one transaction) and returns a future that resolves once they
    /// are committed. Queuing is synchronous, so writes queued while holding a
    /// session's entry lock are committed in the order of that lock.
    pub fn submit(&self, ops: Vec<Op>) -> Commit {
        let (done, rx) = oneshot::channel();
        match self.send(Job {
            ops,
            done: Some(done),
            _guard: None,
        }) {
            Ok(()) => Commit(CommitState::Queued(rx)),
            Err(_) => Commit(CommitState::Gone),
        }
    }

    /// Writes `ops` in one transaction and returns once it is committed (durable).
    pub async fn write(&self, ops: Vec<Op>) -> Result<(), PersistError> {
        self.submit(ops).await
    }

    /// Queues `ops` without waiting for the commit (used for event history).
    pub fn write_detached(&self, ops: Vec<Op>) {
        self.write_detached_with(ops, None);
    }

    /// As [`Db::write_detached`]; `guard` is dropped once the write is done, which
    /// lets a writer bound how much it has queued.
    pub fn write_detached_with(&self, ops: Vec<Op>, guard: Option<Box<dyn Send>>) {
        if let Err(e) = self.send(Job {
            ops,
            done: None,
            _guard: guard,
        }) {
            tracing::warn!(error = %e, "dropping a detached database write");
        }
    }

    /// Test hook: while set, every write fails as a full disk would make it fail.
    #[cfg(test)]
    pub fn fail_writes(&self, on: bool) {
        self.inner
            .faults
            .failing
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Test hook: while set, the writer commits nothing (a stalled disk).
    #[cfg(test)]
    pub fn pause_writes(&self, on: bool) {
        self.inner
            .faults
            .paused
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Stops the writer after every queued write is committed.
    pub fn close(&self) {
        if let Ok(mut tx) = self.inner.tx.lock() {
            tx.take();
        }
        let handle = self.inner.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    /// Runs a read on a pooled connection on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, PersistError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner.readers.lock().ok().and_then(|mut p| p.pop());
            let conn = match conn {
                Some(c) => c,
                None => schema::open_connection_with(&inner.path, inner.durability)?,
            };
            let out = f(&conn);
            if let Ok(mut pool) = inner.readers.lock() {
                pool.push(conn);
            }
            Ok(out?)
        })
        .await
        .map_err(|_| PersistError::Join)?
    }

    pub async fn get_session(&self, id: &SessionId) -> Result<Option<SessionRecord>, PersistError> {
        let id = id.clone();
        self.read(move |c| read::get_session(c, &id)).await
    }

    pub async fn list_sessions(&self, q: ListQuery) -> Result<Vec<SessionRecord>, PersistError> {
        self.read(move |c| read::list_sessions(c, &q)).await
    }

    pub async fn count_sessions(&self) -> Result<u64, PersistError> {
        self.read(read::count_sessions).await
    }

    /// The highest turn generation stored (0: none).
    pub async fn max_generation(&self) -> Result<u64, PersistError> {
        self.read(read::max_generation).await
    }

    /// Retention: up to `limit` sessions nobody holds a seq reservation for, oldest
    /// `updated_at` first, only those updated before `before` when given.
    pub async fn prune_candidates(
        &self,
        before: Option<String>,
        limit: u32,
    ) -> Result<Vec<SessionId>, PersistError> {
        self.read(move |c| read::prune_candidates(c, before.as_deref(), limit))
            .await
    }

    pub async fn messages(
        &self,
        id: &SessionId,
        from: u64,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, PersistError> {
        let id = id.clone();
        self.read(move |c| read::messages(c, &id, from, limit))
            .await
    }

    pub async fn uploads(&self, id: &SessionId) -> Result<Vec<UploadRecord>, PersistError> {
        let id = id.clone();
        self.read(move |c| read::uploads(c, &id)).await
    }

    /// A value an agent keeps for a session (see [`Op::SetAgentState`]).
    pub async fn agent_state(
        &self,
        id: &SessionId,
        key: &str,
    ) -> Result<Option<String>, PersistError> {
        let id = id.clone();
        let key = key.to_owned();
        self.read(move |c| read::agent_state(c, &id, &key)).await
    }

    /// The newest `limit` events of a session, oldest first.
    pub async fn recent_events(
        &self,
        id: &SessionId,
        limit: u32,
    ) -> Result<Vec<(u64, String)>, PersistError> {
        let id = id.clone();
        self.read(move |c| read::recent_events(c, &id, limit)).await
    }
}
