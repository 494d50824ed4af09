//! The RPC middleware of every transport: times each call by method (for
//! `sessiond_rpc_duration_seconds`), and answers a subscription asked over plain
//! HTTP POST with an explanation (notifications need the WebSocket) instead of
//! jsonrpsee's bare internal error.

use futures::future::Either;
use jsonrpsee::core::middleware::{Batch, Notification, RpcServiceT};
use jsonrpsee::types::{ErrorObjectOwned, Request};
use jsonrpsee::MethodResponse;
use std::future::Future;

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
        let method = request.method_name();
        if is_subscription(method) && request.extensions().get::<PlainHttp>().is_some() {
            let err = ErrorObjectOwned::owned::<()>(
                sessiond_protocol::codes::INVALID_REQUEST,
                format!(
                    "{method} needs a websocket connection: plain http post cannot carry notifications"
                ),
                None,
            );
            return Either::Left(std::future::ready(MethodResponse::error(request.id, err)));
        }
        // No clone of the service and no copy of the method name per call: the
        // timer holds the method's histogram, resolved before the request moves on.
        let timer = crate::metrics::rpc_timer(method);
        let call = self.service.call(request);
        Either::Right(async move {
            let r = call.await;
            timer.finish();
            r
        })
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
