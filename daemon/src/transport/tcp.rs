//! The opt-in TCP WebSocket listener. Every upgrade passes the [`Gate`] (Host,
//! Origin, bearer token) before jsonrpsee sees it; calls over it run as
//! [`Transport::Ws`], which keeps `admin/*` and path uploads off it.

use super::accept::{Backoff, RateLimit};
use super::gate::Gate;
use super::unix::{serve_connection, server_config, Admission, ConnGuard};
use crate::state::{Daemon, Transport};
use anyhow::Context;
use jsonrpsee::server::StopHandle;
use jsonrpsee::Methods;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
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

/// At most this many TCP connections may be waiting to pass the gate at once.
const MAX_PENDING: usize = 64;
/// File descriptors kept out of the TCP listener's reach, so that the Unix socket,
/// the database and agent processes keep working however many TCP peers connect.
const FD_RESERVE: u64 = 128;

/// How many TCP connections may be open at once with `nofile` file descriptors: half
/// of what is left after the reserve, at least a handful.
pub fn max_tcp_connections(nofile: u64) -> usize {
    (nofile.saturating_sub(FD_RESERVE) / 2).clamp(8, 4096) as usize
}

/// Accepts connections until `stop` fires. Connections beyond the caps (all TCP
/// connections; those that have not passed the gate yet) are closed at once, and a
/// connection that has not passed the gate within `ws.upgrade_timeout_secs` is dropped.
pub async fn serve(
    bound: Bound,
    d: Arc<Daemon>,
    methods: Methods,
    stop_handle: StopHandle,
    stop: CancellationToken,
) {
    let builder = jsonrpsee::server::Server::builder()
        .set_config(server_config(d.cfg.max_upload_bytes))
        .set_rpc_middleware(crate::rpc::panic::middleware())
        .to_service_builder();
    let upgrade_timeout = Duration::from_secs(d.cfg.ws.upgrade_timeout_secs);
    let max_open = max_tcp_connections(super::accept::nofile_limit());
    let open = Arc::new(Semaphore::new(max_open));
    let pending = Arc::new(Semaphore::new(MAX_PENDING.min(max_open)));
    let mut backoff = Backoff::new("tcp");
    let mut over_cap = RateLimit::new(Duration::from_secs(5));
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            r = bound.listener.accept() => match r {
                Ok(pair) => {
                    backoff.succeeded();
                    pair
                }
                Err(e) => {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = backoff.pause(&e) => continue,
                    }
                }
            },
        };
        let permits = open
            .clone()
            .try_acquire_owned()
            .ok()
            .zip(pending.clone().try_acquire_owned().ok());
        let Some((open_permit, pending_permit)) = permits else {
            if let Some(suppressed) = over_cap.allow(std::time::Instant::now()) {
                tracing::warn!(
                    %peer,
                    max_open,
                    max_pending = MAX_PENDING,
                    suppressed,
                    "too many tcp connections; closing new ones"
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let ctx = d.connected(Transport::Ws, peer.to_string());
        let ctx_id = ctx.conn_id;
        let rpc = builder.clone().build(methods.clone(), stop_handle.clone());
        let stopped = stop_handle.clone().shutdown();
        let guard = Arc::new(ConnGuard {
            d: d.clone(),
            ctx,
            _permit: Some(open_permit),
        });
        let admitted = CancellationToken::new();
        let admission = Admission {
            gate: bound.gate.clone(),
            admitted: admitted.clone(),
        };
        let conn = serve_connection(stream, rpc, guard, Some(admission), stopped);
        tokio::spawn(
            async move {
                tokio::pin!(conn);
                tokio::select! {
                    _ = &mut conn => return,
                    _ = admitted.cancelled() => {}
                    _ = tokio::time::sleep(upgrade_timeout) => {
                        tracing::debug!("no upgrade in time; closing");
                        return;
                    }
                }
                drop(pending_permit);
                conn.await;
            }
            .instrument(tracing::info_span!(
                "connection",
                conn_id = ctx_id,
                transport = "ws",
                %peer
            )),
        );
    }
}
