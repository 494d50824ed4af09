//! The opt-in TCP WebSocket listener. Every upgrade passes the [`Gate`] (Host,
//! Origin, bearer token) before jsonrpsee sees it; calls over it run as
//! [`Transport::Ws`], which keeps `admin/*` and path uploads off it.

use super::gate::Gate;
use super::unix::{serve_connection, server_config, ConnGuard};
use crate::state::{Daemon, Transport};
use anyhow::Context;
use jsonrpsee::server::StopHandle;
use jsonrpsee::Methods;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// A bound TCP WebSocket listener, ready to serve.
pub struct Bound {
    listener: TcpListener,
    gate: Arc<Gate>,
    pub addr: SocketAddr,
}

/// Binds `listen` (already validated by the config) and loads or creates the token.
pub async fn bind(d: &Daemon, listen: &str) -> anyhow::Result<Bound> {
    let token_path = d.cfg.ws_token_path();
    let token = {
        let path = token_path.clone();
        tokio::task::spawn_blocking(move || super::token::load_or_create(&path))
            .await
            .context("token task failed")??
    };
    let gate = Gate::new(&token, &d.cfg.ws.allowed_origins, &d.cfg.ws.allowed_hosts);
    let addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("ws.listen {listen:?} is not an ip:port address"))?;
    if !addr.ip().is_loopback() && !d.cfg.ws.allow_remote {
        anyhow::bail!("binding the non-loopback address {addr} needs ws.allow_remote = true");
    }
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, token_file = %token_path.display(), "tcp websocket listening");
    Ok(Bound {
        listener,
        gate: Arc::new(gate),
        addr,
    })
}

/// Accepts connections until `stop` fires.
pub async fn serve(
    bound: Bound,
    d: Arc<Daemon>,
    methods: Methods,
    stop_handle: StopHandle,
    stop: CancellationToken,
) {
    let builder = jsonrpsee::server::Server::builder()
        .set_config(server_config(d.cfg.max_upload_bytes))
        .set_rpc_middleware(
            jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new()
                .layer_fn(crate::rpc::middleware::layer),
        )
        .to_service_builder();
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            r = bound.listener.accept() => match r {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "tcp accept failed");
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let ctx = d.connected(Transport::Ws, peer.to_string());
        let ctx_id = ctx.conn_id;
        let rpc = builder.clone().build(methods.clone(), stop_handle.clone());
        let stopped = stop_handle.clone().shutdown();
        let guard = Arc::new(ConnGuard { d: d.clone(), ctx });
        let gate = Some(bound.gate.clone());
        tokio::spawn(
            serve_connection(stream, rpc, guard, gate, stopped).instrument(tracing::info_span!(
                "connection",
                conn_id = ctx_id,
                transport = "ws",
                %peer
            )),
        );
    }
}
