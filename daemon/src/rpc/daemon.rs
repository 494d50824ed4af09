//! `initialize` (TUI identity), `daemon/status` and `daemon/agents`.

use super::{ctx, invalid_params, Rpc};
use jsonrpsee::core::{async_trait, RpcResult};
use jsonrpsee::Extensions;
use sessiond_protocol::api::DaemonApiServer;
use sessiond_protocol::error::{codes, rpc_error_plain};
use sessiond_protocol::params::{
    AgentInfo, AgentsResult, ClientInfo, DaemonStatus, InitializeResult, TuiInfo,
};
use sessiond_protocol::{methods, TuiId, PROTOCOL_VERSION};

pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");

impl Rpc {
    /// `daemon/status`: nothing to wait for, so it is served as a synchronous method
    /// ([`install_status`]), without the boxed future and the copy of the connection's
    /// extensions that jsonrpsee makes for an `async` one.
    fn status(&self) -> DaemonStatus {
        DaemonStatus {
            server_version: SERVER_VERSION.to_owned(),
            protocol_version: PROTOCOL_VERSION,
            pid: std::process::id(),
            uptime_secs: self.d.started.elapsed().as_secs(),
            // As `display().to_string()` writes them, without the formatting machinery.
            socket: self.d.socket.to_string_lossy().into_owned(),
            ws_listen: self.d.ws_listen(),
            data_dir: self.d.data_dir.to_string_lossy().into_owned(),
            sessions_live: self.d.store.live_count() as u64,
            sessions_total: self.d.store.total_count(),
        }
    }
}

/// Serves `daemon/status` synchronously in `m` (in place of the macro-made `async`
/// method, which takes no params either: the answer is the same).
pub fn install_status(m: &mut jsonrpsee::RpcModule<()>, rpc: Rpc) {
    m.remove_method(methods::DAEMON_STATUS);
    m.register_method(methods::DAEMON_STATUS, move |_, _, _| {
        RpcResult::Ok(rpc.status())
    })
    .expect("daemon/status was just removed");
}

/// The TUI secret could not be created (the data directory is not writable).
fn internal(msg: String) -> jsonrpsee::types::ErrorObjectOwned {
    tracing::error!(error = %msg, "tui identity");
    rpc_error_plain(codes::INTERNAL_ERROR, msg)
}

#[async_trait]
impl DaemonApiServer for Rpc {
    async fn initialize(
        &self,
        ext: &Extensions,
        protocol_version: u32,
        _client: Option<ClientInfo>,
        tui_id: Option<TuiId>,
        tui_sig: Option<String>,
    ) -> RpcResult<InitializeResult> {
        let c = ctx(ext);
        if protocol_version != PROTOCOL_VERSION {
            return Err(rpc_error_plain(
                codes::UNSUPPORTED_PROTOCOL,
                format!("unsupported protocol version {protocol_version} (this daemon speaks {PROTOCOL_VERSION})"),
            ));
        }
        if c.tui.get().is_some() {
            return Err(invalid_params("this connection is already initialized"));
        }
        let id = match (tui_id, tui_sig) {
            (None, None) => TuiId(crate::util::random_id("tui_", 16)),
            (Some(id), Some(sig))
                if self
                    .d
                    .identity
                    .verify(id.as_str(), &sig)
                    .map_err(internal)? =>
            {
                id
            }
            (Some(_), _) => {
                return Err(rpc_error_plain(
                    codes::INVALID_TUI_SIGNATURE,
                    "tui_sig does not verify for this tui_id",
                ))
            }
            (None, Some(_)) => return Err(invalid_params("tui_sig given without tui_id")),
        };
        if c.tui.set(id.clone()).is_err() {
            return Err(invalid_params("this connection is already initialized"));
        }
        self.d.tuis.insert(
            c.conn_id,
            TuiInfo {
                tui_id: id.clone(),
                connected_at: c.connected_at.clone(),
                transport: c.transport.as_str().to_owned(),
                peer: c.peer.clone(),
            },
        );
        tracing::info!(conn_id = c.conn_id, tui_id = %id, "tui initialized");
        Ok(InitializeResult {
            protocol_version: PROTOCOL_VERSION,
            server_version: SERVER_VERSION.to_owned(),
            server_pid: std::process::id(),
            daemon_id: self.d.identity.daemon_id().map_err(internal)?,
            tui_sig: self.d.identity.sign(id.as_str()).map_err(internal)?,
            tui_id: id,
            capabilities: methods::ALL.iter().map(|m| (*m).to_owned()).collect(),
        })
    }

    async fn daemon_status(&self, _ext: &Extensions) -> RpcResult<DaemonStatus> {
        Ok(self.status())
    }

    async fn daemon_agents(&self, _ext: &Extensions) -> RpcResult<AgentsResult> {
        let cfg = &self.d.cfg;
        let agents = cfg
            .agent_aliases()
            .into_iter()
            .filter_map(|alias| {
                let agent = cfg.agent(&alias)?;
                Some(AgentInfo {
                    default: alias == cfg.default_agent,
                    kind: agent.kind().to_owned(),
                    model: agent.default_model().map(str::to_owned),
                    alias,
                })
            })
            .collect();
        Ok(AgentsResult { agents })
    }
}
