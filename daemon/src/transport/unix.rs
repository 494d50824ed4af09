//! The Unix socket listener: checks the peer's uid before serving anything, then
//! serves JSON-RPC over WebSocket and plain HTTP POST on the same connection.

use super::accept::Backoff;
use super::gate::{Gate, Refusal};
use super::peer::Peer;
use crate::state::{ConnCtx, Daemon, Transport};
use futures::FutureExt;
use jsonrpsee::server::{serve_with_graceful_shutdown, ServerConfig, StopHandle};
use jsonrpsee::Methods;
use std::sync::Arc;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tower::Service;
use tracing::Instrument;

/// The jsonrpsee server settings shared by all transports.
pub fn server_config(max_upload_bytes: u64) -> ServerConfig {
    ServerConfig::builder()
        .max_request_body_size(max_request_bytes(max_upload_bytes))
        .max_response_body_size(u32::MAX / 2)
        .max_connections(4096)
        .max_subscriptions_per_connection(4096)
        .set_message_buffer_capacity(4096)
        .build()
}

/// The largest request body: the largest legal upload, base64-encoded, plus room for
/// the rest of the request.
pub fn max_request_bytes(max_upload_bytes: u64) -> u32 {
    let b64 = max_upload_bytes.div_ceil(3) * 4;
    (b64 + 64 * 1024).min(u32::MAX as u64) as u32
}

/// Accepts connections until `stop` fires.
pub async fn serve(
    listener: UnixListener,
    d: Arc<Daemon>,
    methods: Methods,
    stop_handle: StopHandle,
    stop: CancellationToken,
) {
    let builder = jsonrpsee::server::Server::builder()
        .set_config(server_config(d.cfg.max_upload_bytes))
        .set_rpc_middleware(crate::rpc::panic::middleware())
        .to_service_builder();
    let mut backoff = Backoff::new("unix");
    loop {
        let stream = tokio::select! {
            _ = stop.cancelled() => break,
            r = listener.accept() => match r {
                Ok((s, _)) => {
                    backoff.succeeded();
                    s
                }
                Err(e) => {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = backoff.pause(&e) => continue,
                    }
                }
            },
        };
        let peer = match Peer::of(&stream) {
            Ok(p) if p.is_allowed() => p,
            Ok(p) => {
                tracing::warn!(uid = p.uid, "refusing a connection from another user");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read peer credentials; refusing");
                continue;
            }
        };
        let ctx = d.connected(Transport::Unix, peer.describe());
        let ctx_id = ctx.conn_id;
        let rpc = builder.clone().build(methods.clone(), stop_handle.clone());
        let stopped = stop_handle.clone().shutdown();
        let guard = Arc::new(ConnGuard {
            d: d.clone(),
            ctx,
            _permit: None,
        });
        tokio::spawn(
            serve_connection(stream, rpc, guard, None, stopped).instrument(tracing::info_span!(
                "connection",
                conn_id = ctx_id,
                transport = "unix"
            )),
        );
    }
}

/// Accounts a connection until both its HTTP connection and any WebSocket session
/// upgraded from it have ended.
pub(crate) struct ConnGuard {
    pub(crate) d: Arc<Daemon>,
    pub(crate) ctx: Arc<ConnCtx>,
    /// A place among the transport's capped connections, given back at the end.
    pub(crate) _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// The gate a TCP connection must pass, and the flag raised once a request passed it.
#[derive(Clone)]
pub(crate) struct Admission {
    pub(crate) gate: Arc<Gate>,
    pub(crate) admitted: CancellationToken,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.d.disconnected(&self.ctx);
    }
}

/// Serves one accepted connection with the connection's context in every request.
/// With an `admission`, every request must pass its gate first (the TCP WebSocket).
pub(crate) async fn serve_connection<S, L>(
    stream: S,
    rpc: jsonrpsee::server::TowerService<L, tower::layer::util::Identity>,
    guard: Arc<ConnGuard>,
    admission: Option<Admission>,
    stopped: impl std::future::Future<Output = ()>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    jsonrpsee::server::TowerService<L, tower::layer::util::Identity>: tower::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<jsonrpsee::server::HttpBody>,
            Error = jsonrpsee::core::BoxError,
            Future = std::pin::Pin<
                Box<
                    dyn std::future::Future<
                            Output = Result<
                                http::Response<jsonrpsee::server::HttpBody>,
                                jsonrpsee::core::BoxError,
                            >,
                        > + Send,
                >,
            >,
        > + tower::Service<
            http::Request<http_body_util::Full<hyper::body::Bytes>>,
            Response = http::Response<jsonrpsee::server::HttpBody>,
            Error = jsonrpsee::core::BoxError,
            Future = std::pin::Pin<
                Box<
                    dyn std::future::Future<
                            Output = Result<
                                http::Response<jsonrpsee::server::HttpBody>,
                                jsonrpsee::core::BoxError,
                            >,
                        > + Send,
                >,
            >,
        > + Clone
        + Send
        + 'static,
{
    let g = guard.clone();
    let max_body = max_request_bytes(g.d.cfg.max_upload_bytes) as usize;
    // Below hyper: WebSocket messages get the id rules of PROTOCOL.md 11.4.
    let stream = super::ws_stream::IdStream::new(stream, max_body);
    let upgrading = stream.upgrade_flag();
    let svc = tower::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
        if let Some(a) = &admission {
            if let Err(refusal) = a.gate.admit_request(&req) {
                if let Some(suppressed) = super::accept::refusal_log_allowed() {
                    tracing::warn!(
                        status = refusal.status.as_u16(),
                        reason = refusal.reason,
                        suppressed,
                        "refused a tcp websocket request"
                    );
                }
                return async move { Ok(refused(refusal)) }.boxed();
            }
            a.admitted.cancel();
        }
        // Health and metrics: plain GETs, on the Unix socket only (no gate).
        if admission.is_none() {
            if let Some(resp) = crate::metrics::http_answer(&req, &g.d) {
                return async move { Ok(resp) }.boxed();
            }
        }
        req.extensions_mut().insert(g.ctx.clone());
        if !req.headers().contains_key(http::header::UPGRADE) {
            req.extensions_mut()
                .insert(crate::rpc::middleware::PlainHttp);
        }
        let mut rpc = rpc.clone();
        if !jsonrpsee::server::ws::is_upgrade_request(&req) {
            return async move {
                super::http_edges::call(rpc, req, max_body)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))
            }
            .boxed();
        }
        upgrading.store(true, std::sync::atomic::Ordering::Relaxed);
        // The WebSocket session outlives this request: keep the connection
        // accounted until it closes.
        let closed = rpc.on_session_closed();
        let hold = g.clone();
        tokio::spawn(async move {
            closed.await;
            drop(hold);
        });
        async move { rpc.call(req).await.map_err(|e| anyhow::anyhow!("{e}")) }.boxed()
    });
    if let Err(e) = serve_with_graceful_shutdown(stream, svc, stopped).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
    drop(guard);
}

/// The reply to a refused request: the status and a one-line reason, no token.
fn refused(r: Refusal) -> http::Response<jsonrpsee::server::HttpBody> {
    let mut resp =
        http::Response::new(jsonrpsee::server::HttpBody::from(format!("{}\n", r.reason)));
    *resp.status_mut() = r.status;
    let headers = resp.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if r.status == http::StatusCode::UNAUTHORIZED {
        headers.insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer"),
        );
    }
    resp
}
