//! Creating, loading, evicting, closing, killing, deleting and expiring sessions.

use super::entry::{info_from_record, QueuedTurn};
use super::record::SessionRecord;
use super::{Caller, Store, StoreError};
use crate::persist::Op;
use crate::util::{now_rfc3339, parse_time, random_id};
use sessiond_protocol::params::NewSessionParams;
use sessiond_protocol::{
    CancelCause, CloseReason, Event, EventEnvelope, Evicted, Mode, SessionId, SessionInfo,
    SessionStatus, StopReason, TurnId, TurnVerdict, Usage,
};
use std::sync::Arc;
use std::time::Duration;

/// What retiring a live entry takes away and why.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Retire {
    Close,
    Kill,
    Delete,
    Shutdown,
    Expire,
}

impl Retire {
    fn cause(self) -> CancelCause {
        match self {
            Retire::Close | Retire::Delete | Retire::Expire => CancelCause::SessionRemoved,
            Retire::Kill => CancelCause::AdminKill,
            Retire::Shutdown => CancelCause::Shutdown,
        }
    }

    /// The `session_closed` reason; `None` for a daemon stop, which does not close
    /// the session and publishes nothing.
    fn reason(self) -> Option<CloseReason> {
        match self {
            Retire::Close => Some(CloseReason::Closed),
            Retire::Kill => Some(CloseReason::Killed),
            Retire::Delete => Some(CloseReason::Deleted),
            Retire::Expire => Some(CloseReason::Expired),
            Retire::Shutdown => None,
        }
    }
}

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
        if self.sessions.contains_key(id) {
            return Ok(());
        }
        self.check_running()?;
        let rec = self
            .db
            .get_session(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        let rec = self.expire_if_due(rec).await?;
        if rec.status.is_terminal() {
            return Err(StoreError::Terminated(id.clone(), rec.status));
        }
        let mut rec = rec;
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
    pub async fn load(
        self: &Arc<Self>,
        caller: &Caller,
        id: &SessionId,
        take_over: bool,
        keep_siblings: bool,
    ) -> Result<(SessionInfo, Vec<Evicted>), StoreError> {
        self.check_running()?;
        // Ownership is checked before anything changes (also for non-live sessions).
        let (owner, mode, status) = match self.sessions.get(id) {
            Some(e) => (e.rec.owner.clone(), e.rec.mode, e.rec.status),
            None => {
                let rec = self
                    .db
                    .get_session(id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(id.clone()))?;
                (rec.owner, rec.mode, rec.status)
            }
        };
        if status.is_terminal() {
            return Err(StoreError::Terminated(id.clone(), status));
        }
        if owner.is_some() && owner != caller.tui && !take_over {
            return Err(StoreError::NotOwned(id.clone()));
        }
        let evicted = if keep_siblings {
            Vec::new()
        } else {
            self.evict_siblings(caller, mode, Some(id)).await
        };
        self.ensure_live(id).await?;
        if caller.tui.is_some() {
            self.claim(caller, id).await?;
        }
        Ok((self.get(id).await?, evicted))
    }

    /// Moves ownership of a live session to the caller (claim or take-over).
    async fn claim(&self, caller: &Caller, id: &SessionId) -> Result<(), StoreError> {
        let commit = {
            let mut e = self
                .sessions
                .get_mut(id)
                .ok_or_else(|| StoreError::NotFound(id.clone()))?;
            if e.rec.owner == caller.tui {
                return Ok(());
            }
            let previous = e.rec.owner.clone();
            e.rec.owner = caller.tui.clone();
            e.rec.updated_at = now_rfc3339();
            let commit = self.db.submit(vec![Op::UpdateSession(e.rec.clone())]);
            e.hub.publish(Event::OwnerChanged {
                owner_tui_id: caller.tui.clone(),
                previous_owner_tui_id: previous.clone(),
            });
            self.unindex_owner(previous.as_ref(), id);
            self.index_owner(caller.tui.as_ref(), id);
            commit
        };
        commit.await?;
        Ok(())
    }

    /// Unloads the caller's idle live sessions of `mode` (except `except`). The
    /// idle check and the removal are one step under the entry's lock.
    pub(crate) async fn evict_siblings(
        &self,
        caller: &Caller,
        mode: Mode,
        except: Option<&SessionId>,
    ) -> Vec<Evicted> {
        let Some(owner) = caller.tui.as_ref() else {
            return Vec::new();
        };
        let candidates: Vec<SessionId> = match self.owned.get(owner) {
            Some(set) => set.iter().cloned().collect(),
            None => return Vec::new(),
        };
        let mut evicted = Vec::new();
        let mut commits = Vec::new();
        for id in candidates {
            if Some(&id) == except {
                continue;
            }
            let removed = self.sessions.remove_if(&id, |_, e| {
                e.rec.owner.as_ref() == Some(owner)
                    && e.rec.mode == mode
                    && e.is_idle()
                    && !e.retiring
            });
            if let Some((id, e)) = removed {
                self.unindex_owner(Some(owner), &id);
                self.release_live_slot();
                let mut rec = e.rec.clone();
                rec.last_seq = e.hub.last_seq().max(rec.last_seq) + 1;
                commits.push(self.db.submit(vec![Op::UpdateSession(rec)]));
                e.hub.close(CloseReason::Evicted);
                evicted.push(Evicted {
                    session_id: id,
                    agent: e.rec.agent.clone(),
                });
            }
        }
        for c in commits {
            if let Err(e) = c.await {
                tracing::warn!(error = %e, "cannot persist an evicted session");
            }
        }
        evicted
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
        let deadline = last + chrono::Duration::seconds(ttl.min(i64::MAX as u64) as i64);
        chrono::Utc::now() >= deadline
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
            if let Err(e) = self.retire(&id, Retire::Expire).await {
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
        self.check_owner(caller, id).await?;
        if !self.sessions.contains_key(id) {
            return Ok(None);
        }
        self.retire(id, Retire::Close).await
    }

    /// `session/delete`: as close, then remove transcript, turns, uploads and record.
    pub async fn delete(
        self: &Arc<Self>,
        caller: &Caller,
        id: &SessionId,
    ) -> Result<(), StoreError> {
        self.check_owner(caller, id).await?;
        if self.sessions.contains_key(id) {
            self.retire(id, Retire::Delete).await?;
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

    /// `admin/kill`: fire the token (cause `admin_kill`), persist `killed` before
    /// unloading, unload. Returns whether it was killed now and the cancelled turn.
    pub async fn kill(
        self: &Arc<Self>,
        id: &SessionId,
    ) -> Result<(bool, Option<TurnId>), StoreError> {
        let mut turn = None;
        let was_live = self.sessions.contains_key(id);
        if was_live {
            match self.retire(id, Retire::Kill).await {
                Ok(t) => turn = t,
                // A concurrent close or delete took it away first.
                Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        // Also when a concurrent close unloaded it first: the status must be stored.
        let mut rec = self
            .db
            .get_session(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        if rec.status == SessionStatus::Killed {
            return Ok((was_live, turn));
        }
        rec.status = SessionStatus::Killed;
        rec.updated_at = now_rfc3339();
        self.db.write(vec![Op::UpdateSession(rec)]).await?;
        Ok((true, turn))
    }

    /// Graceful stop: every running turn ends with cause `shutdown`, every verdict is
    /// persisted, every subscription is closed.
    pub async fn shutdown(self: &Arc<Self>) {
        self.shutting_down
            .store(true, std::sync::atomic::Ordering::Release);
        let ids: Vec<SessionId> = self.sessions.iter().map(|e| e.key().clone()).collect();
        let all = ids.into_iter().map(|id| {
            let store = self.clone();
            async move {
                let _ = store.retire(&id, Retire::Shutdown).await;
            }
        });
        futures::future::join_all(all).await;
    }

    /// Ownership check for a mutation, for live and non-live sessions.
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

    /// Takes a live entry away: fire the running turn's token, end queued turns,
    /// wait for the runner to finish, apply the status change durably, unload.
    pub(crate) async fn retire(
        self: &Arc<Self>,
        id: &SessionId,
        how: Retire,
    ) -> Result<Option<TurnId>, StoreError> {
        let cause = how.cause();
        let (cancelled, dropped, mut busy, incarnation, hub) = {
            let mut e = self
                .sessions
                .get_mut(id)
                .ok_or_else(|| StoreError::NotFound(id.clone()))?;
            // A teardown already in progress is joined: both wait for the runner below.
            e.retiring = true;
            let mut cancelled = None;
            if let Some(slot) = e.tokens.current().cloned() {
                if self.fire(&slot, cause) {
                    cancelled = e.turn.as_ref().map(|t| t.turn_id.clone());
                }
            }
            let dropped: Vec<QueuedTurn> = e.queue.drain(..).collect();
            (
                cancelled,
                dropped,
                e.busy.subscribe(),
                e.incarnation,
                e.hub.clone(),
            )
        };
        // Queued turns never started: each still ends with exactly one turn_complete,
        // published once its verdict is committed.
        let verdicts: Vec<(TurnVerdict, _)> = dropped
            .into_iter()
            .map(|q| {
                let verdict = TurnVerdict {
                    turn_id: q.turn_id,
                    stop_reason: StopReason::Cancelled,
                    cancel_cause: Some(cause),
                    error: None,
                    usage: Usage::default(),
                    content: String::new(),
                };
                (verdict, q.waiters)
            })
            .collect();
        if !verdicts.is_empty() {
            let ops = verdicts
                .iter()
                .map(|(v, _)| Op::FinishTurn {
                    turn_id: v.turn_id.clone(),
                    verdict: v.clone(),
                })
                .collect();
            self.db.write(ops).await?;
        }
        for (verdict, waiters) in verdicts {
            hub.publish(Event::TurnComplete {
                verdict: verdict.clone(),
            });
            for w in waiters {
                let _ = w.send(verdict.clone());
            }
        }
        // The runner stops after the cancelled turn's verdict is persisted and published.
        let wait = busy.wait_for(|b| !*b);
        if tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .is_err()
        {
            tracing::warn!(session_id = %id, "turn did not stop within 60 s of its cancel");
        }
        drop(busy);
        // Apply the status change durably, then unload (kill: durable before unload).
        let removed = {
            let Some(mut e) = self.sessions.get_mut(id) else {
                return Ok(cancelled);
            };
            if e.incarnation != incarnation {
                return Ok(cancelled);
            }
            match how {
                Retire::Kill => e.rec.status = SessionStatus::Killed,
                Retire::Expire => e.rec.status = SessionStatus::Expired,
                _ => {}
            }
            // Stopping the daemon is not a change to the session.
            if !matches!(how, Retire::Shutdown) {
                e.rec.updated_at = now_rfc3339();
            }
            // Every retirement but a stop ends with one more event, `session_closed`.
            let closing_event = u64::from(how.reason().is_some());
            e.rec.last_seq = e.rec.last_seq.max(e.hub.last_seq() + closing_event);
            self.db.submit(vec![Op::UpdateSession(e.rec.clone())])
        };
        removed.await?;
        if let Some((_, e)) = self
            .sessions
            .remove_if(id, |_, e| e.incarnation == incarnation)
        {
            self.unindex_owner(e.rec.owner.as_ref(), id);
            self.release_live_slot();
            match how.reason() {
                Some(reason) => e.hub.close(reason),
                None => {
                    e.hub.close_quietly();
                    let release = Op::ReleaseSeq {
                        session_id: id.clone(),
                        last: e.hub.last_seq(),
                        held: None,
                    };
                    self.db.write(vec![release]).await?;
                }
            }
        }
        Ok(cancelled)
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
