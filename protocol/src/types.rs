//! Records that appear in results and events: sessions, turns, verdicts, messages, uploads.

use crate::ids::{RequestId, SessionId, TuiId, TurnId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a session is for. Eviction only ever touches siblings of the same mode.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Chat,
    Code,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Chat => "chat",
            Mode::Code => "code",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "chat" => Some(Mode::Chat),
            "code" => Some(Mode::Code),
            _ => None,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lifecycle of a session (persisted). `expired` and `killed` are terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Created,
    Active,
    Expired,
    Killed,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Created => "created",
            SessionStatus::Active => "active",
            SessionStatus::Expired => "expired",
            SessionStatus::Killed => "killed",
        }
    }

    pub fn parse(s: &str) -> Option<SessionStatus> {
        match s {
            "created" => Some(SessionStatus::Created),
            "active" => Some(SessionStatus::Active),
            "expired" => Some(SessionStatus::Expired),
            "killed" => Some(SessionStatus::Killed),
            _ => None,
        }
    }

    /// Nothing can be prompted, loaded or configured any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, SessionStatus::Expired | SessionStatus::Killed)
    }
}

/// State of the running turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TurnState {
    Running,
    AwaitingResponse,
}

/// The running turn of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TurnInfo {
    pub turn_id: TurnId,
    pub generation: u64,
    pub started_at: String,
    pub state: TurnState,
}

/// Token counts.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Usage {
    pub fn add(&mut self, other: Usage) {
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
    }
}

/// Per-session settings that take precedence over the agent's configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    #[serde(default)]
    pub model: Option<String>,
    /// An agent alias from the daemon's configuration.
    #[serde(default)]
    pub model_provider: Option<String>,
    #[serde(default)]
    pub temperature: Option<f64>,
}

/// The record of a session as clients see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SessionInfo {
    pub session_id: SessionId,
    pub agent: String,
    pub mode: Mode,
    pub title: Option<String>,
    pub cwd: Option<String>,
    pub owner_tui_id: Option<TuiId>,
    pub status: SessionStatus,
    pub live: bool,
    pub turn: Option<TurnInfo>,
    pub queued_turns: u32,
    pub pending_requests: u32,
    pub overrides: Overrides,
    pub created_at: String,
    pub updated_at: String,
    pub last_active_at: String,
    pub message_count: u64,
    pub round_count: u64,
    pub usage: Usage,
    /// Addition: the session's own inactivity TTL, when it has one.
    #[serde(default)]
    pub ttl_secs: Option<u64>,
    /// Addition (11.2): the number of open subscriptions on the session.
    #[serde(default)]
    pub watchers: u32,
}

/// How a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    Cancelled,
    Failed,
    /// The agent reached its token limit.
    MaxTokens,
    /// The agent reached its limit of model requests for one turn.
    MaxTurnRequests,
    /// The agent refused to continue.
    Refusal,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::Cancelled => "cancelled",
            StopReason::Failed => "failed",
            StopReason::MaxTokens => "max_tokens",
            StopReason::MaxTurnRequests => "max_turn_requests",
            StopReason::Refusal => "refusal",
        }
    }

    pub fn parse(s: &str) -> Option<StopReason> {
        match s {
            "end_turn" => Some(StopReason::EndTurn),
            "cancelled" => Some(StopReason::Cancelled),
            "failed" => Some(StopReason::Failed),
            "max_tokens" => Some(StopReason::MaxTokens),
            "max_turn_requests" => Some(StopReason::MaxTurnRequests),
            "refusal" => Some(StopReason::Refusal),
            _ => None,
        }
    }
}

/// Why a turn's cancel token fired. Exactly one per cancelled turn.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CancelCause {
    ClientRpc,
    AdminKill,
    SessionRemoved,
    Superseded,
    Shutdown,
    Timeout,
}

impl CancelCause {
    pub const ALL: [CancelCause; 6] = [
        CancelCause::ClientRpc,
        CancelCause::AdminKill,
        CancelCause::SessionRemoved,
        CancelCause::Superseded,
        CancelCause::Shutdown,
        CancelCause::Timeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CancelCause::ClientRpc => "client_rpc",
            CancelCause::AdminKill => "admin_kill",
            CancelCause::SessionRemoved => "session_removed",
            CancelCause::Superseded => "superseded",
            CancelCause::Shutdown => "shutdown",
            CancelCause::Timeout => "timeout",
        }
    }

    pub fn parse(s: &str) -> Option<CancelCause> {
        CancelCause::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for CancelCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one turn, carried by `turn_complete` and persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TurnVerdict {
    pub turn_id: TurnId,
    pub stop_reason: StopReason,
    pub cancel_cause: Option<CancelCause>,
    pub error: Option<String>,
    pub usage: Usage,
    /// The assistant text of the turn (what was streamed, also when cancelled midway).
    pub content: String,
}

/// Who wrote a transcript message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
    Tool,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            "tool" => Some(Role::Tool),
            _ => None,
        }
    }
}

/// One transcript message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Message {
    pub index: u64,
    pub role: Role,
    pub content: String,
    pub turn_id: Option<TurnId>,
    pub created_at: String,
    /// Addition (11.1): the running turn's content so far (last message only, never stored).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

/// An entry of a session's upload index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UploadEntry {
    /// `"sha256:" + 64 lowercase hex` of the bytes.
    pub ref_id: String,
    /// The text that stands for the file in a prompt.
    pub marker: String,
    /// Where the bytes are stored on the daemon's machine.
    pub workspace_path: String,
    pub size_bytes: u64,
    pub deduplicated: bool,
    /// Addition: the file name given at upload.
    #[serde(default)]
    pub name: String,
    /// Addition: the MIME type given at upload, if any.
    #[serde(default)]
    pub mime_type: Option<String>,
}

/// A session unloaded by same-mode sibling eviction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Evicted {
    pub session_id: SessionId,
    pub agent: String,
}

/// Why a subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    Closed,
    Evicted,
    Killed,
    Expired,
    Deleted,
}

/// What a question to the client is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    Permission,
    Question,
}

/// A pending question of a turn (as replayed to subscribers and listed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PendingRequest {
    pub turn_id: TurnId,
    pub request_id: RequestId,
    pub kind: RequestKind,
    pub prompt: String,
    pub options: serde_json::Value,
}
