#![allow(clippy::too_many_arguments)]
//! The sessiond API as jsonrpsee `#[rpc]` traits, one per method group.
//!
//! Every method takes its params as a JSON object (`param_kind = map`). The server
//! side receives the connection's extensions (transport, peer, TUI identity).

use crate::events::EventEnvelope;
use crate::ids::{RequestId, SessionId, TuiId};
use crate::params::*;
use crate::types::{Mode, Overrides, SessionInfo, SessionStatus, UploadEntry};
use jsonrpsee::core::{RpcResult, SubscriptionResult};
use jsonrpsee::proc_macros::rpc;

/// Connection set-up and daemon status.
#[rpc(server, client)]
pub trait DaemonApi {
    /// Makes this connection a TUI connection, issuing or verifying its identity.
    #[method(name = "initialize", param_kind = map, with_extensions)]
    async fn initialize(
        &self,
        protocol_version: u32,
        client: Option<ClientInfo>,
        tui_id: Option<TuiId>,
        tui_sig: Option<String>,
    ) -> RpcResult<InitializeResult>;

    /// Open to all.
    #[method(name = "daemon/status", param_kind = map, with_extensions)]
    async fn daemon_status(&self) -> RpcResult<DaemonStatus>;

    /// The configured agents (open to all; never a secret).
    #[method(name = "daemon/agents", param_kind = map, with_extensions)]
    async fn daemon_agents(&self) -> RpcResult<AgentsResult>;
}

/// Session lifecycle and reads.
#[rpc(server, client)]
pub trait SessionApi {
    #[method(name = "session/new", param_kind = map, with_extensions)]
    #[allow(clippy::too_many_arguments)]
    async fn session_new(
        &self,
        agent: Option<String>,
        mode: Option<Mode>,
        cwd: Option<String>,
        title: Option<String>,
        overrides: Option<Overrides>,
        ttl_secs: Option<u64>,
        keep_siblings: Option<bool>,
    ) -> RpcResult<SessionResult>;

    #[method(name = "session/load", param_kind = map, with_extensions)]
    async fn session_load(
        &self,
        session_id: SessionId,
        take_over: Option<bool>,
        keep_siblings: Option<bool>,
    ) -> RpcResult<SessionResult>;

    #[method(name = "session/list", param_kind = map, with_extensions)]
    async fn session_list(
        &self,
        owner: Option<String>,
        mode: Option<Mode>,
        live: Option<bool>,
        status: Option<SessionStatus>,
        limit: Option<u32>,
        cursor: Option<String>,
        cwd: Option<String>,
        title_contains: Option<String>,
    ) -> RpcResult<ListResult>;

    #[method(name = "session/get", param_kind = map, with_extensions)]
    async fn session_get(&self, session_id: SessionId) -> RpcResult<SessionInfo>;

    #[method(name = "session/messages", param_kind = map, with_extensions)]
    async fn session_messages(
        &self,
        session_id: SessionId,
        from: Option<u64>,
        limit: Option<u32>,
    ) -> RpcResult<MessagesResult>;

    #[method(name = "session/configure", param_kind = map, with_extensions)]
    async fn session_configure(
        &self,
        session_id: SessionId,
        overrides: OverridesPatch,
    ) -> RpcResult<ConfigureResult>;

    /// Owner only; the title rules of `session/new`.
    #[method(name = "session/rename", param_kind = map, with_extensions)]
    async fn session_rename(&self, session_id: SessionId, title: String) -> RpcResult<SessionInfo>;

    #[method(name = "session/close", param_kind = map, with_extensions)]
    async fn session_close(&self, session_id: SessionId) -> RpcResult<CloseResult>;

    #[method(name = "session/delete", param_kind = map, with_extensions)]
    async fn session_delete(&self, session_id: SessionId) -> RpcResult<DeleteResult>;

    /// Events of one session; notifications are `session/update`.
    #[subscription(
        name = "session/subscribe" => "session/update",
        unsubscribe = "session/unsubscribe",
        item = EventEnvelope,
        param_kind = map,
        with_extensions
    )]
    async fn session_subscribe(
        &self,
        session_id: SessionId,
        since_seq: Option<u64>,
    ) -> SubscriptionResult;
}

/// Turns: prompt, cancel, answer the agent's questions.
#[rpc(server, client)]
pub trait TurnApi {
    #[method(name = "session/prompt", param_kind = map, with_extensions)]
    async fn session_prompt(
        &self,
        session_id: SessionId,
        text: String,
        attachments: Option<Vec<String>>,
        interrupt: Option<bool>,
        wait: Option<bool>,
    ) -> RpcResult<PromptResult>;

    #[method(name = "session/cancel", param_kind = map, with_extensions)]
    async fn session_cancel(&self, session_id: SessionId) -> RpcResult<CancelResult>;

    #[method(name = "session/respond", param_kind = map, with_extensions)]
    async fn session_respond(
        &self,
        session_id: SessionId,
        request_id: Option<RequestId>,
        response: serde_json::Value,
    ) -> RpcResult<RespondResult>;
}

/// Content-addressed uploads.
#[rpc(server, client)]
pub trait UploadApi {
    #[method(name = "session/upload", param_kind = map, with_extensions)]
    async fn session_upload(
        &self,
        session_id: SessionId,
        name: String,
        mime_type: Option<String>,
        data_b64: Option<String>,
        path: Option<String>,
    ) -> RpcResult<UploadEntry>;

    #[method(name = "session/uploads", param_kind = map, with_extensions)]
    async fn session_uploads(&self, session_id: SessionId) -> RpcResult<UploadsResult>;
}

/// Administration, over the Unix socket only.
#[rpc(server, client)]
pub trait AdminApi {
    #[method(name = "admin/kill", param_kind = map, with_extensions)]
    async fn admin_kill(&self, session_id: SessionId) -> RpcResult<KillResult>;

    #[method(name = "admin/sessions", param_kind = map, with_extensions)]
    async fn admin_sessions(
        &self,
        owner: Option<String>,
        mode: Option<Mode>,
        live: Option<bool>,
        status: Option<SessionStatus>,
        limit: Option<u32>,
        cursor: Option<String>,
        cwd: Option<String>,
        title_contains: Option<String>,
    ) -> RpcResult<ListResult>;

    #[method(name = "admin/stats", param_kind = map, with_extensions)]
    async fn admin_stats(&self) -> RpcResult<StatsResult>;

    #[method(name = "admin/tuis", param_kind = map, with_extensions)]
    async fn admin_tuis(&self) -> RpcResult<TuisResult>;

    #[method(name = "admin/shutdown", param_kind = map, with_extensions)]
    async fn admin_shutdown(&self, grace_secs: Option<u64>) -> RpcResult<OkResult>;

    /// Reads the configuration file again (as SIGHUP does); an invalid file is refused
    /// and the running configuration kept.
    #[method(name = "admin/reload", param_kind = map, with_extensions)]
    async fn admin_reload(&self) -> RpcResult<ReloadResult>;
}

/// Addition (11.2): the daemon-wide session feed. Open to every client.
#[rpc(server, client)]
pub trait FeedApi {
    /// Notifications are `daemon/update` carrying a [`crate::DaemonUpdate`].
    #[subscription(
        name = "daemon/subscribe" => "daemon/update",
        unsubscribe = "daemon/unsubscribe",
        item = crate::feed::DaemonUpdate,
        param_kind = map,
        with_extensions
    )]
    async fn daemon_subscribe(&self) -> SubscriptionResult;
}
