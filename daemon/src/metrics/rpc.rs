//! A jsonrpsee RPC middleware that times every call by method for
//! `sessiond_rpc_duration_seconds`.

use jsonrpsee::core::middleware::{Batch, Notification, RpcServiceT};
use jsonrpsee::types::Request;
use std::future::Future;
use std::time::Instant;

/// The layer to give `RpcServiceBuilder::layer_fn`.
pub fn layer<S>(service: S) -> RpcTimer<S> {
    RpcTimer { service }
}

/// Wraps the RPC service; calls inside a batch are timed as one `batch`.
#[derive(Clone)]
pub struct RpcTimer<S> {
    service: S,
}

impl<S> RpcServiceT for RpcTimer<S>
where
    S: RpcServiceT + Send + Sync + Clone + 'static,
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
            let start = Instant::now();
            let r = service.call(request).await;
            super::rpc(&method, start.elapsed());
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
