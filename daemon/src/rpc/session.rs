//! Session lifecycle and reads: new, load, list, get, messages, configure, rename,
//! close, delete.

use super::{ctx, invalid_params, Rpc};
use crate::events::feed::Change;
use crate::store::ListFilter;
use jsonrpsee::core::{async_trait, RpcResult, SubscriptionResult};
use jsonrpsee::{Extensions, PendingSubscriptionSink};
use sessiond_protocol::api::SessionApiServer;
use sessiond_protocol::params::*;
use sessiond_protocol::{Mode, Overrides, SessionId, SessionInfo, SessionStatus};

/// Resolves the `owner` filter of a listing for a caller.
pub(crate) fn list_filter(
    caller_tui: Option<&str>,
    admin: bool,
    p: ListParams,
) -> RpcResult<ListFilter> {
    let owner = match p.owner.as_deref() {
        None if admin => None,
        None => caller_tui.map(|t| Some(t.to_owned())),
        Some("any") => None,
        Some("none") => Some(None),
        Some("me") => match caller_tui {
            Some(t) => Some(Some(t.to_owned())),
            None => {
                return Err(invalid_params(
                    "owner \"me\" needs an initialized tui connection",
                ))
            }
        },
        Some(id) if id.trim().is_empty() => return Err(invalid_params("owner must not be blank")),
        Some(id) => Some(Some(id.to_owned())),
    };
    if p.limit == Some(0) {
        return Err(invalid_params("limit must be at least 1"));
    }
    Ok(ListFilter {
        owner,
        mode: p.mode,
        live: p.live,
        status: p.status,
        limit: p
            .limit
            .unwrap_or(crate::store::list::DEFAULT_LIMIT)
            .min(crate::store::list::MAX_LIMIT),
        cursor: p.cursor,
        cwd: p.cwd,
        title_contains: p.title_contains.map(|t| t.to_lowercase()),
    })
}

impl Rpc {
    /// `session/list` (`admin` false: a TUI's own sessions by default) and
    /// `admin/sessions` (`admin` true: every owner by default).
    pub(crate) async fn list_for(
        &self,
        c: &crate::state::ConnCtx,
        admin: bool,
        p: ListParams,
    ) -> RpcResult<ListResult> {
        let tui = c.tui.get().map(|t| t.0.clone());
        let filter = list_filter(tui.as_deref(), admin, p)?;
        let (sessions, next_cursor) = self.d.store.list(filter).await?;
        Ok(ListResult {
            sessions,
            next_cursor,
        })
    }
}

#[async_trait]
impl SessionApiServer for Rpc {
    async fn session_new(
        &self,
        ext: &Extensions,
        agent: Option<String>,
        mode: Option<Mode>,
        cwd: Option<String>,
        title: Option<String>,
        overrides: Option<Overrides>,
        ttl_secs: Option<u64>,
        keep_siblings: Option<bool>,
    ) -> RpcResult<SessionResult> {
        let caller = ctx(ext).caller();
        let params = NewSessionParams {
            agent,
            mode,
            cwd,
            title,
            overrides,
            ttl_secs,
            keep_siblings,
        };
        let (session, evicted) = self.d.store.create(&caller, params).await?;
        self.d
            .store
            .feed
            .touch(&session.session_id, Change::Changed);
        Ok(SessionResult { session, evicted })
    }

    async fn session_load(
        &self,
        ext: &Extensions,
        session_id: SessionId,
        take_over: Option<bool>,
        keep_siblings: Option<bool>,
    ) -> RpcResult<SessionResult> {
        let caller = ctx(ext).caller();
        let (session, evicted) = self
            .d
            .store
            .load(
                &caller,
                &session_id,
                take_over.unwrap_or(false),
                keep_siblings.unwrap_or(false),
            )
            .await?;
        self.d
            .store
            .feed
            .touch(&session.session_id, Change::Changed);
        Ok(SessionResult { session, evicted })
    }

    async fn session_list(
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
        self.list_for(&ctx(ext), false, p).await
    }

    async fn session_get(
        &self,
        _ext: &Extensions,
        session_id: SessionId,
    ) -> RpcResult<SessionInfo> {
        Ok(self.d.store.get(&session_id).await?)
    }

    async fn session_messages(
        &self,
        _ext: &Extensions,
        session_id: SessionId,
        from: Option<u64>,
        limit: Option<u32>,
    ) -> RpcResult<MessagesResult> {
        // Expires a session past its TTL first, as `session/get` does.
        self.d.store.get(&session_id).await?;
        let limit = limit.unwrap_or(1000).clamp(1, 10_000);
        let from = from.unwrap_or(0);
        Ok(super::messages::snapshot(&self.d, &session_id, from, limit).await?)
    }

    async fn session_configure(
        &self,
        ext: &Extensions,
        session_id: SessionId,
        overrides: OverridesPatch,
    ) -> RpcResult<ConfigureResult> {
        let caller = ctx(ext).caller();
        let overrides = self
            .d
            .store
            .configure(&caller, &session_id, &overrides)
            .await?;
        Ok(ConfigureResult { overrides })
    }

    async fn session_rename(
        &self,
        ext: &Extensions,
        session_id: SessionId,
        title: String,
    ) -> RpcResult<SessionInfo> {
        let caller = ctx(ext).caller();
        Ok(self.d.store.rename(&caller, &session_id, &title).await?)
    }

    async fn session_close(
        &self,
        ext: &Extensions,
        session_id: SessionId,
    ) -> RpcResult<CloseResult> {
        let caller = ctx(ext).caller();
        let cancelled_turn = self.d.store.close(&caller, &session_id).await?;
        Ok(CloseResult {
            closed: true,
            cancelled_turn,
        })
    }

    async fn session_delete(
        &self,
        ext: &Extensions,
        session_id: SessionId,
    ) -> RpcResult<DeleteResult> {
        let caller = ctx(ext).caller();
        self.d.store.delete(&caller, &session_id).await?;
        Ok(DeleteResult { deleted: true })
    }

    async fn session_subscribe(
        &self,
        pending: PendingSubscriptionSink,
        _ext: &Extensions,
        session_id: SessionId,
        since_seq: Option<u64>,
    ) -> SubscriptionResult {
        super::subscribe::run(self.d.clone(), pending, session_id, since_seq).await;
        Ok(())
    }
}
