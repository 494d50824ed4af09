//! The graceful stop, batched: every live session is taken away together rather
//! than one teardown each. Running turns are cancelled (cause `shutdown`) and queued
//! turns end cancelled at once, the runners are awaited together (bounded), and the
//! release of every session's seq reservation is committed in one transaction.
//! Sessions whose residency is changing when the stop begins take the ordinary
//! teardown (`retire.rs`) once that change is done.

use super::session_fsm::Retire;
use super::turn_fsm::Dropped;
use super::{Entry, Store};
use crate::events::EventHub;
use crate::persist::Op;
use sessiond_protocol::{CancelCause, Event, SessionId};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long the stop waits for cancelled turns' runners (together) before it
/// unloads their sessions anyway. Shorter than the server's bound on the whole
/// store stop, so the final write is still made when an agent ignores its cancel;
/// such a turn stays open and the next start records it failed (as after a crash).
const RUNNERS_STOP: Duration = Duration::from_secs(10);

/// A session taken by the batched stop: its gate, and what its teardown needs.
struct Taken<'a> {
    _gate: super::residency::Gate<'a>,
    id: SessionId,
    incarnation: u64,
}

impl Store {
    /// Graceful stop: every running turn ends with cause `shutdown`, every queued
    /// turn ends cancelled with that cause, every verdict is persisted, every
    /// subscription is closed, and each session's unused seq reservation is given
    /// back (so its seqs go on by one after the restart).
    pub async fn shutdown(self: &Arc<Self>) {
        self.drain();
        self.shutting_down
            .store(true, std::sync::atomic::Ordering::Release);
        let started = Instant::now();
        let ids: Vec<SessionId> = self.sessions.iter().map(|e| e.key().clone()).collect();
        let mut idle = Vec::with_capacity(ids.len());
        let mut waiting = Vec::new();
        let mut releases = Vec::with_capacity(ids.len());
        let mut unloaded = Vec::with_capacity(ids.len());
        let mut contested = Vec::new();
        let mut verdicts = Vec::new();
        let mut dropped: Vec<(Arc<EventHub>, Vec<Dropped>)> = Vec::new();
        let mut runners: Vec<watch::Receiver<bool>> = Vec::new();
        for id in ids {
            // A session being loaded or unloaded right now is stopped after that.
            let Some(gate) = self.try_gate(&id) else {
                contested.push(id);
                continue;
            };
            let step = self.step_into(
                &id,
                |e| {
                    let begin = e.begin_retire(Retire::Shutdown, None)?;
                    let cancel = e.cancel_all(CancelCause::Shutdown);
                    // Only a session whose runner still exists is waited for (an
                    // idle one allocates no watch channel).
                    let busy = e.busy.borrow().then(|| e.busy.subscribe());
                    let hub = e.hub.clone();
                    let inc = e.incarnation;
                    Ok(begin
                        .then(cancel)
                        .map(|(_, gone)| (inc, busy, (!gone.is_empty()).then_some((hub, gone)))))
                },
                &mut verdicts,
            );
            let (incarnation, busy, gone) = match step {
                Ok(v) => v,
                // Gone or already being taken away meanwhile: the pass below sees it.
                Err(e) => {
                    tracing::debug!(session_id = %id, error = %e, "not stopped in the batch");
                    continue;
                }
            };
            let t = Taken {
                _gate: gate,
                id,
                incarnation,
            };
            if busy.is_none() && gone.is_none() {
                // Nothing to wait for: unloaded in the same pass.
                self.unload_stopped(&t, &mut releases, &mut unloaded);
                idle.push(t);
            } else {
                runners.extend(busy);
                dropped.extend(gone);
                waiting.push(t);
            }
        }
        let cancelled = started.elapsed();
        // Queued turns never started: each ends with exactly one turn_complete, once
        // its verdict is committed (one transaction for all of them).
        if !verdicts.is_empty() {
            if let Err(e) = self.db.write(verdicts).await {
                tracing::error!(error = %e, "cannot persist the verdicts of dropped turns");
            }
        }
        for (hub, gone) in dropped {
            for (verdict, waiters) in gone {
                hub.publish(Event::TurnComplete {
                    verdict: verdict.clone(),
                });
                for w in waiters {
                    let _ = w.send(verdict.clone());
                }
            }
        }
        // Each runner stops after its cancelled turn's verdict is persisted and published.
        let waits = runners.into_iter().map(|mut rx| async move {
            let _ = rx.wait_for(|b| !*b).await;
        });
        if tokio::time::timeout(RUNNERS_STOP, futures::future::join_all(waits))
            .await
            .is_err()
        {
            tracing::warn!("turns did not stop within {RUNNERS_STOP:?} of their cancel");
        }
        let waited = started.elapsed();
        for t in &waiting {
            self.unload_stopped(t, &mut releases, &mut unloaded);
        }
        // Queued after every event the hubs wrote (the writer commits in order).
        let count = releases.len();
        if count > 0 {
            if let Err(e) = self.db.write(releases).await {
                tracing::error!(error = %e, "cannot release the seq reservations of stopped sessions");
            }
        }
        let committed = started.elapsed();
        tracing::info!(
            sessions = count,
            cancel_ms = cancelled.as_millis() as u64,
            runners_ms = (waited - cancelled).as_millis() as u64,
            unload_commit_ms = (committed - waited).as_millis() as u64,
            "live sessions stopped"
        );
        drop(idle);
        drop(waiting);
        // The entries' memory is freed off the stop's path (the process is ending).
        if !unloaded.is_empty() {
            let freed = std::thread::Builder::new()
                .name("sessiond-free".into())
                .spawn(move || drop(unloaded));
            if let Err(e) = freed {
                tracing::debug!(error = %e, "freeing stopped sessions inline");
            }
        }
        // Sessions whose residency was changing, or that were loaded meanwhile.
        let rest: std::collections::HashSet<SessionId> = contested
            .into_iter()
            .chain(self.sessions.iter().map(|e| e.key().clone()))
            .collect();
        let all = rest.into_iter().map(|id| {
            let store = self.clone();
            async move {
                let _gate = store.gate(&id).await;
                if store.sessions.contains_key(&id) {
                    if let Err(e) = store.retire(&id, Retire::Shutdown, None).await {
                        tracing::warn!(session_id = %id, error = %e, "cannot stop a session cleanly");
                    }
                }
            }
        });
        futures::future::join_all(all).await;
    }

    /// Unloads a session the batched stop took (its runner has stopped or the wait
    /// for it ended): the hub closes quietly (a stop does not close the session) and
    /// publishes nothing after, so its last seq is final and the reservation is
    /// given back up to it, in the stop's one transaction.
    fn unload_stopped(&self, t: &Taken<'_>, releases: &mut Vec<Op>, unloaded: &mut Vec<Entry>) {
        let Some((_, e)) = self
            .sessions
            .remove_if(&t.id, |_, e| e.incarnation == t.incarnation)
        else {
            return;
        };
        self.unindex_owner(e.rec.owner.as_ref(), &t.id);
        self.release_live_slot();
        self.agents.release(&t.id);
        e.hub.close_quietly();
        e.writer.flush();
        releases.push(Op::ReleaseSeq {
            session_id: t.id.clone(),
            last: e.hub.last_seq(),
            held: None,
        });
        unloaded.push(e);
    }
}
