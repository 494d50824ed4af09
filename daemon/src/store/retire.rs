//! Taking a live session away: the teardown of close, kill, delete, expiry and
//! stop, and same-mode sibling eviction. The caller holds the session's gate, so no
//! load reads its record before the teardown's writes are committed.

use super::session_fsm::Retire;
use super::{Caller, Store, StoreError};
use crate::persist::Op;
use sessiond_protocol::{CloseReason, Event, Evicted, Mode, SessionId, TurnId};
use std::sync::Arc;
use std::time::Duration;

/// How long a teardown waits for a cancelled turn's runner to stop.
const RUNNER_STOP: Duration = Duration::from_secs(60);

impl Store {
    /// Takes a live entry away (the caller holds its gate): the status change is
    /// committed first (a failure leaves the session as it was); then the running
    /// turn's token fires, queued turns end cancelled, the runner is awaited, and
    /// the entry is unloaded with every write it made committed.
    pub(crate) async fn retire(
        self: &Arc<Self>,
        id: &SessionId,
        how: Retire,
        caller: Option<&Caller>,
    ) -> Result<Option<TurnId>, StoreError> {
        let ((incarnation, mut busy, hub), pending) = self.step(id, |e| {
            let step = e.begin_retire(how, caller)?;
            let handles = (e.incarnation, e.busy.subscribe(), e.hub.clone());
            Ok(step.map(|()| handles))
        })?;
        self.settle(pending).await?;
        let ((cancelled, dropped), pending) = self.step(id, |e| Ok(e.cancel_all(how.cause())))?;
        if let Err(e) = self.settle(pending).await {
            tracing::error!(session_id = %id, error = %e, "cannot persist the verdicts of dropped turns");
        }
        // Queued turns never started: each still ends with exactly one turn_complete.
        for (verdict, waiters) in dropped {
            hub.publish(Event::TurnComplete {
                verdict: verdict.clone(),
            });
            for w in waiters {
                let _ = w.send(verdict.clone());
            }
        }
        // The runner stops after the cancelled turn's verdict is persisted and published.
        if tokio::time::timeout(RUNNER_STOP, busy.wait_for(|b| !*b))
            .await
            .is_err()
        {
            tracing::warn!(session_id = %id, "turn did not stop within 60 s of its cancel");
        }
        drop(busy);
        let Some((_, e)) = self
            .sessions
            .remove_if(id, |_, e| e.incarnation == incarnation)
        else {
            return Ok(cancelled);
        };
        self.unindex_owner(e.rec.owner.as_ref(), id);
        self.release_live_slot();
        self.agents.release(id);
        match how.reason() {
            Some(reason) => e.hub.close(reason),
            None => {
                e.hub.close_quietly();
                e.writer.flush();
                let release = Op::ReleaseSeq {
                    session_id: id.clone(),
                    last: e.hub.last_seq(),
                    held: None,
                };
                self.db.write(vec![release]).await?;
            }
        }
        self.unloaded(&e).await;
        Ok(cancelled)
    }

    /// Waits until every write of an unloaded entry is committed (its last events
    /// and the release of its seq reservation), so that loading it again reads them.
    async fn unloaded(&self, e: &super::Entry) {
        e.writer.flush();
        if let Err(err) = self.db.submit(Vec::new()).await {
            tracing::warn!(session_id = %e.rec.id, error = %err, "cannot confirm an unloaded session's writes");
        }
    }

    /// Unloads the caller's idle live sessions of `mode` (except `except`). The
    /// idle check and the removal are one step under the entry's lock; a session
    /// whose residency is already changing (its gate is held) is left alone.
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
        let mut gone = Vec::new();
        for id in candidates {
            if Some(&id) == except {
                continue;
            }
            let Some(gate) = self.try_gate(&id) else {
                continue;
            };
            let removed = self.sessions.remove_if(&id, |_, e| {
                e.rec.owner.as_ref() == Some(owner)
                    && e.rec.mode == mode
                    && e.is_idle()
                    && !e.retiring
            });
            if let Some((id, e)) = removed {
                self.unindex_owner(Some(owner), &id);
                self.release_live_slot();
                self.agents.release(&id);
                e.hub.close(CloseReason::Evicted);
                evicted.push(Evicted {
                    session_id: id,
                    agent: e.rec.agent.clone(),
                });
                gone.push((gate, e));
            }
        }
        for (gate, e) in gone {
            self.unloaded(&e).await;
            drop(gate);
        }
        evicted
    }
}
