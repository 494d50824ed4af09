//! Retention (`[retention]`, off by default): prunes stored sessions that are not
//! live, oldest `updated_at` first — those older than `max_age_days`, then as many as
//! it takes to get down to `max_sessions`. A pruned session goes the way of
//! `session/delete` (transcript, turns, upload index, events; upload files no other
//! session references).
//!
//! A live session is never pruned: live sessions hold a durable seq reservation
//! (see [`Store::reserve_seqs`]) and the prune itself is conditional on there being
//! none, decided in the database writer, so a load racing the prune either makes
//! the prune skip the session or finds it gone.
//!
//! Throttled: a pass runs at start-up, then at most once per [`CHECK_EVERY`] when
//! the session count is over the limit and something changed since the last pass
//! (sessions were added, or some were unloaded), and the age rule every [`AGE_EVERY`].
//! Each commit deletes at most [`CHUNK`] sessions.

use super::{Store, StoreError};
use crate::persist::Op;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the session-count rule is checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How often the age rule runs.
pub const AGE_EVERY: Duration = Duration::from_secs(60);
/// Sessions deleted per commit.
pub const CHUNK: u64 = 256;

/// Starts the retention task; `None` when retention is off.
pub fn spawn(store: Arc<Store>, stop: CancellationToken) -> Option<tokio::task::JoinHandle<()>> {
    let r = &store.cfg.retention;
    if r.max_sessions == 0 && r.max_age_days == 0 {
        return None;
    }
    Some(tokio::spawn(run(store, stop)))
}

async fn run(store: Arc<Store>, stop: CancellationToken) {
    let max_sessions = store.cfg.retention.max_sessions;
    let ages = store.cfg.retention.max_age_days > 0;
    let mut tick = tokio::time::interval(CHECK_EVERY);
    let mut last_age_pass: Option<Instant> = None;
    // (total, live) after the last pass; nothing new to prune while it is unchanged.
    let mut settled: Option<(u64, usize)> = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let state = (store.total_count(), store.live_count());
        let age_due = ages && last_age_pass.is_none_or(|t| t.elapsed() >= AGE_EVERY);
        let over = max_sessions > 0 && state.0 > max_sessions && settled != Some(state);
        if !age_due && !over {
            continue;
        }
        if age_due {
            last_age_pass = Some(Instant::now());
        }
        match store.prune_pass().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "retention pruned stored sessions"),
            Err(e) => tracing::warn!(error = %e, "retention pass failed"),
        }
        settled = Some((store.total_count(), store.live_count()));
    }
}

impl Store {
    /// One retention pass; returns how many sessions it removed.
    pub async fn prune_pass(&self) -> Result<u64, StoreError> {
        let r = self.cfg.retention.clone();
        let mut pruned = 0;
        if r.max_age_days > 0 {
            let days = r.max_age_days.min(1_000_000) as i64;
            let cutoff =
                crate::util::format_time(chrono::Utc::now() - chrono::Duration::days(days));
            pruned += self.prune_oldest(Some(cutoff), u64::MAX).await?;
        }
        if r.max_sessions > 0 {
            let total = self.db.count_sessions().await?;
            if total > r.max_sessions {
                pruned += self.prune_oldest(None, total - r.max_sessions).await?;
            }
        }
        let total = self.db.count_sessions().await?;
        self.total.store(total, Ordering::Relaxed);
        Ok(pruned)
    }

    /// Prunes up to `want` of the oldest non-live sessions (updated before `before`).
    async fn prune_oldest(&self, before: Option<String>, mut want: u64) -> Result<u64, StoreError> {
        let mut pruned = 0;
        while want > 0 {
            let limit = want.min(CHUNK) as u32;
            let candidates = self.db.prune_candidates(before.clone(), limit).await?;
            let ops: Vec<Op> = candidates
                .iter()
                .filter(|id| !self.sessions.contains_key(*id))
                .map(|id| Op::PruneSession(id.clone()))
                .collect();
            if ops.is_empty() {
                break;
            }
            let count_before = self.db.count_sessions().await?;
            self.db.write(ops).await?;
            let gone = count_before.saturating_sub(self.db.count_sessions().await?);
            pruned += gone;
            want = want.saturating_sub(gone);
            if gone == 0 || (candidates.len() as u32) < limit {
                break;
            }
            tokio::task::yield_now().await;
        }
        Ok(pruned)
    }
}
