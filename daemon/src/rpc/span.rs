//! One tracing span per call, named `rpc`, with the method and (when the params
//! name one) the session id, so that every log line a call causes says which call
//! and which session it belongs to. Also where a subscription inside a batch is
//! refused (jsonrpsee would answer it twice).

use jsonrpsee::core::middleware::{Batch, BatchEntry, BatchEntryErr, Notification, RpcServiceT};
use jsonrpsee::types::ErrorObject;
use jsonrpsee::types::Request;
use serde::Deserialize;
use std::future::Future;
use tracing::Instrument;

/// The layer that wraps jsonrpsee's service with [`Traced`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceLayer;

impl<S> tower::Layer<S> for TraceLayer {
    type Service = Traced<S>;

    fn layer(&self, inner: S) -> Traced<S> {
        Traced { inner }
    }
}

/// Runs each call inside its span.
#[derive(Debug, Clone)]
pub struct Traced<S> {
    inner: S,
}

/// The only field of the params this looks at.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow)]
    session_id: Option<std::borrow::Cow<'a, str>>,
}

/// The `session_id` of named params, if any.
pub fn session_id_of(params: Option<&str>) -> Option<String> {
    let text = params?;
    if !text.trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_str::<Probe>(text)
        .ok()?
        .session_id
        .map(|s| s.chars().take(128).collect())
}

impl<S> RpcServiceT for Traced<S>
where
    S: RpcServiceT + Send + Sync + Clone + 'static,
{
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(&self, req: Request<'a>) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        let span = tracing::info_span!(
            "rpc",
            method = %req.method_name(),
            session_id = tracing::field::Empty,
        );
        // The params are looked at only when the span is recorded (RUST_LOG / `log`
        // at info for `rpc`): with the span off, a call costs no parse here.
        if !span.is_disabled() {
            if let Some(id) = session_id_of(req.params.as_ref().map(|p| p.get())) {
                span.record("session_id", tracing::field::display(&id));
            }
        }
        let call = self.inner.call(req);
        async move {
            let r = call.await;
            tracing::debug!("answered");
            r
        }
        .instrument(span)
    }

    fn batch<'a>(
        &self,
        mut batch: Batch<'a>,
    ) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        refuse_batched_subscriptions(&mut batch);
        self.inner
            .batch(batch)
            .instrument(tracing::info_span!("rpc_batch"))
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.inner.notification(n)
    }
}

/// Methods that open a subscription: jsonrpsee would answer one inside a batch twice
/// (alone and in the batch's array), so inside a batch each gets `-32600` instead,
/// once, in the array.
const SUBSCRIBE_METHODS: &[&str] = &["session/subscribe", "daemon/subscribe"];

fn refuse_batched_subscriptions(batch: &mut Batch<'_>) {
    for entry in batch.iter_mut() {
        let id = match entry {
            Ok(BatchEntry::Call(req)) if SUBSCRIBE_METHODS.contains(&req.method_name()) => req.id(),
            _ => continue,
        };
        let err = ErrorObject::owned(
            -32600,
            "subscriptions cannot be opened inside a batch; send the call alone",
            None::<()>,
        );
        *entry = Err(BatchEntryErr::new(id, err));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_id_comes_from_named_params_only() {
        assert_eq!(
            session_id_of(Some(r#"{"session_id":"s_1","text":"x"}"#)).as_deref(),
            Some("s_1")
        );
        assert_eq!(session_id_of(Some(r#"["s_1"]"#)), None);
        assert_eq!(session_id_of(Some(r#"{"text":"x"}"#)), None);
        assert_eq!(session_id_of(None), None);
    }
}
