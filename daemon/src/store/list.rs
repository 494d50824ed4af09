//! `session/list` and `admin/sessions`: filters, newest `updated_at` first, keyset paging.

use super::entry::{info_from_record, Entry};
use super::{Store, StoreError};
use crate::persist::ListQuery;
use base64::Engine;
use sessiond_protocol::{Mode, SessionInfo, SessionStatus};

/// A resolved listing request.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// `Some(None)`: unowned only; `Some(Some(id))`: that owner; `None`: any.
    pub owner: Option<Option<String>>,
    pub mode: Option<Mode>,
    pub live: Option<bool>,
    pub status: Option<SessionStatus>,
    pub limit: u32,
    pub cursor: Option<String>,
    /// Exact `cwd`.
    pub cwd: Option<String>,
    /// Lowercased; matched against the lowercased title.
    pub title_contains: Option<String>,
}

impl ListFilter {
    /// The `cwd` and `title_contains` filters, which the listing applies to each
    /// record (the database orders and pages, these narrow).
    fn text_matches(&self, rec: &crate::record::SessionRecord) -> bool {
        self.cwd
            .as_ref()
            .is_none_or(|c| rec.cwd.as_deref() == Some(c.as_str()))
            && self.title_contains.as_ref().is_none_or(|t| {
                rec.title
                    .as_ref()
                    .is_some_and(|title| title.to_lowercase().contains(t.as_str()))
            })
    }
}

/// One page of a listing: its rows and the cursor of the next page, if any.
pub type Page<T> = (Vec<T>, Option<String>);

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

fn encode_cursor((updated_at, id): &(String, String)) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{updated_at}\n{id}"))
}

fn decode_cursor(c: &str) -> Result<(String, String), StoreError> {
    let bad = || StoreError::InvalidParams("invalid cursor".into());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (u, id) = text.split_once('\n').ok_or_else(bad)?;
    Ok((u.to_owned(), id.to_owned()))
}

impl Store {
    /// Lists sessions. The database is the source of the persisted fields; live
    /// entries add running state.
    pub async fn list(
        &self,
        f: ListFilter,
    ) -> Result<(Vec<SessionInfo>, Option<String>), StoreError> {
        let limit = f.limit.clamp(1, MAX_LIMIT);
        let mut after = match &f.cursor {
            Some(c) => Some(decode_cursor(c)?),
            None => None,
        };
        if let Some(page) = self.list_from_memory(&f, limit, after.as_ref()) {
            return Ok(page);
        }
        let mut out = Vec::with_capacity(limit as usize);
        let mut last_emitted: Option<(String, String)> = None;
        // Pages of the database listing, filtered by residency here when asked.
        'scan: loop {
            let batch = self
                .db
                .list_sessions(ListQuery {
                    owner: f.owner.clone(),
                    mode: f.mode,
                    status: f.status,
                    after: after.clone(),
                    limit: limit + 1,
                })
                .await?;
            let exhausted = batch.len() <= limit as usize;
            for rec in batch {
                let key = (rec.updated_at.clone(), rec.id.0.clone());
                after = Some(key.clone());
                if !f.text_matches(&rec) {
                    continue;
                }
                let info = match self.sessions.get(&rec.id) {
                    Some(e) => e.info(),
                    None => info_from_record(&rec, false, None, 0, 0),
                };
                if f.live.is_some_and(|l| l != info.live) {
                    continue;
                }
                if out.len() == limit as usize {
                    // There is at least one more match: hand out a cursor.
                    let next = last_emitted.as_ref().map(encode_cursor);
                    return Ok((out, next));
                }
                last_emitted = Some(key);
                out.push(info);
            }
            if exhausted {
                break 'scan;
            }
        }
        Ok((out, None))
    }

    /// The listing straight from the live entries, when every stored session is live
    /// (the database would add nothing): no query, no hop to the blocking pool.
    /// `None` when some stored session is not live, and the database has to answer.
    ///
    /// "Every stored session is live" is `total == live`: `total` goes up after a
    /// session's row is committed and before it is made live, and down after its row
    /// is deleted, which happens after it stopped being live; a session that is
    /// stored but not live therefore always makes `total` larger than `live`. A
    /// retention pass recounts `total` from the database concurrently with new
    /// sessions, so with retention on the database always answers.
    fn list_from_memory(
        &self,
        f: &ListFilter,
        limit: u32,
        after: Option<&(String, String)>,
    ) -> Option<(Vec<SessionInfo>, Option<String>)> {
        self.memory_page(f, limit, after, Entry::info)
    }

    /// The memory listing of a filter (limit and cursor resolved here), each row made
    /// by `row`; `Ok(None)` when the database has to answer.
    pub(crate) fn list_live_with<T>(
        &self,
        f: &ListFilter,
        row: impl Fn(&Entry) -> T,
    ) -> Result<Option<Page<T>>, StoreError> {
        let limit = f.limit.clamp(1, MAX_LIMIT);
        let after = match &f.cursor {
            Some(c) => Some(decode_cursor(c)?),
            None => None,
        };
        Ok(self.memory_page(f, limit, after.as_ref(), row))
    }

    fn memory_page<T>(
        &self,
        f: &ListFilter,
        limit: u32,
        after: Option<&(String, String)>,
        row: impl Fn(&Entry) -> T,
    ) -> Option<Page<T>> {
        let r = &self.cfg.retention;
        if r.max_sessions > 0 || r.max_age_days > 0 || f.live == Some(false) {
            return None;
        }
        if self.total_count() != self.sessions.len() as u64 {
            return None;
        }
        // Listing order: newest `updated_at` first, then `session_id` descending.
        let mut keys: Vec<(String, String)> = self
            .sessions
            .iter()
            .filter(|e| {
                let rec = &e.rec;
                let owner_ok = match &f.owner {
                    None => true,
                    Some(None) => rec.owner.is_none(),
                    Some(Some(o)) => rec.owner.as_ref().is_some_and(|t| t.0 == *o),
                };
                owner_ok
                    && f.text_matches(rec)
                    && f.mode.is_none_or(|m| m == rec.mode)
                    && f.status.is_none_or(|s| s == rec.status)
                    && after.is_none_or(|(u, id)| {
                        rec.updated_at < *u || (rec.updated_at == *u && e.key().0 < *id)
                    })
            })
            .map(|e| (e.rec.updated_at.clone(), e.key().0.clone()))
            .collect();
        let newest_first = |a: &(String, String), b: &(String, String)| b.cmp(a);
        let want = limit as usize;
        if keys.len() > want + 1 {
            keys.select_nth_unstable_by(want, newest_first);
            keys.truncate(want + 1);
        }
        keys.sort_unstable_by(newest_first);
        let more = keys.len() > want;
        keys.truncate(want);
        let mut out = Vec::with_capacity(keys.len());
        for (_, id) in &keys {
            // An entry unloaded since the scan is skipped, as the database listing
            // would show it without live state a moment later.
            if let Some(e) = self.sessions.get(&sessiond_protocol::SessionId(id.clone())) {
                out.push(row(&e));
            }
        }
        let next = if more {
            keys.last().map(encode_cursor)
        } else {
            None
        };
        Some((out, next))
    }
}
