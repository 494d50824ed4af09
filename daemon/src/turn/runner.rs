//! Runs a session's queued turns one after another: take the next turn from the
//! host, run its agent (with the turn's time limit, catching a panic), compute the
//! verdict, hand it back. What starting and ending a turn changes in the session is
//! the host's business (the store's turn transitions); the runner holds no lock.

use super::cancel::CancelSlot;
use crate::agent::{Agent, Emitter, RequestResponse, TurnInput, TurnIo};
use futures::future::BoxFuture;
use sessiond_protocol::{CancelCause, SessionId, StopReason, TurnId, TurnVerdict};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Response sent for requests still pending when their turn ends.
pub fn cancelled_response() -> serde_json::Value {
    serde_json::json!({ "outcome": "cancelled" })
}

/// A turn the host has made the running one.
pub struct StartedTurn {
    pub turn_id: TurnId,
    pub slot: CancelSlot,
    pub emit: Emitter,
    pub responses: mpsc::UnboundedReceiver<RequestResponse>,
    /// The agent that runs it, or why there is none.
    pub agent: Result<Arc<dyn Agent>, String>,
    /// Builds the agent's input (history and attachments are read when it runs).
    pub input: BoxFuture<'static, Result<TurnInput, String>>,
    /// `max_turn_secs` (0: no limit).
    pub max_secs: u64,
}

/// What the runner needs from the session's keeper (the store).
pub trait TurnHost: Send + Sync + 'static {
    /// Makes the next queued turn the running one; `None` (and the runner stops)
    /// when there is nothing more to run or the residency changed.
    fn start_next(self: &Arc<Self>, id: &SessionId, incarnation: u64) -> Option<StartedTurn>;
    /// Fires a turn's token with a cause (counted when it fired).
    fn fire(&self, slot: &CancelSlot, cause: CancelCause) -> bool;
    /// `None` while the session's storage backlog has room; else a future that
    /// resolves once it has room again.
    fn backlog_full(self: &Arc<Self>, id: &SessionId) -> Option<BoxFuture<'static, ()>>;
    /// Ends the turn with its verdict: persisted, then published.
    fn finish(
        self: &Arc<Self>,
        id: &SessionId,
        incarnation: u64,
        slot: &CancelSlot,
        verdict: TurnVerdict,
    ) -> BoxFuture<'static, ()>;
}

/// Spawns the runner of a session (its entry's `busy` flag is already set).
pub fn spawn<H: TurnHost>(host: Arc<H>, id: SessionId, incarnation: u64) {
    tokio::spawn(async move {
        while let Some(started) = host.start_next(&id, incarnation) {
            run_turn(&host, &id, started, incarnation).await;
        }
    });
}

async fn run_turn<H: TurnHost>(host: &Arc<H>, id: &SessionId, s: StartedTurn, incarnation: u64) {
    let token = s.slot.token();
    let result = match (s.input.await, s.agent) {
        (Err(e), _) | (_, Err(e)) => Err(e),
        (Ok(input), Ok(agent)) => {
            let io = TurnIo {
                emit: s.emit.clone(),
                responses: s.responses,
                cancel: token.clone(),
            };
            let fut = Throttled {
                inner: agent.run(input, io),
                room: None,
                host: host.clone(),
                id: id.clone(),
            };
            // A panicking provider fails its turn instead of wedging the session.
            let fut = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(fut));
            let fut = async move {
                fut.await
                    .unwrap_or_else(|_| Err("the agent crashed".to_owned()))
            };
            if s.max_secs == 0 {
                fut.await
            } else {
                tokio::pin!(fut);
                tokio::select! {
                    r = &mut fut => r,
                    _ = tokio::time::sleep(Duration::from_secs(s.max_secs)) => {
                        host.fire(&s.slot, CancelCause::Timeout);
                        fut.await
                    }
                }
            }
        }
    };
    let acc = s.emit.snapshot();
    let (stop_reason, cancel_cause, error) = match (s.slot.cause(), result) {
        (Some(cause), _) => (StopReason::Cancelled, Some(cause), None),
        (None, Ok(())) => (acc.stop_reason.unwrap_or(StopReason::EndTurn), None, None),
        (None, Err(e)) => (StopReason::Failed, None, Some(e)),
    };
    if let Some(e) = &error {
        tracing::warn!(session_id = %id, turn_id = %s.turn_id, error = %e, "turn failed");
    }
    let verdict = TurnVerdict {
        turn_id: s.turn_id.clone(),
        stop_reason,
        cancel_cause,
        error,
        usage: acc.usage,
        content: acc.content,
    };
    host.finish(id, incarnation, &s.slot, verdict).await;
}

/// The agent's future, not polled while the session's storage backlog is full:
/// backpressure falls on this turn only, never on other sessions.
struct Throttled<H: TurnHost> {
    inner: BoxFuture<'static, Result<(), String>>,
    room: Option<BoxFuture<'static, ()>>,
    host: Arc<H>,
    id: SessionId,
}

impl<H: TurnHost> std::future::Future for Throttled<H> {
    type Output = Result<(), String>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = &mut *self;
        if let Some(room) = this.room.as_mut() {
            if room.as_mut().poll(cx).is_pending() {
                return std::task::Poll::Pending;
            }
            this.room = None;
        }
        let r = this.inner.as_mut().poll(cx);
        if r.is_pending() {
            // Checked after the poll that may have published: the agent is not
            // polled again before the backlog has room.
            this.room = this.host.backlog_full(&this.id);
        }
        r
    }
}
