//! Read queries, run on pooled connections from the blocking pool.

use crate::record::{MessageRecord, SessionRecord, UploadRecord};
use rusqlite::{params_from_iter, Connection, OptionalExtension, Row};
use sessiond_protocol::{Mode, Role, SessionId, SessionStatus, TuiId, Usage};

/// Filters and paging of a session listing (ordered newest `updated_at` first).
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// `Some(None)`: unowned only; `Some(Some(id))`: owned by `id`; `None`: any.
    pub owner: Option<Option<String>>,
    pub mode: Option<Mode>,
    pub status: Option<SessionStatus>,
    /// Keyset cursor: rows strictly after `(updated_at, id)` in listing order.
    pub after: Option<(String, String)>,
    pub limit: u32,
}

const SESSION_COLUMNS: &str = "id, agent, mode, title, cwd, owner, status, overrides, ttl_secs,
    created_at, updated_at, last_active_at, message_count, round_count, input_tokens,
    output_tokens, last_seq, seq_reserved";

fn session_from_row(r: &Row<'_>) -> Result<SessionRecord, rusqlite::Error> {
    let mode: String = r.get(2)?;
    let status: String = r.get(6)?;
    let overrides: String = r.get(7)?;
    Ok(SessionRecord {
        id: SessionId(r.get(0)?),
        agent: r.get(1)?,
        mode: Mode::parse(&mode).unwrap_or_default(),
        title: r.get(3)?,
        cwd: r.get(4)?,
        owner: r.get::<_, Option<String>>(5)?.map(TuiId),
        status: SessionStatus::parse(&status).unwrap_or(SessionStatus::Active),
        overrides: serde_json::from_str(&overrides).unwrap_or_default(),
        ttl_secs: r.get::<_, Option<i64>>(8)?.map(|t| t.max(0) as u64),
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
        last_active_at: r.get(11)?,
        message_count: r.get::<_, i64>(12)?.max(0) as u64,
        round_count: r.get::<_, i64>(13)?.max(0) as u64,
        usage: Usage {
            input_tokens: r.get::<_, i64>(14)?.max(0) as u64,
            output_tokens: r.get::<_, i64>(15)?.max(0) as u64,
        },
        last_seq: r.get::<_, i64>(16)?.max(0) as u64,
        seq_reserved: r.get::<_, i64>(17)?.max(0) as u64,
    })
}

pub fn get_session(
    c: &Connection,
    id: &SessionId,
) -> Result<Option<SessionRecord>, rusqlite::Error> {
    c.prepare_cached(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1"
    ))?
    .query_row([id.as_str()], session_from_row)
    .optional()
}

pub fn list_sessions(c: &Connection, q: &ListQuery) -> Result<Vec<SessionRecord>, rusqlite::Error> {
    let mut sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE 1=1");
    let mut args: Vec<String> = Vec::new();
    match &q.owner {
        Some(None) => sql.push_str(" AND owner IS NULL"),
        Some(Some(o)) => {
            args.push(o.clone());
            sql.push_str(&format!(" AND owner = ?{}", args.len()));
        }
        None => {}
    }
    if let Some(m) = q.mode {
        args.push(m.as_str().to_owned());
        sql.push_str(&format!(" AND mode = ?{}", args.len()));
    }
    if let Some(s) = q.status {
        args.push(s.as_str().to_owned());
        sql.push_str(&format!(" AND status = ?{}", args.len()));
    }
    if let Some((u, id)) = &q.after {
        args.push(u.clone());
        let a = args.len();
        args.push(id.clone());
        let b = args.len();
        sql.push_str(&format!(
            " AND (updated_at < ?{a} OR (updated_at = ?{a} AND id < ?{b}))"
        ));
    }
    sql.push_str(&format!(
        " ORDER BY updated_at DESC, id DESC LIMIT {}",
        q.limit
    ));
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args.iter()), session_from_row)?;
    rows.collect()
}

pub fn count_sessions(c: &Connection) -> Result<u64, rusqlite::Error> {
    c.query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get::<_, i64>(0))
        .map(|n| n.max(0) as u64)
}

pub fn max_generation(c: &Connection) -> Result<u64, rusqlite::Error> {
    c.query_row("SELECT COALESCE(MAX(generation), 0) FROM turns", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n.max(0) as u64)
}

pub fn prune_candidates(
    c: &Connection,
    before: Option<&str>,
    limit: u32,
) -> Result<Vec<SessionId>, rusqlite::Error> {
    let mut stmt = c.prepare_cached(
        "SELECT id FROM sessions WHERE seq_reserved <= last_seq
           AND (?1 IS NULL OR updated_at < ?1)
         ORDER BY updated_at, id LIMIT ?2",
    )?;
    let rows = stmt.query_map(rusqlite::params![before, limit as i64], |r| {
        Ok(SessionId(r.get(0)?))
    })?;
    rows.collect()
}

pub fn messages(
    c: &Connection,
    id: &SessionId,
    from: u64,
    limit: u32,
) -> Result<Vec<MessageRecord>, rusqlite::Error> {
    let mut stmt = c.prepare_cached(
        "SELECT idx, role, content, turn_id, created_at FROM messages
         WHERE session_id = ?1 AND idx >= ?2 ORDER BY idx LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        rusqlite::params![id.as_str(), from.min(i64::MAX as u64) as i64, limit as i64],
        |r| {
            let role: String = r.get(1)?;
            Ok(MessageRecord {
                session_id: id.clone(),
                index: r.get::<_, i64>(0)?.max(0) as u64,
                role: Role::parse(&role).unwrap_or(Role::Assistant),
                content: r.get(2)?,
                turn_id: r.get(3)?,
                created_at: r.get(4)?,
            })
        },
    )?;
    rows.collect()
}

pub fn uploads(c: &Connection, id: &SessionId) -> Result<Vec<UploadRecord>, rusqlite::Error> {
    let mut stmt = c.prepare_cached(
        "SELECT hash, name, mime_type, size_bytes, created_at FROM uploads
         WHERE session_id = ?1 ORDER BY created_at, hash",
    )?;
    let rows = stmt.query_map([id.as_str()], |r| {
        Ok(UploadRecord {
            session_id: id.clone(),
            hash: r.get(0)?,
            name: r.get(1)?,
            mime_type: r.get(2)?,
            size_bytes: r.get::<_, i64>(3)?.max(0) as u64,
            created_at: r.get(4)?,
        })
    })?;
    rows.collect()
}

pub fn recent_events(
    c: &Connection,
    id: &SessionId,
    limit: u32,
) -> Result<Vec<(u64, String)>, rusqlite::Error> {
    let mut stmt = c.prepare_cached(
        "SELECT seq, body FROM events WHERE session_id = ?1 ORDER BY seq DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(rusqlite::params![id.as_str(), limit as i64], |r| {
        Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get(1)?))
    })?;
    let mut out: Vec<(u64, String)> = rows.collect::<Result<_, _>>()?;
    out.reverse();
    Ok(out)
}

/// A value an agent keeps for a session.
pub fn agent_state(
    c: &Connection,
    id: &SessionId,
    key: &str,
) -> Result<Option<String>, rusqlite::Error> {
    c.prepare_cached("SELECT value FROM agent_state WHERE session_id = ?1 AND key = ?2")?
        .query_row(rusqlite::params![id.as_str(), key], |r| r.get(0))
        .optional()
}
