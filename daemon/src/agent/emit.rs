//! What an agent publishes through: chunks, thoughts, tool calls, requests, usage.
//! The agent sees only [`Emitter`], which accumulates the reply and hands every
//! event to a narrow [`TurnSink`] owned by the turn; it knows nothing of the store.
//! Publishing is synchronous and never waits on a subscriber.

use crate::events::EventHub;
use sessiond_protocol::{Event, PendingRequest, RequestId, RequestKind, TurnId, Usage};
use std::sync::{Arc, Mutex};

/// Where a turn's events go. The store's sink registers requests as pending in
/// the session; [`HubSink`] only publishes (provider tests).
pub trait TurnSink: Send + Sync {
    /// Publishes an event of the turn (chunk, thought, tool call, tool result).
    fn publish(&self, event: Event);
    /// Makes `request` pending on the turn and publishes its `request` event.
    fn request(&self, request: PendingRequest);
    /// Why the turn was cancelled, once its token has fired.
    fn cancel_cause(&self) -> Option<sessiond_protocol::CancelCause> {
        None
    }
}

/// A sink that publishes straight to a hub, without a session around it.
pub struct HubSink(pub Arc<EventHub>);

impl TurnSink for HubSink {
    fn publish(&self, event: Event) {
        self.0.publish(event);
    }

    fn request(&self, r: PendingRequest) {
        self.0.publish(Event::Request {
            turn_id: r.turn_id,
            request_id: r.request_id,
            kind: r.kind,
            prompt: r.prompt,
            options: r.options,
        });
    }
}

/// Publishes one turn's events and accumulates its reply and usage.
#[derive(Clone)]
pub struct Emitter {
    turn_id: TurnId,
    sink: Arc<dyn TurnSink>,
    acc: Arc<Mutex<Accumulated>>,
}

/// The reply text and usage so far.
#[derive(Default, Clone)]
pub struct Accumulated {
    pub content: String,
    pub usage: Usage,
    pub tool_messages: Vec<String>,
    /// How the agent said the turn ended, when it said more than "done"
    /// (`max_tokens`, `max_turn_requests`, `refusal`).
    pub stop_reason: Option<sessiond_protocol::StopReason>,
}

impl Emitter {
    /// An emitter for `turn_id` publishing into `sink`.
    pub fn new(turn_id: TurnId, sink: Arc<dyn TurnSink>) -> Emitter {
        Emitter {
            turn_id,
            sink,
            acc: Arc::new(Mutex::new(Accumulated::default())),
        }
    }

    /// An emitter that publishes to `hub` without a store (for testing providers).
    pub fn detached(turn_id: TurnId, hub: Arc<EventHub>) -> Emitter {
        Emitter::new(turn_id, Arc::new(HubSink(hub)))
    }

    fn acc(&self) -> std::sync::MutexGuard<'_, Accumulated> {
        self.acc.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What was accumulated so far.
    pub fn snapshot(&self) -> Accumulated {
        self.acc().clone()
    }

    pub fn turn_id(&self) -> &TurnId {
        &self.turn_id
    }

    /// A piece of the reply.
    pub fn chunk(&self, text: String) {
        if text.is_empty() {
            return;
        }
        self.acc().content.push_str(&text);
        self.sink.publish(Event::AgentMessageChunk {
            turn_id: self.turn_id.clone(),
            text,
        });
    }

    /// A piece of the agent's reasoning (not part of the reply).
    pub fn thought(&self, text: String) {
        self.sink.publish(Event::AgentThoughtChunk {
            turn_id: self.turn_id.clone(),
            text,
        });
    }

    pub fn tool_call(&self, tool_call_id: String, name: String, input: serde_json::Value) {
        self.sink.publish(Event::ToolCall {
            turn_id: self.turn_id.clone(),
            tool_call_id,
            name,
            input,
        });
    }

    pub fn tool_result(&self, tool_call_id: String, output: serde_json::Value, is_error: bool) {
        let text = match &output {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        self.acc().tool_messages.push(text);
        self.sink.publish(Event::ToolResult {
            turn_id: self.turn_id.clone(),
            tool_call_id,
            output,
            is_error,
        });
    }

    /// The agent's plan for the turn (the whole list each time).
    pub fn plan(&self, entries: serde_json::Value) {
        self.sink.publish(Event::Plan {
            turn_id: self.turn_id.clone(),
            entries,
        });
    }

    /// Something the agent reported that has no event of its own.
    pub fn agent_update(&self, kind: String, data: serde_json::Value) {
        self.sink.publish(Event::AgentUpdate {
            turn_id: self.turn_id.clone(),
            kind,
            data,
        });
    }

    /// Records how the turn ended when the agent ends it normally with a reason
    /// other than `end_turn`.
    pub fn stop_reason(&self, reason: sessiond_protocol::StopReason) {
        self.acc().stop_reason = Some(reason);
    }

    /// Why the turn was cancelled, once its token has fired (`None` before, or for an
    /// emitter outside a store).
    pub fn cancel_cause(&self) -> Option<sessiond_protocol::CancelCause> {
        self.sink.cancel_cause()
    }

    /// Adds token counts.
    pub fn usage(&self, u: Usage) {
        self.acc().usage.add(u);
    }

    /// Asks the client a question; the answer arrives on the turn's response channel.
    /// The sink makes it pending and publishes it in one step, so a subscriber that
    /// comes back sees it exactly while it is pending.
    pub fn request(
        &self,
        request_id: RequestId,
        kind: RequestKind,
        prompt: String,
        options: serde_json::Value,
    ) {
        self.sink.request(PendingRequest {
            turn_id: self.turn_id.clone(),
            request_id,
            kind,
            prompt,
            options,
        });
    }
}
