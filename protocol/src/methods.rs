//! Method, notification and event names, as they appear on the wire.

pub const INITIALIZE: &str = "initialize";
pub const DAEMON_STATUS: &str = "daemon/status";
pub const SESSION_NEW: &str = "session/new";
pub const SESSION_LOAD: &str = "session/load";
pub const SESSION_LIST: &str = "session/list";
pub const SESSION_GET: &str = "session/get";
pub const SESSION_MESSAGES: &str = "session/messages";
pub const SESSION_CONFIGURE: &str = "session/configure";
pub const SESSION_CLOSE: &str = "session/close";
pub const SESSION_DELETE: &str = "session/delete";
pub const SESSION_PROMPT: &str = "session/prompt";
pub const SESSION_CANCEL: &str = "session/cancel";
pub const SESSION_RESPOND: &str = "session/respond";
pub const SESSION_UPLOAD: &str = "session/upload";
pub const SESSION_UPLOADS: &str = "session/uploads";
pub const SESSION_SUBSCRIBE: &str = "session/subscribe";
pub const SESSION_UNSUBSCRIBE: &str = "session/unsubscribe";
/// The notification method of subscription events.
pub const SESSION_UPDATE: &str = "session/update";
pub const SESSION_RENAME: &str = "session/rename";
pub const DAEMON_AGENTS: &str = "daemon/agents";
pub const ADMIN_KILL: &str = "admin/kill";
pub const ADMIN_SESSIONS: &str = "admin/sessions";
pub const ADMIN_STATS: &str = "admin/stats";
pub const ADMIN_TUIS: &str = "admin/tuis";
pub const ADMIN_SHUTDOWN: &str = "admin/shutdown";
pub const DAEMON_SUBSCRIBE: &str = "daemon/subscribe";
pub const DAEMON_UNSUBSCRIBE: &str = "daemon/unsubscribe";
/// The notification method of the daemon-wide session feed.
pub const DAEMON_UPDATE: &str = "daemon/update";
pub const ADMIN_RELOAD: &str = "admin/reload";
/// The OpenRPC service discovery method.
pub const RPC_DISCOVER: &str = "rpc.discover";

/// Every callable method (what `initialize` reports as capabilities).
pub const ALL: &[&str] = &[
    INITIALIZE,
    DAEMON_STATUS,
    SESSION_NEW,
    SESSION_LOAD,
    SESSION_LIST,
    SESSION_GET,
    SESSION_MESSAGES,
    SESSION_CONFIGURE,
    SESSION_CLOSE,
    SESSION_DELETE,
    SESSION_PROMPT,
    SESSION_CANCEL,
    SESSION_RESPOND,
    SESSION_UPLOAD,
    SESSION_UPLOADS,
    SESSION_SUBSCRIBE,
    SESSION_UNSUBSCRIBE,
    SESSION_RENAME,
    DAEMON_AGENTS,
    ADMIN_KILL,
    ADMIN_SESSIONS,
    ADMIN_STATS,
    ADMIN_TUIS,
    ADMIN_SHUTDOWN,
    DAEMON_SUBSCRIBE,
    DAEMON_UNSUBSCRIBE,
    ADMIN_RELOAD,
    RPC_DISCOVER,
];

/// Event `type` tags.
pub mod event {
    pub const USER_MESSAGE: &str = "user_message";
    pub const TURN_STARTED: &str = "turn_started";
    pub const AGENT_MESSAGE_CHUNK: &str = "agent_message_chunk";
    pub const AGENT_THOUGHT_CHUNK: &str = "agent_thought_chunk";
    pub const TOOL_CALL: &str = "tool_call";
    pub const TOOL_RESULT: &str = "tool_result";
    pub const REQUEST: &str = "request";
    pub const REQUEST_RESOLVED: &str = "request_resolved";
    pub const TURN_COMPLETE: &str = "turn_complete";
    pub const OVERRIDES_CHANGED: &str = "overrides_changed";
    pub const OWNER_CHANGED: &str = "owner_changed";
    pub const UPLOAD_ADDED: &str = "upload_added";
    pub const SESSION_CLOSED: &str = "session_closed";
    pub const RESYNC: &str = "resync";
    pub const REPLAY_COMPLETE: &str = "replay_complete";
    pub const TITLE_CHANGED: &str = "title_changed";
    pub const PLAN: &str = "plan";
    pub const AGENT_UPDATE: &str = "agent_update";
}
