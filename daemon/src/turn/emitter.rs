//! What an agent publishes through: chunks, thoughts, tool calls, requests, usage.
//! Publishing is synchronous and never waits on a subscriber.

use crate::events::EventHub;
use crate::store::entry::Pending;
use crate::store::Store;
use sessiond_protocol::{Event, PendingRequest, RequestId, RequestKind, SessionId, TurnId, Usage};
use std::sync::{Arc, Mutex};

/// Publishes one turn's events and accumulates its reply and usage.
#[derive(Clone)]
pub struct Emitter {
    /// `None` for an emitter outside a store (provider tests): requests are only published.
    store: Option<Arc<Store>>,
    session_id: SessionId,
    incarnation: u64,
    turn_id: TurnId,
    hub: Arc<EventHub>,
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
    pub(crate) fn new(
        store: Arc<Store>,
        session_id: SessionId,
        incarnation: u64,
        turn_id: TurnId,
        hub: Arc<EventHub>,
    ) -> Emitter {
        Emitter {
            store: Some(store),
            session_id,
            incarnation,
            turn_id,
            hub,
            acc: Arc::new(Mutex::new(Accumulated::default())),
        }
    }

    /// An emitter that publishes to `hub` without a store (for testing providers).
    pub fn detached(turn_id: TurnId, hub: Arc<EventHub>) -> Emitter {
        Emitter {
            store: None,
            session_id: hub.session_id().clone(),
            incarnation: 0,
            turn_id,
            hub,
            acc: Arc::new(Mutex::new(Accumulated::default())),
        }
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
        self.hub.publish(Event::AgentMessageChunk {
            turn_id: self.turn_id.clone(),
            text,
        });
    }

    /// A piece of the agent's reasoning (not part of the reply).
    pub fn thought(&self, text: String) {
        self.hub.publish(Event::AgentThoughtChunk {
            turn_id: self.turn_id.clone(),
            text,
        });
    }

    pub fn tool_call(&self, tool_call_id: String, name: String, input: serde_json::Value) {
        self.hub.publish(Event::ToolCall {
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
        self.hub.publish(Event::ToolResult {
            turn_id: self.turn_id.clone(),
            tool_call_id,
            output,
            is_error,
        });
    }

    /// The agent's plan for the turn (the whole list each time).
    pub fn plan(&self, entries: serde_json::Value) {
        self.hub.publish(Event::Plan {
            turn_id: self.turn_id.clone(),
            entries,
        });
    }

    /// Something the agent reported that has no event of its own.
    pub fn agent_update(&self, kind: String, data: serde_json::Value) {
        self.hub.publish(Event::AgentUpdate {
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
        let store = self.store.as_ref()?;
        let e = store.sessions.get(&self.session_id)?;
        if e.incarnation != self.incarnation {
            return None;
        }
        let generation = e
            .turn
            .as_ref()
            .filter(|t| t.turn_id == self.turn_id)?
            .generation;
        e.tokens
            .current()
            .filter(|slot| slot.generation == generation)?
            .cause()
    }

    /// Adds token counts.
    pub fn usage(&self, u: Usage) {
        self.acc().usage.add(u);
    }

    /// Asks the client a question; the answer arrives on the turn's response channel.
    /// The `request` event is published under the session's entry lock, so a
    /// subscriber that comes back sees it exactly while it is pending.
    pub fn request(
        &self,
        request_id: RequestId,
        kind: RequestKind,
        prompt: String,
        options: serde_json::Value,
    ) {
        let Some(store) = &self.store else {
            self.hub.publish(Event::Request {
                turn_id: self.turn_id.clone(),
                request_id,
                kind,
                prompt,
                options,
            });
            return;
        };
        let Some(mut e) = store.sessions.get_mut(&self.session_id) else {
            return;
        };
        if e.incarnation != self.incarnation {
            return;
        }
        let hub = e.hub.clone();
        let Some(turn) = e.turn.as_mut() else {
            return;
        };
        if turn.turn_id != self.turn_id {
            return;
        }
        let request = PendingRequest {
            turn_id: self.turn_id.clone(),
            request_id: request_id.clone(),
            kind,
            prompt: prompt.clone(),
            options: options.clone(),
        };
        if let Some(envelope) = hub.publish(Event::Request {
            turn_id: self.turn_id.clone(),
            request_id,
            kind,
            prompt,
            options,
        }) {
            turn.pending.push(Pending { request, envelope });
        }
    }
}
