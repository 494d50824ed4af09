//! Session events, delivered as `session/update` notifications with a per-session `seq`.

use crate::ids::{RequestId, TuiId, TurnId};
use crate::types::{CloseReason, Overrides, RequestKind, TurnVerdict, UploadEntry};
use crate::SessionId;
use serde::{Deserialize, Serialize};

/// One event of a session, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    UserMessage {
        turn_id: TurnId,
        text: String,
        attachments: Vec<String>,
    },
    TurnStarted {
        turn_id: TurnId,
        generation: u64,
    },
    AgentMessageChunk {
        turn_id: TurnId,
        text: String,
    },
    AgentThoughtChunk {
        turn_id: TurnId,
        text: String,
    },
    ToolCall {
        turn_id: TurnId,
        tool_call_id: String,
        name: String,
        input: serde_json::Value,
    },
    ToolResult {
        turn_id: TurnId,
        tool_call_id: String,
        output: serde_json::Value,
        is_error: bool,
    },
    Request {
        turn_id: TurnId,
        request_id: RequestId,
        kind: RequestKind,
        prompt: String,
        options: serde_json::Value,
    },
    RequestResolved {
        request_id: RequestId,
        response: serde_json::Value,
        by_tui_id: Option<TuiId>,
    },
    TurnComplete {
        verdict: TurnVerdict,
    },
    OverridesChanged {
        overrides: Overrides,
    },
    OwnerChanged {
        owner_tui_id: Option<TuiId>,
        previous_owner_tui_id: Option<TuiId>,
    },
    UploadAdded {
        entry: UploadEntry,
    },
    SessionClosed {
        reason: CloseReason,
    },
    Resync {
        from_seq: u64,
    },
    /// Addition (11.1): the replay part of a subscription is over; what follows is
    /// live. Not stored; its envelope's `seq` is `head_seq`.
    ReplayComplete {
        head_seq: u64,
    },
    /// The session was renamed (`session/rename`).
    TitleChanged {
        title: String,
    },
    /// The agent's plan for the turn (an ACP `plan` update): the whole list each time.
    Plan {
        turn_id: TurnId,
        entries: serde_json::Value,
    },
    /// Something the agent reported that has no event of its own (an ACP update kind).
    AgentUpdate {
        turn_id: TurnId,
        kind: String,
        data: serde_json::Value,
    },
}

impl Event {
    /// The `type` tag of this event.
    pub fn type_name(&self) -> &'static str {
        use crate::methods::event as e;
        match self {
            Event::UserMessage { .. } => e::USER_MESSAGE,
            Event::TurnStarted { .. } => e::TURN_STARTED,
            Event::AgentMessageChunk { .. } => e::AGENT_MESSAGE_CHUNK,
            Event::AgentThoughtChunk { .. } => e::AGENT_THOUGHT_CHUNK,
            Event::ToolCall { .. } => e::TOOL_CALL,
            Event::ToolResult { .. } => e::TOOL_RESULT,
            Event::Request { .. } => e::REQUEST,
            Event::RequestResolved { .. } => e::REQUEST_RESOLVED,
            Event::TurnComplete { .. } => e::TURN_COMPLETE,
            Event::OverridesChanged { .. } => e::OVERRIDES_CHANGED,
            Event::OwnerChanged { .. } => e::OWNER_CHANGED,
            Event::UploadAdded { .. } => e::UPLOAD_ADDED,
            Event::SessionClosed { .. } => e::SESSION_CLOSED,
            Event::Resync { .. } => e::RESYNC,
            Event::ReplayComplete { .. } => e::REPLAY_COMPLETE,
            Event::TitleChanged { .. } => e::TITLE_CHANGED,
            Event::Plan { .. } => e::PLAN,
            Event::AgentUpdate { .. } => e::AGENT_UPDATE,
        }
    }
}

/// The `result` of a `session/update` notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EventEnvelope {
    pub session_id: SessionId,
    /// Increases by one per event within a session, across daemon restarts too.
    pub seq: u64,
    pub at: String,
    pub event: Event,
}
