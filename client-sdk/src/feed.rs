//! [`FeedStream`]: the daemon-wide session feed (`daemon/subscribe`), as a `Stream`
//! of [`DaemonUpdate`]s.

use crate::connect::RpcClient;
use crate::error::{Error, Result};
use futures::Stream;
use jsonrpsee::core::client::Subscription;
use sessiond_protocol::DaemonUpdate;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// `session_changed` / `session_deleted` updates for every session of the daemon.
///
/// An `Err` item is [`Error::Decode`] (one notification that did not parse; the stream
/// goes on) or [`Error::Lagged`] (the client's buffer overflowed; the last item:
/// subscribe again and reload the list). The stream ends when the connection closes.
/// Dropping it unsubscribes (best effort).
pub struct FeedStream {
    sub: Option<Subscription<DaemonUpdate>>,
    _rpc: Arc<RpcClient>,
}

impl std::fmt::Debug for FeedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedStream")
            .field("open", &self.sub.is_some())
            .finish_non_exhaustive()
    }
}

impl FeedStream {
    pub(crate) fn new(sub: Subscription<DaemonUpdate>, rpc: Arc<RpcClient>) -> FeedStream {
        FeedStream {
            sub: Some(sub),
            _rpc: rpc,
        }
    }

    /// The next update; `None` once the stream has ended.
    pub async fn next_update(&mut self) -> Option<Result<DaemonUpdate>> {
        futures::StreamExt::next(self).await
    }
}

impl Stream for FeedStream {
    type Item = Result<DaemonUpdate>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(sub) = self.sub.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(&mut *sub).poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(u))) => Poll::Ready(Some(Ok(u))),
            Poll::Ready(Some(Err(e))) => {
                Poll::Ready(Some(Err(Error::Decode(format!("bad update: {e}")))))
            }
            Poll::Ready(None) => {
                let lagged = matches!(
                    sub.close_reason(),
                    Some(jsonrpsee::core::client::SubscriptionCloseReason::Lagged)
                );
                self.sub = None;
                Poll::Ready(lagged.then_some(Err(Error::Lagged)))
            }
        }
    }
}
