//! A handler that panics answers `-32603 internal error` (and logs a line with the
//! method) instead of leaving the call unanswered: an RPC middleware every
//! transport installs.

use futures::FutureExt;
use jsonrpsee::core::middleware::{Batch, Notification, RpcServiceBuilder, RpcServiceT};
use jsonrpsee::server::MethodResponse;
use jsonrpsee::types::{ErrorObject, Id, Request};
use sessiond_protocol::error::codes;
use std::borrow::Cow;
use std::future::Future;
use std::panic::AssertUnwindSafe;

/// Wraps the inner service.
pub type WrapFn = fn(S0) -> CatchPanic<S0>;

/// Times calls by method and explains subscriptions over plain HTTP
/// ([`super::middleware`]).
pub type MetricsFn = fn(CatchPanic<S0>) -> super::middleware::Middleware<CatchPanic<S0>>;

/// The middleware stack every transport installs: each call runs in its span
/// ([`super::span`]), is timed ([`super::middleware`]), and a panicking handler is
/// answered (this file).
pub type Middleware = RpcServiceBuilder<
    tower::layer::util::Stack<
        tower::layer::LayerFn<WrapFn>,
        tower::layer::util::Stack<
            tower::layer::LayerFn<MetricsFn>,
            tower::layer::util::Stack<super::span::TraceLayer, tower::layer::util::Identity>,
        >,
    >,
>;

/// The middleware stack of every transport.
pub fn middleware() -> Middleware {
    RpcServiceBuilder::new()
        .layer(super::span::TraceLayer)
        .layer_fn(super::middleware::layer as MetricsFn)
        .layer_fn(CatchPanic as WrapFn)
}

/// The inner service type the middleware wraps.
pub type S0 = jsonrpsee::server::middleware::rpc::RpcService;

fn internal(id: Id<'static>, method: &str) -> MethodResponse {
    tracing::error!(method, "an rpc handler panicked");
    MethodResponse::error(
        id,
        ErrorObject::owned(codes::INTERNAL_ERROR, "internal error", None::<()>),
    )
}

/// Starts a call with `start` and runs it to its end; `None` if it panicked, in
/// `start` itself or in the future. A synchronous method panics in `start`: jsonrpsee
/// runs its callback inside the service's `call` and returns a ready future.
fn guarded<'a, F>(start: impl FnOnce() -> F) -> impl Future<Output = Option<F::Output>> + Send + 'a
where
    F: Future + Send + 'a,
{
    let started = std::panic::catch_unwind(AssertUnwindSafe(start));
    async move {
        match started {
            Ok(fut) => AssertUnwindSafe(fut).catch_unwind().await.ok(),
            Err(_) => None,
        }
    }
}

/// Catches a panic of the wrapped service's calls.
#[derive(Clone)]
pub struct CatchPanic<S>(pub S);

impl<S> RpcServiceT for CatchPanic<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, req: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let id = req.id().into_owned();
        // The protocol's own name when it is one (no copy per call); another name is
        // copied, for the log line of a panic.
        let method = match crate::metrics::static_method_name(req.method_name()) {
            Some(m) => Cow::Borrowed(m),
            None => Cow::Owned(req.method_name().to_owned()),
        };
        let fut = guarded(|| self.0.call(req));
        async move { fut.await.unwrap_or_else(|| internal(id, &method)) }
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let fut = guarded(|| self.0.batch(batch));
        async move { fut.await.unwrap_or_else(|| internal(Id::Null, "batch")) }
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        let method = n.method_name().to_owned();
        let fut = guarded(|| self.0.notification(n));
        async move {
            fut.await.unwrap_or_else(|| {
                tracing::error!(method, "an rpc notification handler panicked");
                MethodResponse::notification()
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service whose every call panics.
    #[derive(Clone)]
    struct Boom;

    #[allow(clippy::manual_async_fn)]
    impl RpcServiceT for Boom {
        type MethodResponse = MethodResponse;
        type NotificationResponse = MethodResponse;
        type BatchResponse = MethodResponse;

        fn call<'a>(&self, _: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
            async { panic!("handler bug") }
        }

        fn batch<'a>(&self, _: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
            async { panic!("handler bug") }
        }

        fn notification<'a>(
            &self,
            _: Notification<'a>,
        ) -> impl Future<Output = MethodResponse> + Send + 'a {
            async { panic!("handler bug") }
        }
    }

    /// A service that panics in `call` itself, as jsonrpsee's service does when a
    /// synchronous method panics (it runs the method before returning a future).
    #[derive(Clone)]
    struct BoomAtOnce;

    #[allow(clippy::manual_async_fn)]
    impl RpcServiceT for BoomAtOnce {
        type MethodResponse = MethodResponse;
        type NotificationResponse = MethodResponse;
        type BatchResponse = MethodResponse;

        fn call<'a>(&self, _: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
            panic!("sync handler bug");
            #[allow(unreachable_code)]
            async {
                unreachable!()
            }
        }

        fn batch<'a>(&self, _: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
            panic!("sync handler bug");
            #[allow(unreachable_code)]
            async {
                unreachable!()
            }
        }

        fn notification<'a>(
            &self,
            _: Notification<'a>,
        ) -> impl Future<Output = MethodResponse> + Send + 'a {
            panic!("sync handler bug");
            #[allow(unreachable_code)]
            async {
                unreachable!()
            }
        }
    }

    async fn answer<S>(service: CatchPanic<S>) -> serde_json::Value
    where
        CatchPanic<S>: RpcServiceT<MethodResponse = MethodResponse>,
    {
        let req: Request<'_> =
            serde_json::from_str(r#"{"jsonrpc":"2.0","id":7,"method":"session/get"}"#).unwrap();
        let resp = service.call(req).await;
        assert!(resp.is_error());
        serde_json::from_str(resp.as_json().get()).unwrap()
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_internal_error_with_its_id() {
        for v in [
            answer(CatchPanic(Boom)).await,
            answer(CatchPanic(BoomAtOnce)).await,
        ] {
            assert_eq!(v["id"], 7);
            assert_eq!(v["error"]["code"], codes::INTERNAL_ERROR);
            assert_eq!(v["error"]["message"], "internal error");
        }
    }
}
