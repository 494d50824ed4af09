//! Request parameters and results of every method, as named in PROTOCOL.md.
//!
//! The `#[rpc]` traits in [`crate::api`] take these fields as named arguments
//! (`params` is always a JSON object); the structs here describe the same objects
//! for clients that build requests by hand, and for documentation and tests.

use crate::ids::{RequestId, SessionId, TuiId, TurnId};
use crate::patch::Patch;
use crate::types::{
    CancelCause, Evicted, Message, Mode, Overrides, SessionInfo, SessionStatus, TurnVerdict,
    UploadEntry,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `client` in `initialize`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClientInfo {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InitializeParams {
    pub protocol_version: u32,
    #[serde(default)]
    pub client: Option<ClientInfo>,
    #[serde(default)]
    pub tui_id: Option<TuiId>,
    #[serde(default)]
    pub tui_sig: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InitializeResult {
    pub protocol_version: u32,
    pub server_version: String,
    pub server_pid: u32,
    pub daemon_id: String,
    pub tui_id: TuiId,
    pub tui_sig: String,
    pub capabilities: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DaemonStatus {
    pub server_version: String,
    pub protocol_version: u32,
    pub pid: u32,
    pub uptime_secs: u64,
    pub socket: String,
    pub ws_listen: Option<String>,
    pub data_dir: String,
    pub sessions_live: u64,
    pub sessions_total: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NewSessionParams {
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub mode: Option<Mode>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub overrides: Option<Overrides>,
    #[serde(default)]
    pub ttl_secs: Option<u64>,
    #[serde(default)]
    pub keep_siblings: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoadSessionParams {
    pub session_id: SessionId,
    #[serde(default)]
    pub take_over: Option<bool>,
    #[serde(default)]
    pub keep_siblings: Option<bool>,
}

/// Result of `session/new` and `session/load`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SessionResult {
    pub session: SessionInfo,
    pub evicted: Vec<Evicted>,
}

/// Filters of `session/list` and `admin/sessions`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ListParams {
    /// `"me"`, `"any"`, `"none"` or a TUI id.
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub mode: Option<Mode>,
    #[serde(default)]
    pub live: Option<bool>,
    #[serde(default)]
    pub status: Option<SessionStatus>,
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub cursor: Option<String>,
    /// Addition (11.3): sessions whose `cwd` is exactly this.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Addition (11.3): sessions whose title contains this, ignoring case.
    #[serde(default)]
    pub title_contains: Option<String>,
}

// Serialised in one buffer first (`crate::buffered`): a page holds up to 1,000
// sessions. (A plain comment: a doc comment would enter the JSON schema.)
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
pub struct ListResult {
    pub sessions: Vec<SessionInfo>,
    pub next_cursor: Option<String>,
}

impl Serialize for ListResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        /// The fields as the derive would write them.
        #[derive(Serialize)]
        struct Fields<'a> {
            sessions: &'a [SessionInfo],
            next_cursor: &'a Option<String>,
        }
        let ListResult {
            sessions,
            next_cursor,
        } = self;
        crate::buffered::serialize_buffered(
            &Fields {
                sessions,
                next_cursor,
            },
            s,
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SessionIdParams {
    pub session_id: SessionId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MessagesParams {
    pub session_id: SessionId,
    #[serde(default)]
    pub from: Option<u64>,
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MessagesResult {
    pub messages: Vec<Message>,
    pub total: u64,
    /// Addition (11.1): every event up to this seq is reflected in `messages`;
    /// subscribe with `since_seq: seq` to continue with no gap and no duplicate.
    #[serde(default)]
    pub seq: u64,
}

/// `overrides` of `session/configure`: absent leaves a field, `null` clears it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OverridesPatch {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub model: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub model_provider: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub temperature: Patch<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConfigureParams {
    pub session_id: SessionId,
    pub overrides: OverridesPatch,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConfigureResult {
    pub overrides: Overrides,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CloseResult {
    pub closed: bool,
    pub cancelled_turn: Option<TurnId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeleteResult {
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PromptParams {
    pub session_id: SessionId,
    pub text: String,
    #[serde(default)]
    pub attachments: Option<Vec<String>>,
    #[serde(default)]
    pub interrupt: Option<bool>,
    #[serde(default)]
    pub wait: Option<bool>,
}

/// `session/prompt` without `wait`: the turn was accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PromptAccepted {
    pub turn_id: TurnId,
    /// How many turns run or wait before this one (0: it starts now).
    pub queued_behind: u32,
}

/// The result of `session/prompt`: accepted, or with `wait: true` the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum PromptResult {
    Finished(TurnVerdict),
    Accepted(PromptAccepted),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CancelResult {
    pub cancelled: bool,
    pub turn_id: Option<TurnId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RespondParams {
    pub session_id: SessionId,
    #[serde(default)]
    pub request_id: Option<RequestId>,
    pub response: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RespondResult {
    pub remaining: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UploadParams {
    pub session_id: SessionId,
    pub name: String,
    #[serde(default)]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub data_b64: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UploadsResult {
    pub uploads: Vec<UploadEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SubscribeParams {
    pub session_id: SessionId,
    #[serde(default)]
    pub since_seq: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KillResult {
    pub killed: bool,
    pub cancelled_turn: Option<TurnId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StatsResult {
    pub connections: u64,
    pub tuis: u64,
    pub sessions_live: u64,
    pub sessions_total: u64,
    pub by_agent: BTreeMap<String, u64>,
    pub turns_running: u64,
    pub turns_queued: u64,
    pub cancels_by_cause: BTreeMap<CancelCause, u64>,
    pub rss_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TuiInfo {
    pub tui_id: TuiId,
    pub connected_at: String,
    /// `"unix"` or `"ws"`.
    pub transport: String,
    /// `uid:<n> pid:<n>` for the Unix socket, `ip:port` for TCP.
    pub peer: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TuisResult {
    pub tuis: Vec<TuiInfo>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ShutdownParams {
    #[serde(default)]
    pub grace_secs: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OkResult {
    pub ok: bool,
}

/// `session/rename` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameParams {
    pub session_id: SessionId,
    pub title: String,
}

/// One configured agent, as `daemon/agents` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgentInfo {
    pub alias: String,
    /// The provider kind: `echo`, `command`, `openai`, ...
    pub kind: String,
    /// The model the agent uses by default, when its kind has one.
    pub model: Option<String>,
    /// Whether this is the daemon's `default_agent`.
    pub default: bool,
}

/// `daemon/agents` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgentsResult {
    pub agents: Vec<AgentInfo>,
}

/// Result of `admin/reload`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReloadResult {
    /// True when the new configuration was taken.
    pub reloaded: bool,
    /// Keys whose new value is in force (`agents`, the limits, `log`).
    pub changed: Vec<String>,
    /// Keys that changed in the file but take effect at the next start.
    pub restart_needed: Vec<String>,
    /// Why the file was refused: every problem, each naming its key.
    pub problems: Vec<String>,
}
