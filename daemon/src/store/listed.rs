//! A live session's `SessionInfo` as JSON text, kept for listings until anything it
//! was made from changes. Serialising 200 sessions was most of what a `session/list`
//! cost the daemon (callgrind, docs/benchmarks.md); with the text kept, a listing
//! copies it. The cache is checked, not trusted: each use compares the record and the
//! running state the text was made from with the entry's current ones, so no change
//! anywhere in the store can leave a stale row (a change only costs one
//! re-serialisation).

use super::entry::Entry;
use super::{Store, StoreError};
use crate::record::SessionRecord;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use sessiond_protocol::{SessionInfo, TurnInfo};
use std::sync::Arc;

/// One session's JSON text in a listing.
#[derive(Debug, Clone)]
pub struct InfoJson(Arc<RawValue>);

impl InfoJson {
    /// The text of `info` (serialising a `SessionInfo` cannot fail: string keys only,
    /// and a non-finite float is written as `null`).
    pub fn of(info: &SessionInfo) -> Result<InfoJson, StoreError> {
        serde_json::value::to_raw_value(info)
            .map(|raw| InfoJson(Arc::from(raw)))
            .map_err(|e| StoreError::Internal(format!("cannot serialise a session: {e}")))
    }

    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl Serialize for InfoJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// The running state `SessionInfo` adds to the record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LiveState {
    pub turn: Option<TurnInfo>,
    pub queued_turns: u32,
    pub pending_requests: u32,
    pub watchers: u32,
}

/// What a cached text was made from, and the text.
#[derive(Debug)]
pub struct Listed {
    rec: SessionRecord,
    state: LiveState,
    json: InfoJson,
}

impl Entry {
    /// This entry's `SessionInfo` as JSON text: the kept text when the record and the
    /// running state are still those it was made from, else made (and kept) anew.
    pub fn info_json(&self) -> Result<InfoJson, StoreError> {
        let state = self.live_state();
        let mut slot = self.listed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = slot.as_deref() {
            if l.state == state && l.rec == self.rec {
                return Ok(l.json.clone());
            }
        }
        let json = InfoJson::of(&Entry::info_from(&self.rec, state.clone()))?;
        *slot = Some(Box::new(Listed {
            rec: self.rec.clone(),
            state,
            json: json.clone(),
        }));
        Ok(json)
    }
}

impl Store {
    /// [`Store::list`] as JSON text per session: from the live entries' kept texts when
    /// every stored session is live, else the database listing serialised.
    pub async fn list_json(
        &self,
        f: super::ListFilter,
    ) -> Result<(Vec<InfoJson>, Option<String>), StoreError> {
        if let Some((rows, next)) = self.list_live_with(&f, Entry::info_json)? {
            let rows = rows.into_iter().collect::<Result<Vec<_>, _>>()?;
            return Ok((rows, next));
        }
        let (infos, next) = self.list(f).await?;
        let rows = infos
            .iter()
            .map(InfoJson::of)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((rows, next))
    }
}
