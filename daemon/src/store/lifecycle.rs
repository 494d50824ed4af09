//! Creating, loading, closing, killing, deleting and expiring sessions. Every change
//! of residency holds the session's gate (`residency.rs`); every change of a live
//! session is a transition run by `Store::step`.

use super::entry::info_from_record;
use super::session_fsm::Retire;
use super::{Caller, Store, StoreError};
use crate::persist::Op;
use crate::record::SessionRecord;
use crate::util::{now_rfc3339, parse_time, random_id};
use sessiond_protocol::params::NewSessionParams;
use sessiond_protocol::{
    Event, EventEnvelope, Evicted, SessionId, SessionInfo, SessionStatus, TurnId, Usage,
};
use std::sync::Arc;

/// The longest TTL accepted (100 years): longer ones are refused, and a configured
/// default is capped to it, so no timestamp arithmetic can overflow.
pub const MAX_TTL_SECS: u64 = 100 * 365 * 24 * 3600;

impl Store {
    /// `session/new`.
    pub async fn create(
        self: &Arc<Self>,
        caller: &Caller,
        p: NewSessionParams,
    ) -> Result<(SessionInfo, Vec<Evicted>), StoreError> {
        self.check_running()?;
        let agent = p.agent.unwrap_or_else(|| self.cfg.default_agent.clone());
        self.agents
            .get(&agent)
            .map_err(|e| StoreError::AgentUnavailable(e.to_string()))?;
        let overrides = match p.overrides {
            Some(o) => super::overrides::validate_full(&o, &self.agents)?,
            None => Default::default(),
        };
        let title = p
            .title
            .as_deref()
            .map(super::rename::check_title)
            .transpose()?;
        if let Some(cwd) = &p.cwd {
            if !cwd.starts_with('/') {
                return Err(StoreError::InvalidParams(
                    "cwd must be an absolute path".into(),
                ));
            }
        }
        if p.ttl_secs == Some(0) {
            return Err(StoreError::InvalidParams(
                "ttl_secs must be at least 1".into(),
            ));
        }
        if p.ttl_secs.is_some_and(|t| t > MAX_TTL_SECS) {
            return Err(StoreError::InvalidParams(format!(
                "ttl_secs must be at most {MAX_TTL_SECS}"
            )));
        }
        let mode = p.mode.unwrap_or_default();
        // Evict first so the new session can take a freed slot.
        let evicted = if p.keep_siblings.unwrap_or(false) {
            Vec::new()
        } else {
            self.evict_siblings(caller, mode, None).await
        };
        self.reserve_live_slot()?;
        let now = now_rfc3339();
        let rec = SessionRecord {
            id: SessionId(random_id("ses_", 16)),
            agent,
            mode,
            title,
            cwd: p.cwd,
            owner: caller.tui.clone(),
            status: SessionStatus::Created,
            overrides,
            ttl_secs: p.ttl_secs,
            created_at: now.clone(),
            updated_at: now.clone(),
            last_active_at: now,
            message_count: 0,
            round_count: 0,
            usage: Usage::default(),
            last_seq: 0,
            seq_reserved: super::SEQ_BLOCK,
        };
        let reserve = Op::ReserveSeq {
            session_id: rec.id.clone(),
            upto: rec.seq_reserved,
            strict: true,
        };
        if let Err(e) = self
            .db
            .write(vec![Op::InsertSession(rec.clone()), reserve])
            .await
        {
            self.release_live_slot();
            return Err(e.into());
        }
        self.total
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = rec.id.clone();
        self.insert_live(rec, Vec::new())?;
        let info = self.get(&id).await?;
        Ok((info, evicted))
    }

    /// Makes a session live, loading it from the database if needed.
    pub(crate) async fn ensure_live(&self, id: &SessionId) -> Result<(), StoreError> {
        self.ensure_live_for(None, id).await
    }

    /// As [`Store::ensure_live`], for a change `caller` asks for: a session the caller
    /// may not change is not loaded (a refused call changes nothing).
    pub(crate) async fn ensure_live_for(
        &self,
        caller: Option<&Caller>,
        id: &SessionId,
    ) -> Result<(), StoreError> {
        if self.sessions.get(id).is_some_and(|e| !e.retiring) {
            return Ok(());
        }
        self.check_running()?;
        // Waits for a teardown in progress, then sees what it left.
        let _gate = self.gate(id).await;
        if self.sessions.contains_key(id) {
            return Ok(());
        }
        self.make_live(id, |rec| match caller {
            Some(c) if !c.may_mutate(rec.owner.as_ref()) => Err(StoreError::NotOwned(id.clone())),
            _ => Ok(()),
        })
        .await
    }

    /// Loads a stored session (the caller holds its gate and it is not live), if
    /// `check` accepts its record.
    async fn make_live(
        &self,
        id: &SessionId,
        check: impl FnOnce(&SessionRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let rec = self
            .db
            .get_session(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        let mut rec = self.expire_if_due(rec).await?;
        if rec.status.is_terminal() {
            return Err(StoreError::Terminated(id.clone(), rec.status));
        }
        check(&rec)?;
        let history = self.load_history(&rec).await;
        self.reserve_live_slot()?;
        if let Err(e) = self.reserve_seqs(&mut rec).await {
            self.release_live_slot();
            return Err(e);
        }
        self.insert_live(rec, history)
    }

    async fn load_history(&self, rec: &SessionRecord) -> Vec<EventEnvelope> {
        // The newest events by count, not by seq range: seqs skipped after a crash
        // (see docs/persistence.md) must not push older events out of the window.
        let window = self.cfg.event_window.min(u32::MAX as usize) as u32;
        match self.db.recent_events(&rec.id, window).await {
            // A `session_closed` ends a subscription. The one that ended the latest
            // residency is replayed (a client that missed it learns its stream ended);
            // older ones, followed by later events, would cut a replay short and are
            // left out of the window (they stay in the database).
            Ok(rows) => {
                let last = rows.last().map(|(seq, _)| *seq);
                rows.into_iter()
                    .filter_map(|(_, body)| serde_json::from_str::<EventEnvelope>(&body).ok())
                    .filter(|env| {
                        Some(env.seq) == last || !matches!(env.event, Event::SessionClosed { .. })
                    })
                    .collect()
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read event history");
                Vec::new()
            }
        }
    }

    /// `session/load`: make live, claim or take over, evict same-mode siblings.
    /// The ownership check is part of the step that changes the owner (and of the
    /// load itself, under the session's gate): of racing loads exactly one wins.
    pub async fn load(
        self: &Arc<Self>,
        caller: &Caller,
        id: &SessionId,
        take_over: bool,
        keep_siblings: bool,
    ) -> Result<(SessionInfo, Vec<Evicted>), StoreError> {
        self.check_running()?;
        let may_load = |owner: Option<&sessiond_protocol::TuiId>| {
            owner.is_none() || owner == caller.tui.as_ref() || take_over
        };
        // Refused early (nothing evicted) when it cannot succeed; decided below.
        let live = self
            .sessions
            .get(id)
            .map(|e| (e.rec.mode, e.rec.owner.clone()));
        let mode = match live {
            Some((mode, owner)) => {
                if !may_load(owner.as_ref()) {
                    return Err(StoreError::NotOwned(id.clone()));
                }
                mode
            }
            None => {
                let rec = self
                    .db
                    .get_session(id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(id.clone()))?;
                if rec.status.is_terminal() {
                    return Err(StoreError::Terminated(id.clone(), rec.status));
                }
                if !may_load(rec.owner.as_ref()) {
                    return Err(StoreError::NotOwned(id.clone()));
                }
                rec.mode
            }
        };
        let evicted = if keep_siblings {
            Vec::new()
        } else {
            self.evict_siblings(caller, mode, Some(id)).await
        };
        {
            let _gate = self.gate(id).await;
            self.check_running()?;
            if !self.sessions.contains_key(id) {
                self.make_live(id, |rec| {
                    if may_load(rec.owner.as_ref()) {
                        Ok(())
                    } else {
                        Err(StoreError::NotOwned(id.clone()))
                    }
                })
                .await?;
            }
            let (moved, pending) = self.step(id, |e| e.claim(caller, take_over))?;
            if let Some(previous) = moved {
                self.unindex_owner(previous.as_ref(), id);
                self.index_owner(caller.tui.as_ref(), id);
                if let Err(e) = self.settle(pending).await {
                    self.unindex_owner(caller.tui.as_ref(), id);
                    self.index_owner(previous.as_ref(), id);
                    return Err(e);
                }
            }
        }
        Ok((self.get(id).await?, evicted))
    }

    /// `session/get`: never waits for a running turn.
    pub async fn get(&self, id: &SessionId) -> Result<SessionInfo, StoreError> {
        if let Some(e) = self.sessions.get(id) {
            return Ok(e.info());
        }
        let rec = self
            .db
            .get_session(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        let rec = self.expire_if_due(rec).await?;
        Ok(info_from_record(&rec, false, None, 0, 0))
    }

    /// Marks a non-live session expired when its TTL has passed (lazily, on access).
    async fn expire_if_due(&self, mut rec: SessionRecord) -> Result<SessionRecord, StoreError> {
        if rec.status.is_terminal() || !self.ttl_passed(&rec) {
            return Ok(rec);
        }
        rec.status = SessionStatus::Expired;
        rec.updated_at = now_rfc3339();
        self.db.write(vec![Op::UpdateSession(rec.clone())]).await?;
        Ok(rec)
    }

    fn ttl_of(&self, rec: &SessionRecord) -> Option<u64> {
        rec.ttl_secs.or(match self.limits.session_ttl_secs() {
            0 => None,
            n => Some(n),
        })
    }

    fn ttl_passed(&self, rec: &SessionRecord) -> bool {
        let Some(ttl) = self.ttl_of(rec) else {
            return false;
        };
        let Some(last) = parse_time(&rec.last_active_at) else {
            return false;
        };
        // Checked all the way: a TTL past the calendar's end never expires.
        let secs = i64::try_from(ttl.min(MAX_TTL_SECS)).unwrap_or(i64::MAX);
        let deadline = chrono::Duration::try_seconds(secs).and_then(|d| last.checked_add_signed(d));
        deadline.is_some_and(|d| chrono::Utc::now() >= d)
    }

    /// Expires idle live sessions past their TTL. Called about once a second.
    pub async fn sweep_expired(self: &Arc<Self>) {
        let due: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|e| e.is_idle() && !e.retiring && self.ttl_passed(&e.rec))
            .map(|e| e.key().clone())
            .collect();
        for id in due {
            // A session whose residency is changing right now is left for later.
            let Some(_gate) = self.try_gate(&id) else {
                continue;
            };
            if let Err(e) = self.retire(&id, Retire::Expire, None).await {
                tracing::debug!(error = %e, "expiry skipped");
            }
        }
    }

    /// `session/close`: cancel the running turn (cause `session_removed`), drop the
    /// queue, unload. Closing a session that is not live is a no-op.
    pub async fn close(
        self: &Arc<Self>,
        caller: &Caller,
        id: &SessionId,
    ) -> Result<Option<TurnId>, StoreError> {
        let _gate = self.gate(id).await;
        if !self.sessions.contains_key(id) {
            self.check_owner(caller, id).await?;
            return Ok(None);
        }
        self.retire(id, Retire::Close, Some(caller)).await
    }

    /// `session/delete`: as close, then remove transcript, turns, uploads and record.
    pub async fn delete(
        self: &Arc<Self>,
        caller: &Caller,
        id: &SessionId,
    ) -> Result<(), StoreError> {
        let _gate = self.gate(id).await;
        if self.sessions.contains_key(id) {
            self.retire(id, Retire::Delete, Some(caller)).await?;
        } else {
            self.check_owner(caller, id).await?;
        }
        self.db.write(vec![Op::DeleteSession(id.clone())]).await?;
        self.total
            .fetch_update(
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
                |n| n.checked_sub(1),
            )
            .ok();
        Ok(())
    }

    /// `admin/kill`: writes `killed` durably first, then fires the token (cause
    /// `admin_kill`), ends queued turns and unloads. Under the session's gate, so no
    /// load can bring it back. Returns whether it was killed now and the cancelled turn.
    pub async fn kill(
        self: &Arc<Self>,
        id: &SessionId,
    ) -> Result<(bool, Option<TurnId>), StoreError> {
        let _gate = self.gate(id).await;
        if self.sessions.contains_key(id) {
            let turn = self.retire(id, Retire::Kill, None).await?;
            return Ok((true, turn));
        }
        let mut rec = self
            .db
            .get_session(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        if rec.status == SessionStatus::Killed {
            return Ok((false, None));
        }
        rec.status = SessionStatus::Killed;
        rec.updated_at = now_rfc3339();
        self.db.write(vec![Op::UpdateSession(rec)]).await?;
        Ok((true, None))
    }

    /// Refuses new prompts from now on (a stop is coming, e.g. `admin/shutdown`'s
    /// grace period); running and queued turns go on.
    pub fn drain(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Ownership check for a change to a session that is not live.
    pub(crate) async fn check_owner(
        &self,
        caller: &Caller,
        id: &SessionId,
    ) -> Result<(), StoreError> {
        let owner = match self.sessions.get(id) {
            Some(e) => e.rec.owner.clone(),
            None => {
                self.db
                    .get_session(id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(id.clone()))?
                    .owner
            }
        };
        if caller.may_mutate(owner.as_ref()) {
            Ok(())
        } else {
            Err(StoreError::NotOwned(id.clone()))
        }
    }
}

/// The first line of a prompt, cut to 60 characters on a character boundary.
pub fn cut_title(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    line.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::cut_title;

    #[test]
    fn title_is_first_line_cut_on_char_boundary() {
        assert_eq!(cut_title("hello\nworld"), "hello");
        assert_eq!(cut_title("\n  second line first  \nx"), "second line first");
        let long: String = "é".repeat(100);
        assert_eq!(cut_title(&long).chars().count(), 60);
    }
}
