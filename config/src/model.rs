//! The configuration structs, their defaults (PROTOCOL.md section 10) and the alias lookups.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The alias of the built-in echo agent, which exists even when not configured.
pub const BUILTIN_ECHO: &str = "echo";

/// The whole daemon configuration: every key optional, unknown keys rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The Unix socket to listen on; `None` resolves through [`Config::socket_path`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    /// Where sessions, uploads and the ws token live; `None` resolves through
    /// [`Config::data_dir_path`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// The agent alias used by sessions that do not name one.
    pub default_agent: String,
    /// Sessions kept in memory at once; creating more fails.
    pub max_live_sessions: usize,
    /// Turns that may wait behind the running one in a session; 0 means no queue.
    pub max_queued_turns: usize,
    /// Largest accepted upload, in bytes.
    pub max_upload_bytes: u64,
    /// A turn running longer than this is cancelled; 0 means no limit.
    pub max_turn_secs: u64,
    /// Idle sessions are closed after this long; 0 means never.
    pub session_ttl_secs: u64,
    /// Events kept per session for replay to late subscribers.
    pub event_window: usize,
    /// Bounded queue per subscriber; a subscriber that falls this far behind is dropped.
    pub subscriber_buffer: usize,
    /// A tracing `EnvFilter` directive.
    pub log: String,
    /// How log lines are written: `"text"` (default) or `"json"` (one object a line).
    pub log_format: String,
    /// The optional WebSocket transport.
    pub ws: WsConfig,
    /// Pruning of stored sessions.
    pub retention: RetentionConfig,
    /// Agent aliases, `[agents.NAME]` tables.
    pub agents: BTreeMap<String, AgentConfig>,
    /// What an acknowledged write survives: `"crash"` (kill -9 of the daemon) or
    /// `"power"` (also power loss and kernel crashes).
    pub durability: Durability,
}

/// The `durability` key: how far a commit is flushed before its reply (see
/// docs/persistence.md). Both survive `kill -9` of the daemon.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// SQLite WAL with `synchronous = NORMAL`: a commit is in the OS before the reply;
    /// the log is fsynced at checkpoints. Survives a daemon crash, not a power loss.
    Crash,
    /// SQLite WAL with `synchronous = FULL`: every commit is fsynced before the reply.
    #[default]
    Power,
}

/// Default for [`Config::default_agent`].
pub fn default_agent() -> String {
    BUILTIN_ECHO.to_owned()
}
/// Default for [`Config::max_live_sessions`].
pub fn default_max_live_sessions() -> usize {
    256
}
/// Default for [`Config::max_queued_turns`].
pub fn default_max_queued_turns() -> usize {
    32
}
/// Default for [`Config::max_upload_bytes`] (10 MiB).
pub fn default_max_upload_bytes() -> u64 {
    10 * 1024 * 1024
}
/// Default for [`Config::event_window`].
pub fn default_event_window() -> usize {
    4096
}
/// Default for [`Config::subscriber_buffer`].
pub fn default_subscriber_buffer() -> usize {
    1024
}
/// Default for [`Config::log`].
pub fn default_log() -> String {
    "info".to_owned()
}

/// Default for [`Config::log_format`].
pub fn default_log_format() -> String {
    "text".to_owned()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            socket: None,
            data_dir: None,
            default_agent: default_agent(),
            max_live_sessions: default_max_live_sessions(),
            max_queued_turns: default_max_queued_turns(),
            max_upload_bytes: default_max_upload_bytes(),
            max_turn_secs: 0,
            session_ttl_secs: 0,
            event_window: default_event_window(),
            subscriber_buffer: default_subscriber_buffer(),
            log: default_log(),
            log_format: default_log_format(),
            ws: WsConfig::default(),
            retention: RetentionConfig::default(),
            agents: BTreeMap::new(),
            durability: Durability::default(),
        }
    }
}

/// The `[ws]` table: the WebSocket transport, off unless `listen` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WsConfig {
    /// Address to listen on, e.g. `127.0.0.1:7777`; `None` turns the transport off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// The bearer token file; `None` means `<data_dir>/ws.token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// `Origin` header values accepted besides none at all.
    pub allowed_origins: Vec<String>,
    /// `Host` header values accepted besides the loopback ones.
    pub allowed_hosts: Vec<String>,
    /// Must be true to bind a non-loopback address.
    pub allow_remote: bool,
    /// Seconds a TCP peer has to present its token and upgrade before the daemon
    /// closes the connection (at most [`MAX_UPGRADE_TIMEOUT_SECS`]).
    pub upgrade_timeout_secs: u64,
}

/// Default for [`WsConfig::upgrade_timeout_secs`].
pub const DEFAULT_UPGRADE_TIMEOUT_SECS: u64 = 10;
/// Largest accepted [`WsConfig::upgrade_timeout_secs`].
pub const MAX_UPGRADE_TIMEOUT_SECS: u64 = 3600;

impl Default for WsConfig {
    fn default() -> WsConfig {
        WsConfig {
            listen: None,
            token_file: None,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            allow_remote: false,
            upgrade_timeout_secs: DEFAULT_UPGRADE_TIMEOUT_SECS,
        }
    }
}

/// The `[retention]` table: pruning of stored sessions; 0 turns a limit off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Keep at most this many stored sessions; 0 = no limit.
    pub max_sessions: u64,
    /// Remove stored sessions older than this; 0 = no limit.
    pub max_age_days: u64,
}

/// One `[agents.NAME]` table; `kind` selects the variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum AgentConfig {
    /// `kind = "echo"`: replies with what it was sent.
    #[serde(rename = "echo")]
    Echo(EchoAgent),
    /// `kind = "command"`: runs a program speaking the JSON line protocol.
    #[serde(rename = "command")]
    Command(CommandAgent),
    /// `kind = "openai"`: an OpenAI-compatible chat completions endpoint.
    #[serde(rename = "openai")]
    OpenAi(OpenAiAgent),
    /// `kind = "acp"`: a program speaking the Agent Client Protocol, one process per
    /// live session.
    #[serde(rename = "acp")]
    Acp(AcpAgent),
}

impl AgentConfig {
    /// The model this agent uses unless a session overrides it, for kinds that have one.
    pub fn default_model(&self) -> Option<&str> {
        match self {
            AgentConfig::OpenAi(o) => o.model.as_deref(),
            _ => None,
        }
    }

    /// The `kind` string of this agent, as written in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            AgentConfig::Echo(_) => "echo",
            AgentConfig::Command(_) => "command",
            AgentConfig::OpenAi(_) => "openai",
            AgentConfig::Acp(_) => "acp",
        }
    }
}

/// Settings of an echo agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EchoAgent {
    /// Characters per `agent_message_chunk`.
    pub chunk_chars: usize,
    /// Delay between chunks, in milliseconds.
    pub chunk_delay_ms: u64,
}

/// Default for [`EchoAgent::chunk_chars`].
pub fn default_chunk_chars() -> usize {
    64
}

impl Default for EchoAgent {
    fn default() -> Self {
        EchoAgent {
            chunk_chars: default_chunk_chars(),
            chunk_delay_ms: 0,
        }
    }
}

/// Settings of a command agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandAgent {
    /// `[program, args...]`, run once per turn.
    pub command: Vec<String>,
    /// Time between SIGTERM and SIGKILL when a turn is cancelled, in milliseconds.
    #[serde(default = "default_cancel_grace_ms")]
    pub cancel_grace_ms: u64,
    /// Extra environment for the program.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// Default for [`CommandAgent::cancel_grace_ms`].
pub fn default_cancel_grace_ms() -> u64 {
    2000
}

/// Settings of an ACP agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcpAgent {
    /// `[program, args...]`, started once per live session in the session's `cwd`.
    pub command: Vec<String>,
    /// Extra environment for the program.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// After `session/cancel`, how long the agent has to end the prompt before its
    /// process group is ended, in milliseconds.
    #[serde(default = "default_cancel_grace_ms")]
    pub cancel_grace_ms: u64,
    /// How long `initialize` and `session/new` (or `session/load`) may take, in
    /// milliseconds.
    #[serde(default = "default_startup_timeout_ms")]
    pub startup_timeout_ms: u64,
}

/// Default for [`AcpAgent::startup_timeout_ms`].
pub fn default_startup_timeout_ms() -> u64 {
    30_000
}

/// Settings of an OpenAI-compatible agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiAgent {
    /// Base URL of the API, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Model name sent with each request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Environment variable holding the API key; no key is sent when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Sampling temperature, 0 to 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Connection timeout, in milliseconds.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// A stream silent for this long fails the turn, in milliseconds.
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
}

/// Default for [`OpenAiAgent::connect_timeout_ms`].
pub fn default_connect_timeout_ms() -> u64 {
    10_000
}
/// Default for [`OpenAiAgent::idle_timeout_ms`].
pub fn default_idle_timeout_ms() -> u64 {
    120_000
}

impl Config {
    /// The agent for an alias: a configured one, else the built-in `echo` with
    /// [`EchoAgent`] defaults when `alias` is `echo`.
    pub fn agent(&self, alias: &str) -> Option<AgentConfig> {
        match self.agents.get(alias) {
            Some(agent) => Some(agent.clone()),
            None if alias == BUILTIN_ECHO => Some(AgentConfig::Echo(EchoAgent::default())),
            None => None,
        }
    }

    /// Every alias [`Config::agent`] answers for, sorted, including the built-in `echo`.
    pub fn agent_aliases(&self) -> Vec<String> {
        let mut aliases: Vec<String> = self.agents.keys().cloned().collect();
        if !self.agents.contains_key(BUILTIN_ECHO) {
            aliases.push(BUILTIN_ECHO.to_owned());
            aliases.sort();
        }
        aliases
    }

    /// The configuration as TOML, for `sessiond config show`; parses back to an equal
    /// `Config`.
    pub fn to_toml_string(&self) -> String {
        match toml::to_string(self) {
            Ok(text) => text,
            // Only values TOML cannot hold (integers above i64::MAX) get here.
            Err(e) => format!("# cannot render configuration as toml: {e}\n"),
        }
    }
}
