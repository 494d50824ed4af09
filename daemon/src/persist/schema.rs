//! Schema versions and migrations (tracked in `PRAGMA user_version`), and connection setup.

use rusqlite::Connection;
use sessiond_config::Durability;
use std::path::Path;
use std::time::Duration;

/// Migrations in order; entry `i` moves the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: sessions, transcript, turns (the audit trail), upload index, event history.
    "CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        mode TEXT NOT NULL,
        title TEXT,
        cwd TEXT,
        owner TEXT,
        status TEXT NOT NULL,
        overrides TEXT NOT NULL,
        ttl_secs INTEGER,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        last_active_at TEXT NOT NULL,
        message_count INTEGER NOT NULL DEFAULT 0,
        round_count INTEGER NOT NULL DEFAULT 0,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        last_seq INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX sessions_by_updated ON sessions(updated_at DESC, id DESC);
    CREATE INDEX sessions_by_owner ON sessions(owner, updated_at DESC);
    CREATE TABLE messages (
        session_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        turn_id TEXT,
        created_at TEXT NOT NULL,
        PRIMARY KEY (session_id, idx)
    ) WITHOUT ROWID;
    CREATE TABLE turns (
        turn_id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        generation INTEGER NOT NULL,
        prompt TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        stop_reason TEXT,
        cancel_cause TEXT,
        error TEXT,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX turns_by_session ON turns(session_id, started_at);
    CREATE INDEX turns_open ON turns(ended_at) WHERE ended_at IS NULL;
    CREATE TABLE uploads (
        session_id TEXT NOT NULL,
        hash TEXT NOT NULL,
        name TEXT NOT NULL,
        mime_type TEXT,
        size_bytes INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (session_id, hash)
    ) WITHOUT ROWID;
    CREATE INDEX uploads_by_hash ON uploads(hash);
    CREATE TABLE events (
        session_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (session_id, seq)
    ) WITHOUT ROWID;",
    // 2: event seqs reserved ahead of use (never reused after a crash, see
    // docs/persistence.md), and the real turn generation (indexed: it continues
    // across restarts).
    "ALTER TABLE sessions ADD COLUMN seq_reserved INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX sessions_seq_outstanding ON sessions(id) WHERE seq_reserved > last_seq;
    CREATE INDEX turns_by_generation ON turns(generation);",
    // 3: the reply a running turn has streamed so far, in pieces (kept by recovery
    // after a crash; removed when the turn ends).
    "CREATE TABLE partials (
        turn_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        text TEXT NOT NULL,
        PRIMARY KEY (turn_id, seq)
    ) WITHOUT ROWID;",
    // 4: what an agent keeps for a session across restarts (an ACP agent's session id).
    "CREATE TABLE agent_state (
        session_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (session_id, key)
    ) WITHOUT ROWID;",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Opens a connection with the daemon's settings: WAL, a busy timeout so readers
/// never fail while the writer commits, and the `synchronous` level of `durability`:
/// `NORMAL` for `crash` (a WAL commit reaches the OS before its reply and survives
/// `kill -9`), `FULL` for `power` (the log is fsynced at every commit).
pub fn open_connection_with(
    path: &Path,
    durability: Durability,
) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let level = match durability {
        Durability::Crash => "NORMAL",
        Durability::Power => "FULL",
    };
    // Before the switch to WAL: on a fresh file that switch is itself a write.
    conn.pragma_update(None, "synchronous", level)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    Ok(conn)
}

/// Brings the schema up to [`SCHEMA_VERSION`]. Every pending step runs in one
/// transaction (one commit, so a fresh data directory costs one log flush), and a
/// failure leaves the schema at the version it had. A database written by a newer
/// build is refused rather than misread.
pub fn migrate(conn: &mut Connection) -> Result<(), super::PersistError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(super::PersistError::TooNew {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    if current == SCHEMA_VERSION {
        return Ok(());
    }
    // IMMEDIATE, as every write of the daemon's connections (see `write::apply_batch`).
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for sql in MIGRATIONS.iter().skip(current.max(0) as usize) {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    tracing::info!(
        from = current,
        to = SCHEMA_VERSION,
        "database schema migrated"
    );
    Ok(())
}
