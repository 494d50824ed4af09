//! `session/list` and `admin/sessions`: filters, newest `updated_at` first, keyset paging.

use super::entry::info_from_record;
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
}

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
}
