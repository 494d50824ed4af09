//! The contract's names: error codes and their names, the error helpers, the method
//! names, and that the `#[rpc]` traits register exactly `methods::ALL`.

use serde_json::{json, Value};
use sessiond_protocol::error::{code_name, codes};
use sessiond_protocol::methods;
use sessiond_protocol::params::*;
use sessiond_protocol::types::*;
use sessiond_protocol::{RequestId, SessionId, TuiId};
use std::collections::BTreeSet;

#[test]
fn error_codes_match_the_contract_table() {
    let table = [
        (-32040, "UNSUPPORTED_PROTOCOL", codes::UNSUPPORTED_PROTOCOL),
        (-32041, "SESSION_NOT_FOUND", codes::SESSION_NOT_FOUND),
        (
            -32042,
            "SESSION_LIMIT_REACHED",
            codes::SESSION_LIMIT_REACHED,
        ),
        (-32043, "SESSION_BUSY", codes::SESSION_BUSY),
        (-32044, "SESSION_NOT_OWNED", codes::SESSION_NOT_OWNED),
        (-32045, "SESSION_TERMINATED", codes::SESSION_TERMINATED),
        (-32046, "ADMIN_REQUIRED", codes::ADMIN_REQUIRED),
        (
            -32047,
            "INVALID_TUI_SIGNATURE",
            codes::INVALID_TUI_SIGNATURE,
        ),
        (-32048, "UPLOAD_TOO_LARGE", codes::UPLOAD_TOO_LARGE),
        (-32049, "NO_PENDING_REQUEST", codes::NO_PENDING_REQUEST),
        (-32050, "AGENT_UNAVAILABLE", codes::AGENT_UNAVAILABLE),
        (-32051, "SHUTTING_DOWN", codes::SHUTTING_DOWN),
        // Standard JSON-RPC codes.
        (-32700, "PARSE_ERROR", codes::PARSE_ERROR),
        (-32600, "INVALID_REQUEST", codes::INVALID_REQUEST),
        (-32601, "METHOD_NOT_FOUND", codes::METHOD_NOT_FOUND),
        (-32602, "INVALID_PARAMS", codes::INVALID_PARAMS),
        (-32603, "INTERNAL_ERROR", codes::INTERNAL_ERROR),
    ];
    let mut seen = BTreeSet::new();
    for (code, name, constant) in table {
        assert_eq!(constant, code, "{name}");
        assert_eq!(code_name(code), name);
        assert!(seen.insert(code), "duplicate code {code}");
    }
    assert_eq!(code_name(-32000), "ERROR");
}

#[test]
fn error_helpers_build_the_given_object() {
    let e = sessiond_protocol::error::rpc_error(
        codes::SESSION_BUSY,
        "queue is full",
        Some(json!({"session_id": "s-1"})),
    );
    assert_eq!(e.code(), codes::SESSION_BUSY);
    assert_eq!(e.message(), "queue is full");
    let data: Value = serde_json::from_str(e.data().unwrap().get()).unwrap();
    assert_eq!(data, json!({"session_id": "s-1"}));
    let e = sessiond_protocol::error::rpc_error_plain(codes::SESSION_NOT_FOUND, "no such session");
    assert!(e.data().is_none());
    assert_eq!(e.code(), -32041);
}

#[test]
fn method_names_are_the_contract_names() {
    let want = [
        "initialize",
        "daemon/status",
        "session/new",
        "session/load",
        "session/list",
        "session/get",
        "session/messages",
        "session/configure",
        "session/close",
        "session/delete",
        "session/prompt",
        "session/cancel",
        "session/respond",
        "session/upload",
        "session/uploads",
        "session/subscribe",
        "session/unsubscribe",
        "session/rename",
        "daemon/agents",
        "admin/kill",
        "admin/sessions",
        "admin/stats",
        "admin/tuis",
        "admin/shutdown",
        "daemon/subscribe",
        "daemon/unsubscribe",
        "admin/reload",
        "rpc.discover",
    ];
    let all: BTreeSet<&str> = methods::ALL.iter().copied().collect();
    assert_eq!(all.len(), methods::ALL.len(), "duplicates in methods::ALL");
    assert_eq!(all, want.into_iter().collect());
    assert_eq!(methods::SESSION_UPDATE, "session/update");
    assert!(
        !all.contains(methods::SESSION_UPDATE),
        "a notification is not a method"
    );
}

/// `methods::ALL` against what the `#[rpc]` traits actually register.
mod trait_methods {
    use super::*;
    use jsonrpsee::core::{async_trait, RpcResult, SubscriptionResult};
    use jsonrpsee::{Extensions, PendingSubscriptionSink};
    use sessiond_protocol::api::*;

    /// A server that registers every method and serves none (only the names matter).
    struct Nothing;

    fn not_served<T>() -> RpcResult<T> {
        Err(jsonrpsee::types::ErrorObjectOwned::owned::<()>(
            -32601,
            "not served in this test",
            None,
        ))
    }

    #[async_trait]
    impl DaemonApiServer for Nothing {
        async fn initialize(
            &self,
            _: &Extensions,
            _: u32,
            _: Option<ClientInfo>,
            _: Option<TuiId>,
            _: Option<String>,
        ) -> RpcResult<InitializeResult> {
            not_served()
        }
        async fn daemon_status(&self, _: &Extensions) -> RpcResult<DaemonStatus> {
            not_served()
        }
        async fn daemon_agents(&self, _: &Extensions) -> RpcResult<AgentsResult> {
            not_served()
        }
    }

    #[async_trait]
    impl SessionApiServer for Nothing {
        async fn session_new(
            &self,
            _: &Extensions,
            _: Option<String>,
            _: Option<Mode>,
            _: Option<String>,
            _: Option<String>,
            _: Option<Overrides>,
            _: Option<u64>,
            _: Option<bool>,
        ) -> RpcResult<SessionResult> {
            not_served()
        }
        async fn session_load(
            &self,
            _: &Extensions,
            _: SessionId,
            _: Option<bool>,
            _: Option<bool>,
        ) -> RpcResult<SessionResult> {
            not_served()
        }
        async fn session_list(
            &self,
            _: &Extensions,
            _: Option<String>,
            _: Option<Mode>,
            _: Option<bool>,
            _: Option<SessionStatus>,
            _: Option<u32>,
            _: Option<String>,
            _: Option<String>,
            _: Option<String>,
        ) -> RpcResult<ListResult> {
            not_served()
        }
        async fn session_get(&self, _: &Extensions, _: SessionId) -> RpcResult<SessionInfo> {
            not_served()
        }
        async fn session_messages(
            &self,
            _: &Extensions,
            _: SessionId,
            _: Option<u64>,
            _: Option<u32>,
        ) -> RpcResult<MessagesResult> {
            not_served()
        }
        async fn session_configure(
            &self,
            _: &Extensions,
            _: SessionId,
            _: OverridesPatch,
        ) -> RpcResult<ConfigureResult> {
            not_served()
        }
        async fn session_rename(
            &self,
            _: &Extensions,
            _: SessionId,
            _: String,
        ) -> RpcResult<SessionInfo> {
            not_served()
        }
        async fn session_close(&self, _: &Extensions, _: SessionId) -> RpcResult<CloseResult> {
            not_served()
        }
        async fn session_delete(&self, _: &Extensions, _: SessionId) -> RpcResult<DeleteResult> {
            not_served()
        }
        async fn session_subscribe(
            &self,
            _: PendingSubscriptionSink,
            _: &Extensions,
            _: SessionId,
            _: Option<u64>,
        ) -> SubscriptionResult {
            Err("not served in this test".into())
        }
    }

    #[async_trait]
    impl TurnApiServer for Nothing {
        async fn session_prompt(
            &self,
            _: &Extensions,
            _: SessionId,
            _: String,
            _: Option<Vec<String>>,
            _: Option<bool>,
            _: Option<bool>,
        ) -> RpcResult<PromptResult> {
            not_served()
        }
        async fn session_cancel(&self, _: &Extensions, _: SessionId) -> RpcResult<CancelResult> {
            not_served()
        }
        async fn session_respond(
            &self,
            _: &Extensions,
            _: SessionId,
            _: Option<RequestId>,
            _: Value,
        ) -> RpcResult<RespondResult> {
            not_served()
        }
    }

    #[async_trait]
    impl UploadApiServer for Nothing {
        async fn session_upload(
            &self,
            _: &Extensions,
            _: SessionId,
            _: String,
            _: Option<String>,
            _: Option<String>,
            _: Option<String>,
        ) -> RpcResult<UploadEntry> {
            not_served()
        }
        async fn session_uploads(&self, _: &Extensions, _: SessionId) -> RpcResult<UploadsResult> {
            not_served()
        }
    }

    #[async_trait]
    impl AdminApiServer for Nothing {
        async fn admin_kill(&self, _: &Extensions, _: SessionId) -> RpcResult<KillResult> {
            not_served()
        }
        async fn admin_sessions(
            &self,
            _: &Extensions,
            _: Option<String>,
            _: Option<Mode>,
            _: Option<bool>,
            _: Option<SessionStatus>,
            _: Option<u32>,
            _: Option<String>,
            _: Option<String>,
            _: Option<String>,
        ) -> RpcResult<ListResult> {
            not_served()
        }
        async fn admin_stats(&self, _: &Extensions) -> RpcResult<StatsResult> {
            not_served()
        }
        async fn admin_tuis(&self, _: &Extensions) -> RpcResult<TuisResult> {
            not_served()
        }
        async fn admin_shutdown(&self, _: &Extensions, _: Option<u64>) -> RpcResult<OkResult> {
            not_served()
        }
        async fn admin_reload(&self, _: &Extensions) -> RpcResult<ReloadResult> {
            not_served()
        }
    }

    #[async_trait]
    impl FeedApiServer for Nothing {
        async fn daemon_subscribe(
            &self,
            _: PendingSubscriptionSink,
            _: &Extensions,
        ) -> SubscriptionResult {
            Ok(())
        }
    }

    #[test]
    fn methods_all_is_exactly_what_the_traits_register() {
        let mut module = DaemonApiServer::into_rpc(Nothing);
        module.merge(SessionApiServer::into_rpc(Nothing)).unwrap();
        module.merge(TurnApiServer::into_rpc(Nothing)).unwrap();
        module.merge(UploadApiServer::into_rpc(Nothing)).unwrap();
        module.merge(AdminApiServer::into_rpc(Nothing)).unwrap();
        module.merge(FeedApiServer::into_rpc(Nothing)).unwrap();
        let mut registered: BTreeSet<&str> = module.method_names().collect();
        // `rpc.discover` is registered by the daemon beside the traits.
        registered.insert(methods::RPC_DISCOVER);
        let all: BTreeSet<&str> = methods::ALL.iter().copied().collect();
        assert_eq!(registered, all);
    }
}
