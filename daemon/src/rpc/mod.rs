//! The JSON-RPC surface: one file per method group, all implemented on [`Rpc`],
//! merged into one module served on every transport.

mod admin;
mod daemon;
mod feed;
mod list_json;
mod messages;
pub mod middleware;
mod page;
pub mod panic;
mod session;
pub mod span;
mod subscribe;
mod turn;
mod upload;

use crate::state::{ConnCtx, Daemon, Transport};
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::{Extensions, RpcModule};
use sessiond_protocol::api::{
    AdminApiServer, DaemonApiServer, FeedApiServer, SessionApiServer, TurnApiServer,
    UploadApiServer,
};
use sessiond_protocol::error::{codes, rpc_error_plain};
use std::sync::Arc;

/// The handler of every method; per-connection state comes from the extensions.
#[derive(Clone)]
pub struct Rpc {
    pub(crate) d: Arc<Daemon>,
}

/// Builds the module with every method of the protocol.
pub fn module(d: Arc<Daemon>) -> RpcModule<()> {
    let rpc = Rpc { d };
    let mut m = RpcModule::new(());
    // Method names are unique across the groups, so merging cannot fail.
    m.merge(DaemonApiServer::into_rpc(rpc.clone()))
        .expect("unique method names");
    daemon::install_status(&mut m, rpc.clone());
    m.merge(SessionApiServer::into_rpc(rpc.clone()))
        .expect("unique method names");
    list_json::install(&mut m, rpc.clone());
    m.merge(TurnApiServer::into_rpc(rpc.clone()))
        .expect("unique method names");
    m.merge(UploadApiServer::into_rpc(rpc.clone()))
        .expect("unique method names");
    m.merge(FeedApiServer::into_rpc(rpc.clone()))
        .expect("unique method names");
    m.merge(AdminApiServer::into_rpc(rpc))
        .expect("unique method names");
    m.register_method(sessiond_protocol::methods::RPC_DISCOVER, |_, _, _| {
        sessiond_protocol::schema::openrpc()
    })
    .expect("unique method names");
    #[cfg(debug_assertions)]
    if std::env::var_os(TEST_PANIC_ENV).is_some() {
        install_panic_methods(&mut m);
    }
    m
}

/// Debug builds only: with this variable in the daemon's environment, two methods
/// that panic (`rpc.sessiond.test_panic`, synchronous, and
/// `rpc.sessiond.test_panic_async`) are served, so that the integration tests can
/// check that every transport answers a panicking handler ([`panic`]). A release
/// build has neither the methods nor the variable.
#[cfg(debug_assertions)]
pub const TEST_PANIC_ENV: &str = "SESSIOND_TEST_PANIC_METHODS";

#[cfg(debug_assertions)]
fn install_panic_methods(m: &mut RpcModule<()>) {
    m.register_method(
        "rpc.sessiond.test_panic",
        |_, _, _| -> Result<(), ErrorObjectOwned> { panic!("rpc.sessiond.test_panic was called") },
    )
    .expect("unique method names");
    m.register_async_method("rpc.sessiond.test_panic_async", |_, _, _| async {
        if true {
            panic!("rpc.sessiond.test_panic_async was called");
        }
        Ok::<(), ErrorObjectOwned>(())
    })
    .expect("unique method names");
}

/// The connection context of a call. Every transport inserts one; a call without
/// one (e.g. `RpcModule::call` in tests) is an anonymous local caller.
pub(crate) fn ctx(ext: &Extensions) -> Arc<ConnCtx> {
    ext.get::<Arc<ConnCtx>>()
        .cloned()
        .unwrap_or_else(|| Arc::new(ConnCtx::new(0, Transport::Unix, "in-process".into())))
}

pub(crate) fn invalid_params(msg: impl Into<String>) -> ErrorObjectOwned {
    rpc_error_plain(codes::INVALID_PARAMS, msg)
}

pub(crate) fn require_admin(ctx: &ConnCtx) -> Result<(), ErrorObjectOwned> {
    if ctx.transport == Transport::Unix {
        Ok(())
    } else {
        Err(rpc_error_plain(
            codes::ADMIN_REQUIRED,
            "admin methods are served over the unix socket only",
        ))
    }
}
