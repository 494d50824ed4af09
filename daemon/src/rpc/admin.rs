//! Administration over the Unix socket: kill, sessions, stats, tuis, shutdown.

use super::{ctx, require_admin, Rpc};
use jsonrpsee::core::{async_trait, RpcResult};
use jsonrpsee::Extensions;
use sessiond_protocol::api::AdminApiServer;
use sessiond_protocol::params::*;
use sessiond_protocol::{Mode, SessionId, SessionStatus};
use std::collections::BTreeMap;
use std::time::Duration;

#[async_trait]
impl AdminApiServer for Rpc {
    async fn admin_kill(&self, ext: &Extensions, session_id: SessionId) -> RpcResult<KillResult> {
        require_admin(&ctx(ext))?;
        let (killed, cancelled_turn) = self.d.store.kill(&session_id).await?;
        tracing::info!(session_id = %session_id, killed, "admin kill");
        Ok(KillResult {
            killed,
            cancelled_turn,
        })
    }

    async fn admin_sessions(
        &self,
        ext: &Extensions,
        owner: Option<String>,
        mode: Option<Mode>,
        live: Option<bool>,
        status: Option<SessionStatus>,
        limit: Option<u32>,
        cursor: Option<String>,
        cwd: Option<String>,
        title_contains: Option<String>,
    ) -> RpcResult<ListResult> {
        let c = ctx(ext);
        require_admin(&c)?;
        let p = ListParams {
            owner,
            mode,
            live,
            status,
            limit,
            cursor,
            cwd,
            title_contains,
        };
        self.list_for(&c, true, p).await
    }

    async fn admin_stats(&self, ext: &Extensions) -> RpcResult<StatsResult> {
        require_admin(&ctx(ext))?;
        let store = &self.d.store;
        let mut by_agent: BTreeMap<String, u64> = BTreeMap::new();
        let (mut running, mut queued) = (0u64, 0u64);
        for e in store.sessions.iter() {
            *by_agent.entry(e.rec.agent.clone()).or_default() += 1;
            running += u64::from(e.turn.is_some());
            queued += e.queue.len() as u64;
        }
        Ok(StatsResult {
            connections: self
                .d
                .connections
                .load(std::sync::atomic::Ordering::Relaxed),
            tuis: self.d.tuis.len() as u64,
            sessions_live: store.live_count() as u64,
            sessions_total: store.total_count(),
            by_agent,
            turns_running: running,
            turns_queued: queued,
            cancels_by_cause: store.stats.cancels_by_cause(),
            rss_bytes: crate::util::rss_bytes(),
        })
    }

    async fn admin_tuis(&self, ext: &Extensions) -> RpcResult<TuisResult> {
        require_admin(&ctx(ext))?;
        let mut tuis: Vec<TuiInfo> = self.d.tuis.iter().map(|t| t.value().clone()).collect();
        tuis.sort_by(|a, b| a.connected_at.cmp(&b.connected_at));
        Ok(TuisResult { tuis })
    }

    async fn admin_shutdown(
        &self,
        ext: &Extensions,
        grace_secs: Option<u64>,
    ) -> RpcResult<OkResult> {
        require_admin(&ctx(ext))?;
        let grace = Duration::from_secs(grace_secs.unwrap_or(0).min(3600));
        tracing::info!(grace_secs = grace.as_secs(), "shutdown requested over rpc");
        self.d.request_shutdown(grace);
        Ok(OkResult { ok: true })
    }

    async fn admin_reload(&self, ext: &Extensions) -> RpcResult<ReloadResult> {
        require_admin(&ctx(ext))?;
        let d = self.d.clone();
        // Building agents may touch the disk (a command's program): off the reactor.
        tokio::task::spawn_blocking(move || crate::reload::reload(&d))
            .await
            .map_err(|_| {
                sessiond_protocol::error::rpc_error_plain(
                    sessiond_protocol::codes::INTERNAL_ERROR,
                    "reload failed",
                )
            })
    }
}
