//! The RPC middleware of every transport: times each call by method (for
//! `sessiond_rpc_duration_seconds`), and answers a subscription asked over plain
//! HTTP POST with an explanation (notifications need the WebSocket) instead of
//! jsonrpsee's bare internal error.

use jsonrpsee::core::middleware::{Batch, Notification, RpcServiceT};
use jsonrpsee::types::{ErrorObjectOwned, Request};
use jsonrpsee::MethodResponse;
use std::future::Future;
use std::time::Instant;

/// Put into the extensions of a request that came as plain HTTP (no upgrade).
#[derive(Debug, Clone, Copy)]
pub struct PlainHttp;

/// The layer to give `RpcServiceBuilder::layer_fn`.
pub fn layer<S>(service: S) -> Middleware<S> {
    Middleware { service }
}

/// Wraps the RPC service; calls inside a batch are not timed one by one.
#[derive(Clone)]
pub struct Middleware<S> {
    service: S,
}

fn is_subscription(method: &str) -> bool {
    method.ends_with("/subscribe")
}

impl<S> RpcServiceT for Middleware<S>
where
    S: RpcServiceT<MethodResponse = MethodResponse> + Send + Sync + Clone + 'static,
{
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(
        &self,
        request: Request<'a>,
    ) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        let service = self.service.clone();
        let method = request.method_name().to_owned();
        async move {
            if is_subscription(&method) && request.extensions().get::<PlainHttp>().is_some() {
                let err = ErrorObjectOwned::owned::<()>(
                    sessiond_protocol::codes::INVALID_REQUEST,
                    format!(
                        "{method} needs a websocket connection: plain http post cannot carry notifications"
                    ),
                    None,
                );
                return MethodResponse::error(request.id, err);
            }
            let start = Instant::now();
            let r = service.call(request).await;
            crate::metrics::rpc(&method, start.elapsed());
            r
        }
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        self.service.batch(batch)
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.service.notification(n)
    }
}
