//! [`Client`]: one connection to the daemon, with a typed method per protocol method.

use crate::connect::{ConnectOptions, Endpoint, RpcClient};
use crate::error::{Error, Result};
use crate::events::EventStream;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sessiond_protocol::api::{
    AdminApiClient, DaemonApiClient, FeedApiClient, SessionApiClient, TurnApiClient,
    UploadApiClient,
};
use sessiond_protocol::params::*;
use sessiond_protocol::types::{SessionInfo, TurnVerdict, UploadEntry};
use sessiond_protocol::{RequestId, SessionId, TuiId, PROTOCOL_VERSION};
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A TUI's identity as issued by `initialize`. Present it again (after a reconnect or a
/// restart of the TUI) to be the same TUI and keep owning its sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub tui_id: TuiId,
    pub tui_sig: String,
}

/// What `initialize` established; kept so that a reconnect can repeat it.
#[derive(Debug, Default)]
struct Session {
    client_info: Option<ClientInfo>,
    identity: Option<Identity>,
}

/// One connection to the daemon.
///
/// Cheap to clone: clones share the connection and the identity. Every call is limited
/// by [`ConnectOptions::call_timeout`] ([`Error::Timeout`]), except [`Client::prompt`]
/// with `wait: true` and [`Client::prompt_wait`], which wait for the turn however long
/// it runs.
#[derive(Clone)]
pub struct Client {
    rpc: Arc<RpcClient>,
    // Reconnecting (a later addition) dials `endpoint` again with `opts`, repeats
    // `initialize` with `session.identity` and swaps `rpc`.
    endpoint: Arc<Endpoint>,
    opts: ConnectOptions,
    session: Arc<Mutex<Session>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("connected", &self.rpc.is_connected())
            .field("tui_id", &self.identity().map(|i| i.tui_id))
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects over the daemon's Unix socket (WebSocket upgrade at `/`).
    pub async fn connect_unix(path: impl AsRef<Path>, opts: ConnectOptions) -> Result<Client> {
        Client::connect(Endpoint::unix(path), opts).await
    }

    /// Connects to the daemon's TCP WebSocket (`ws://127.0.0.1:PORT/`) with its token,
    /// sent as `Authorization: Bearer <token>`.
    pub async fn connect_ws(url: &str, token: &str, opts: ConnectOptions) -> Result<Client> {
        Client::connect(Endpoint::ws(url, token)?, opts).await
    }

    /// Connects to an endpoint.
    pub async fn connect(endpoint: Endpoint, opts: ConnectOptions) -> Result<Client> {
        let rpc = endpoint.open(&opts).await?;
        Ok(Client {
            rpc: Arc::new(rpc),
            endpoint: Arc::new(endpoint),
            opts,
            session: Arc::default(),
        })
    }

    /// The underlying jsonrpsee client, for untyped calls
    /// (`jsonrpsee::core::client::ClientT::request`). No SDK timeout applies there.
    pub fn raw(&self) -> &RpcClient {
        &self.rpc
    }

    /// Where this client is connected.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The options this client was connected with.
    pub fn options(&self) -> &ConnectOptions {
        &self.opts
    }

    /// False once the connection is gone.
    pub fn is_connected(&self) -> bool {
        self.rpc.is_connected()
    }

    /// Completes when the connection is gone (at once if it already is).
    pub async fn closed(&self) {
        let _ = self.rpc.on_disconnect().await;
    }

    /// The identity this connection got from `initialize`, if it called it.
    pub fn identity(&self) -> Option<Identity> {
        self.lock_session().identity.clone()
    }

    fn lock_session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a call under `call_timeout`.
    async fn call<T>(
        &self,
        fut: impl Future<Output = std::result::Result<T, jsonrpsee::core::client::Error>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.opts.call_timeout, fut).await {
            Ok(r) => r.map_err(Error::from),
            Err(_) => Err(Error::Timeout),
        }
    }

    // ---- connection and daemon ----

    /// Makes this a TUI connection. With `identity`, the daemon verifies it and this is
    /// the same TUI again; without, the daemon issues a new one. The identity in the
    /// result is remembered ([`Client::identity`]).
    pub async fn initialize(
        &self,
        client_name: &str,
        identity: Option<Identity>,
    ) -> Result<InitializeResult> {
        let info = ClientInfo {
            name: client_name.to_owned(),
            version: None,
        };
        self.initialize_with(info, identity).await
    }

    /// [`Client::initialize`] with a full `client` record (name and version).
    pub async fn initialize_with(
        &self,
        client: ClientInfo,
        identity: Option<Identity>,
    ) -> Result<InitializeResult> {
        let (tui_id, tui_sig) = match identity {
            Some(i) => (Some(i.tui_id), Some(i.tui_sig)),
            None => (None, None),
        };
        let result = self
            .call(
                self.rpc
                    .initialize(PROTOCOL_VERSION, Some(client.clone()), tui_id, tui_sig),
            )
            .await?;
        let mut s = self.lock_session();
        s.client_info = Some(client);
        s.identity = Some(Identity {
            tui_id: result.tui_id.clone(),
            tui_sig: result.tui_sig.clone(),
        });
        Ok(result)
    }

    /// `daemon/status`.
    pub async fn status(&self) -> Result<DaemonStatus> {
        self.call(self.rpc.daemon_status()).await
    }

    // ---- sessions ----

    /// `session/new`.
    pub async fn new_session(&self, p: NewSessionParams) -> Result<SessionResult> {
        self.call(self.rpc.session_new(
            p.agent,
            p.mode,
            p.cwd,
            p.title,
            p.overrides,
            p.ttl_secs,
            p.keep_siblings,
        ))
        .await
    }

    /// `session/load`: makes the session live (and, with `take_over`, ours).
    pub async fn load_session(
        &self,
        session_id: &SessionId,
        take_over: bool,
        keep_siblings: bool,
    ) -> Result<SessionResult> {
        self.call(
            self.rpc
                .session_load(session_id.clone(), Some(take_over), Some(keep_siblings)),
        )
        .await
    }

    /// `session/list`.
    pub async fn list_sessions(&self, p: ListParams) -> Result<ListResult> {
        self.call(self.rpc.session_list(
            p.owner,
            p.mode,
            p.live,
            p.status,
            p.limit,
            p.cursor,
            p.cwd,
            p.title_contains,
        ))
        .await
    }

    /// `session/get`.
    pub async fn get_session(
        &self,
        session_id: &SessionId,
    ) -> Result<sessiond_protocol::SessionInfo> {
        self.call(self.rpc.session_get(session_id.clone())).await
    }

    /// `session/messages`: a page of the transcript from index `from` (default 0).
    pub async fn messages(
        &self,
        session_id: &SessionId,
        from: Option<u64>,
        limit: Option<u32>,
    ) -> Result<MessagesResult> {
        self.call(self.rpc.session_messages(session_id.clone(), from, limit))
            .await
    }

    /// `session/configure`: absent fields stay, `Patch::Clear` clears, `Patch::Set` sets.
    pub async fn configure(
        &self,
        session_id: &SessionId,
        overrides: OverridesPatch,
    ) -> Result<ConfigureResult> {
        self.call(self.rpc.session_configure(session_id.clone(), overrides))
            .await
    }

    /// `session/rename` (owner only): the session with its new title.
    pub async fn rename(&self, session_id: &SessionId, title: &str) -> Result<SessionInfo> {
        self.call(
            self.rpc
                .session_rename(session_id.clone(), title.to_owned()),
        )
        .await
    }

    /// `daemon/agents`: the configured agent aliases.
    pub async fn agents(&self) -> Result<AgentsResult> {
        self.call(self.rpc.daemon_agents()).await
    }

    /// `session/close`: unloads the session (cancelling its turn, if any).
    pub async fn close_session(&self, session_id: &SessionId) -> Result<CloseResult> {
        self.call(self.rpc.session_close(session_id.clone())).await
    }

    /// `session/delete`: the session, its transcript and its upload index are gone.
    pub async fn delete_session(&self, session_id: &SessionId) -> Result<DeleteResult> {
        self.call(self.rpc.session_delete(session_id.clone())).await
    }

    /// `session/subscribe`: the session's events, after `since_seq` if given (replayed
    /// first), then live.
    pub async fn subscribe(
        &self,
        session_id: &SessionId,
        since_seq: Option<u64>,
    ) -> Result<EventStream> {
        let sub = self
            .call(self.rpc.session_subscribe(session_id.clone(), since_seq))
            .await?;
        Ok(EventStream::new(
            session_id.clone(),
            since_seq,
            sub,
            self.rpc.clone(),
            self.opts.call_timeout,
        ))
    }

    /// `daemon/subscribe`: every session's changes (`session_changed`,
    /// `session_deleted`), coalesced by session for a subscriber that lags.
    pub async fn subscribe_daemon(&self) -> Result<crate::feed::FeedStream> {
        let sub = self.call(self.rpc.daemon_subscribe()).await?;
        Ok(crate::feed::FeedStream::new(sub, self.rpc.clone()))
    }

    // ---- turns ----

    /// `session/prompt`. With `wait: Some(true)` the result is the verdict and no SDK
    /// timeout applies; otherwise it is the accepted turn.
    pub async fn prompt(&self, p: PromptParams) -> Result<PromptResult> {
        let wait = p.wait == Some(true);
        let fut = self
            .rpc
            .session_prompt(p.session_id, p.text, p.attachments, p.interrupt, p.wait);
        if wait {
            fut.await.map_err(Error::from)
        } else {
            self.call(fut).await
        }
    }

    /// Prompts with text and returns the accepted turn without waiting for it.
    pub async fn prompt_text(
        &self,
        session_id: &SessionId,
        text: impl Into<String>,
    ) -> Result<PromptAccepted> {
        match self.prompt(prompt_params(session_id, text, false)).await? {
            PromptResult::Accepted(a) => Ok(a),
            PromptResult::Finished(v) => Err(Error::Decode(format!(
                "expected an accepted turn, got the verdict of {}",
                v.turn_id
            ))),
        }
    }

    /// Prompts with text and waits for the turn's verdict (no SDK timeout).
    pub async fn prompt_wait(
        &self,
        session_id: &SessionId,
        text: impl Into<String>,
    ) -> Result<TurnVerdict> {
        match self.prompt(prompt_params(session_id, text, true)).await? {
            PromptResult::Finished(v) => Ok(v),
            PromptResult::Accepted(a) => Err(Error::Decode(format!(
                "expected a verdict, got accepted turn {}",
                a.turn_id
            ))),
        }
    }

    /// `session/cancel`: cancels the running turn, if any.
    pub async fn cancel(&self, session_id: &SessionId) -> Result<CancelResult> {
        self.call(self.rpc.session_cancel(session_id.clone())).await
    }

    /// `session/respond`: answers a pending request (the only one, if `request_id` is
    /// `None`).
    pub async fn respond(
        &self,
        session_id: &SessionId,
        request_id: Option<RequestId>,
        response: serde_json::Value,
    ) -> Result<RespondResult> {
        self.call(
            self.rpc
                .session_respond(session_id.clone(), request_id, response),
        )
        .await
    }

    // ---- uploads ----

    /// `session/upload` with the bytes inline (base64).
    pub async fn upload_bytes(
        &self,
        session_id: &SessionId,
        name: impl Into<String>,
        mime_type: Option<String>,
        bytes: &[u8],
    ) -> Result<UploadEntry> {
        let data = base64::engine::general_purpose::STANDARD.encode(bytes);
        self.call(self.rpc.session_upload(
            session_id.clone(),
            name.into(),
            mime_type,
            Some(data),
            None,
        ))
        .await
    }

    /// `session/upload` of a file the daemon reads itself (Unix socket only). A relative
    /// `path` is made absolute against this process's current directory.
    pub async fn upload_path(
        &self,
        session_id: &SessionId,
        name: impl Into<String>,
        path: impl AsRef<Path>,
    ) -> Result<UploadEntry> {
        let path = std::path::absolute(path.as_ref())?;
        let path = path
            .to_str()
            .ok_or_else(|| Error::InvalidInput("upload path is not valid UTF-8".into()))?
            .to_owned();
        self.call(
            self.rpc
                .session_upload(session_id.clone(), name.into(), None, None, Some(path)),
        )
        .await
    }

    /// `session/uploads`: the session's upload index.
    pub async fn uploads(&self, session_id: &SessionId) -> Result<UploadsResult> {
        self.call(self.rpc.session_uploads(session_id.clone()))
            .await
    }

    // ---- admin (Unix socket only) ----

    /// `admin/kill`: cancels the turn and marks the session `killed` for good.
    pub async fn admin_kill(&self, session_id: &SessionId) -> Result<KillResult> {
        self.call(AdminApiClient::admin_kill(&*self.rpc, session_id.clone()))
            .await
    }

    /// `admin/sessions`: as `session/list`, every owner.
    pub async fn admin_sessions(&self, p: ListParams) -> Result<ListResult> {
        self.call(AdminApiClient::admin_sessions(
            &*self.rpc,
            p.owner,
            p.mode,
            p.live,
            p.status,
            p.limit,
            p.cursor,
            p.cwd,
            p.title_contains,
        ))
        .await
    }

    /// `admin/stats`.
    pub async fn admin_stats(&self) -> Result<StatsResult> {
        self.call(AdminApiClient::admin_stats(&*self.rpc)).await
    }

    /// `admin/tuis`: connected TUIs.
    pub async fn admin_tuis(&self) -> Result<TuisResult> {
        self.call(AdminApiClient::admin_tuis(&*self.rpc)).await
    }

    /// `admin/shutdown`: the daemon stops gracefully after answering.
    pub async fn admin_shutdown(&self, grace_secs: Option<u64>) -> Result<OkResult> {
        self.call(AdminApiClient::admin_shutdown(&*self.rpc, grace_secs))
            .await
    }

    /// `admin/reload`: the daemon reads its configuration file again.
    pub async fn admin_reload(&self) -> Result<sessiond_protocol::params::ReloadResult> {
        self.call(AdminApiClient::admin_reload(&*self.rpc)).await
    }
}

fn prompt_params(session_id: &SessionId, text: impl Into<String>, wait: bool) -> PromptParams {
    PromptParams {
        session_id: session_id.clone(),
        text: text.into(),
        attachments: None,
        interrupt: None,
        wait: wait.then_some(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_through_json() {
        let id = Identity {
            tui_id: TuiId::from("tui-1"),
            tui_sig: "abcd".into(),
        };
        let v = serde_json::to_value(&id).unwrap();
        assert_eq!(v, serde_json::json!({"tui_id": "tui-1", "tui_sig": "abcd"}));
        let back: Identity = serde_json::from_value(v).unwrap();
        assert_eq!(back, id);
    }

    #[test]
    fn prompt_params_set_wait_only_when_waiting() {
        let s = SessionId::from("s");
        let p = prompt_params(&s, "hi", false);
        assert_eq!(p.wait, None);
        assert_eq!(p.text, "hi");
        assert_eq!(p.session_id, s);
        assert_eq!(prompt_params(&s, "hi", true).wait, Some(true));
    }
}
