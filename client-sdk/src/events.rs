//! The event stream of one session subscription (`session/subscribe`), with the
//! bookkeeping a client needs to resubscribe without gaps: the last `seq` seen.

use crate::connect::RpcClient;
use crate::error::{Error, Result};
use futures::Stream;
use jsonrpsee::core::client::{Subscription, SubscriptionCloseReason};
use sessiond_protocol::types::CloseReason;
use sessiond_protocol::{Event, EventEnvelope, SessionId};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Why an [`EventStream`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The daemon sent `session_closed` (the last event of every subscription).
    SessionClosed(CloseReason),
    /// The client's buffer for this subscription overflowed and jsonrpsee dropped it;
    /// the stream yielded [`Error::Lagged`] last. Resubscribe with `since_seq`.
    Lagged,
    /// The subscription or the connection was closed without `session_closed`.
    Closed,
}

/// Events of one session, in `seq` order.
///
/// Implements `Stream<Item = Result<EventEnvelope, Error>>`. An `Err` item is either
/// [`Error::Decode`] (one notification that did not parse; the stream goes on) or
/// [`Error::Lagged`] (the last item). The stream ends after a `session_closed` event,
/// or when the subscription or the connection closes.
///
/// The stream holds the connection open while it lives, even if the [`crate::Client`]
/// it came from is dropped. Dropping it unsubscribes (best effort); [`unsubscribe`]
/// waits for it.
///
/// [`unsubscribe`]: EventStream::unsubscribe
pub struct EventStream {
    session_id: SessionId,
    sub: Option<Subscription<EventEnvelope>>,
    book: Bookkeeping,
    call_timeout: Duration,
    /// Yield `replay_complete` (off by default: most consumers want session events only).
    boundary: bool,
    _rpc: Arc<RpcClient>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("session_id", &self.session_id)
            .field("last_seq", &self.book.last_seq)
            .field("end", &self.book.end)
            .finish_non_exhaustive()
    }
}

impl EventStream {
    pub(crate) fn new(
        session_id: SessionId,
        since_seq: Option<u64>,
        sub: Subscription<EventEnvelope>,
        rpc: Arc<RpcClient>,
        call_timeout: Duration,
    ) -> EventStream {
        EventStream {
            session_id,
            sub: Some(sub),
            book: Bookkeeping::new(since_seq),
            call_timeout,
            boundary: false,
            _rpc: rpc,
        }
    }

    /// The session this stream follows.
    pub fn session_id(&self) -> &SessionId {
        &self.session_id
    }

    /// Also yields the `replay_complete {head_seq}` marker the daemon sends after the
    /// replay part of the subscription (PROTOCOL.md 11.1): what follows it is live.
    /// Without this the marker is consumed silently.
    pub fn with_replay_boundary(mut self) -> EventStream {
        self.boundary = true;
        self
    }

    pub(crate) fn set_replay_boundary(&mut self, on: bool) {
        self.boundary = on;
    }

    /// The `seq` of the last event yielded, or the `since_seq` the subscription was
    /// opened with if none yet. Pass it as `since_seq` to resubscribe without a gap.
    pub fn last_seq(&self) -> Option<u64> {
        self.book.last_seq
    }

    /// Why the stream ended, once it has (`None` while it is open).
    pub fn end_reason(&self) -> Option<StreamEnd> {
        self.book.end
    }

    /// The next event; `None` when the stream has ended.
    pub async fn next_event(&mut self) -> Option<Result<EventEnvelope>> {
        futures::StreamExt::next(self).await
    }

    /// Ends the subscription (`session/unsubscribe`) and waits until the client has
    /// released it. A stream that has already ended just returns `Ok`.
    pub async fn unsubscribe(mut self) -> Result<()> {
        let Some(sub) = self.sub.take() else {
            return Ok(());
        };
        match tokio::time::timeout(self.call_timeout, sub.unsubscribe()).await {
            Ok(r) => r.map_err(Error::from),
            Err(_) => Err(Error::Timeout),
        }
    }
}

impl Stream for EventStream {
    type Item = Result<EventEnvelope>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(sub) = this.sub.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = loop {
            match Pin::new(&mut *sub).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(env)))
                    if !this.boundary && matches!(env.event, Event::ReplayComplete { .. }) =>
                {
                    continue
                }
                Poll::Ready(item) => break item,
            }
        };
        let lagged =
            polled.is_none() && matches!(sub.close_reason(), Some(SubscriptionCloseReason::Lagged));
        let out = this.book.observe(polled, lagged);
        if this.book.end.is_some() {
            // Dropping the subscription releases it in the client (and unsubscribes
            // if the daemon still holds it).
            this.sub = None;
        }
        Poll::Ready(out)
    }
}

/// The state machine behind [`EventStream`], apart from I/O.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Bookkeeping {
    pub(crate) last_seq: Option<u64>,
    pub(crate) end: Option<StreamEnd>,
}

impl Bookkeeping {
    pub(crate) fn new(since_seq: Option<u64>) -> Bookkeeping {
        Bookkeeping {
            last_seq: since_seq,
            end: None,
        }
    }

    /// Takes what the subscription produced (`None`: it closed; `lagged`: because it
    /// overflowed) and returns what the stream yields.
    pub(crate) fn observe(
        &mut self,
        item: Option<std::result::Result<EventEnvelope, serde_json::Error>>,
        lagged: bool,
    ) -> Option<Result<EventEnvelope>> {
        if self.end.is_some() {
            return None;
        }
        match item {
            // The replay boundary is not an event of the session: it moves nothing.
            Some(Ok(env)) if matches!(env.event, Event::ReplayComplete { .. }) => Some(Ok(env)),
            Some(Ok(env)) => {
                self.last_seq = Some(env.seq);
                if let Event::SessionClosed { reason } = env.event {
                    self.end = Some(StreamEnd::SessionClosed(reason));
                }
                Some(Ok(env))
            }
            Some(Err(e)) => Some(Err(Error::Decode(format!("bad event: {e}")))),
            None if lagged => {
                self.end = Some(StreamEnd::Lagged);
                Some(Err(Error::Lagged))
            }
            None => {
                self.end = Some(StreamEnd::Closed);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_protocol::TurnId;

    fn env(seq: u64, event: Event) -> EventEnvelope {
        EventEnvelope {
            session_id: SessionId::from("s"),
            seq,
            at: "2025-01-01T00:00:00Z".into(),
            event,
        }
    }

    fn chunk(seq: u64) -> EventEnvelope {
        env(
            seq,
            Event::AgentMessageChunk {
                turn_id: TurnId::from("t"),
                text: "x".into(),
            },
        )
    }

    #[test]
    fn last_seq_starts_at_since_seq_and_follows_events() {
        let mut b = Bookkeeping::new(Some(4));
        assert_eq!(b.last_seq, Some(4));
        let got = b.observe(Some(Ok(chunk(5))), false).unwrap().unwrap();
        assert_eq!(got.seq, 5);
        assert_eq!(b.last_seq, Some(5));
        b.observe(Some(Ok(chunk(6))), false);
        assert_eq!(b.last_seq, Some(6));
        assert_eq!(b.end, None);

        let fresh = Bookkeeping::new(None);
        assert_eq!(fresh.last_seq, None);
    }

    #[test]
    fn a_bad_notification_is_an_error_item_and_the_stream_goes_on() {
        let mut b = Bookkeeping::new(None);
        b.observe(Some(Ok(chunk(1))), false);
        let bad = serde_json::from_str::<EventEnvelope>("{}").unwrap_err();
        assert!(matches!(
            b.observe(Some(Err(bad)), false),
            Some(Err(Error::Decode(_)))
        ));
        assert_eq!(b.last_seq, Some(1));
        assert_eq!(b.end, None);
        assert!(b.observe(Some(Ok(chunk(2))), false).is_some());
        assert_eq!(b.last_seq, Some(2));
    }

    #[test]
    fn session_closed_is_yielded_and_then_the_stream_ends() {
        let mut b = Bookkeeping::new(None);
        let closed = env(
            9,
            Event::SessionClosed {
                reason: CloseReason::Evicted,
            },
        );
        let got = b.observe(Some(Ok(closed.clone())), false);
        assert_eq!(got.unwrap().unwrap(), closed);
        assert_eq!(b.end, Some(StreamEnd::SessionClosed(CloseReason::Evicted)));
        assert_eq!(b.last_seq, Some(9));
        // Anything after the end is swallowed.
        assert!(b.observe(Some(Ok(chunk(10))), false).is_none());
        assert_eq!(b.last_seq, Some(9));
    }

    #[test]
    fn lagging_yields_one_lagged_error_then_ends() {
        let mut b = Bookkeeping::new(Some(2));
        assert!(matches!(b.observe(None, true), Some(Err(Error::Lagged))));
        assert_eq!(b.end, Some(StreamEnd::Lagged));
        assert!(b.observe(None, true).is_none());
        assert_eq!(b.last_seq, Some(2));
    }

    #[test]
    fn a_plain_close_ends_without_an_error() {
        let mut b = Bookkeeping::new(None);
        assert!(b.observe(None, false).is_none());
        assert_eq!(b.end, Some(StreamEnd::Closed));
    }
}
