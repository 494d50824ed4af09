//! Validation of a parsed `Config`: every problem is collected, each naming its dotted key.

use std::net::SocketAddr;
use std::path::Path;

use crate::model::{AcpAgent, AgentConfig, CommandAgent, EchoAgent, OpenAiAgent, BUILTIN_ECHO};
use crate::{Config, ConfigError, Problem};

/// Largest accepted `max_upload_bytes` (1 GiB).
pub const MAX_UPLOAD_BYTES_LIMIT: u64 = 1024 * 1024 * 1024;
/// Largest accepted `max_queued_turns`.
pub const MAX_QUEUED_TURNS_LIMIT: usize = 10_000;
/// Smallest accepted `event_window` and `subscriber_buffer`.
pub const MIN_BUFFER: usize = 16;
/// Largest integer TOML can hold; bigger values could not be shown by `config show`.
const TOML_INT_MAX: u64 = i64::MAX as u64;

/// Collects problems in the order they are found.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }

    fn at_most_toml_int(&mut self, key: &str, value: u64) {
        if value > TOML_INT_MAX {
            self.add(key, format!("must be at most {TOML_INT_MAX}"));
        }
    }
}

impl Config {
    /// Checks every constraint and reports all problems at once as
    /// [`ConfigError::Invalid`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut p = Problems::default();
        self.check_top_level(&mut p);
        self.check_ws(&mut p);
        for (name, agent) in &self.agents {
            check_agent(&mut p, name, agent);
        }
        if p.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(p.0))
        }
    }

    fn check_top_level(&self, p: &mut Problems) {
        check_absolute(p, "socket", self.socket.as_deref());
        check_absolute(p, "data_dir", self.data_dir.as_deref());
        if self.max_live_sessions < 1 {
            p.add("max_live_sessions", "must be at least 1");
        }
        p.at_most_toml_int("max_live_sessions", self.max_live_sessions as u64);
        if self.max_queued_turns > MAX_QUEUED_TURNS_LIMIT {
            p.add(
                "max_queued_turns",
                format!("must be at most {MAX_QUEUED_TURNS_LIMIT}"),
            );
        }
        if !(1..=MAX_UPLOAD_BYTES_LIMIT).contains(&self.max_upload_bytes) {
            p.add(
                "max_upload_bytes",
                format!("must be between 1 and {MAX_UPLOAD_BYTES_LIMIT} (1 GiB)"),
            );
        }
        p.at_most_toml_int("max_turn_secs", self.max_turn_secs);
        p.at_most_toml_int("session_ttl_secs", self.session_ttl_secs);
        if self.event_window < MIN_BUFFER {
            p.add("event_window", format!("must be at least {MIN_BUFFER}"));
        }
        if self.subscriber_buffer < MIN_BUFFER {
            p.add(
                "subscriber_buffer",
                format!("must be at least {MIN_BUFFER}"),
            );
        }
        if self.default_agent != BUILTIN_ECHO && !self.agents.contains_key(&self.default_agent) {
            p.add(
                "default_agent",
                format!(
                    "no agent named `{}`; known agents: {}",
                    self.default_agent,
                    self.agent_aliases().join(", ")
                ),
            );
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            p.add("log_format", "must be \"text\" or \"json\"");
        }
        if self.log.trim().is_empty() {
            p.add("log", "must not be empty");
        }
    }

    fn check_ws(&self, p: &mut Problems) {
        let timeout = self.ws.upgrade_timeout_secs;
        if !(1..=crate::model::MAX_UPGRADE_TIMEOUT_SECS).contains(&timeout) {
            p.add(
                "ws.upgrade_timeout_secs",
                format!(
                    "must be 1 to {}, got {timeout}",
                    crate::model::MAX_UPGRADE_TIMEOUT_SECS
                ),
            );
        }
        let Some(listen) = &self.ws.listen else {
            return;
        };
        match listen.parse::<SocketAddr>() {
            Err(_) => p.add(
                "ws.listen",
                format!("`{listen}` is not an ip address and port, e.g. 127.0.0.1:7777"),
            ),
            Ok(addr) if !addr.ip().is_loopback() && !self.ws.allow_remote => p.add(
                "ws.listen",
                "binding a non-loopback address needs ws.allow_remote = true",
            ),
            Ok(_) => {}
        }
    }
}

fn check_absolute(p: &mut Problems, key: &str, path: Option<&Path>) {
    if let Some(path) = path {
        if !path.is_absolute() {
            p.add(
                key,
                format!("must be an absolute path, got `{}`", path.display()),
            );
        }
    }
}

/// True when `name` is a usable agent alias: non-empty, only `[A-Za-z0-9_.-]`.
pub fn is_valid_agent_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `name` as a TOML key: bare when it can be, else quoted (`agents."my.agent"`).
fn toml_key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if bare {
        name.to_owned()
    } else {
        format!("{name:?}")
    }
}

fn check_agent(p: &mut Problems, name: &str, agent: &AgentConfig) {
    let key = format!("agents.{}", toml_key(name));
    if !is_valid_agent_name(name) {
        p.add(
            key.as_str(),
            format!("agent name `{name}` must be non-empty and use only letters, digits, `_`, `.` and `-`"),
        );
    }
    match agent {
        AgentConfig::Echo(echo) => check_echo(p, &key, echo),
        AgentConfig::Command(command) => check_command(p, &key, command),
        AgentConfig::OpenAi(openai) => check_openai(p, &key, openai),
        AgentConfig::Acp(acp) => check_acp(p, &key, acp),
    }
}

fn check_acp(p: &mut Problems, key: &str, agent: &AcpAgent) {
    // `command` and `env` follow the rules of the command agent.
    check_command(
        p,
        key,
        &CommandAgent {
            command: agent.command.clone(),
            cancel_grace_ms: agent.cancel_grace_ms,
            env: agent.env.clone(),
        },
    );
    if agent.startup_timeout_ms < 1 {
        p.add(format!("{key}.startup_timeout_ms"), "must be at least 1");
    }
    p.at_most_toml_int(
        &format!("{key}.startup_timeout_ms"),
        agent.startup_timeout_ms,
    );
    p.at_most_toml_int(&format!("{key}.cancel_grace_ms"), agent.cancel_grace_ms);
}

fn check_echo(p: &mut Problems, key: &str, echo: &EchoAgent) {
    if echo.chunk_chars < 1 {
        p.add(format!("{key}.chunk_chars"), "must be at least 1");
    }
}

fn check_command(p: &mut Problems, key: &str, agent: &CommandAgent) {
    match agent.command.first() {
        None => p.add(format!("{key}.command"), "must name a program"),
        Some(program) if program.trim().is_empty() => p.add(
            format!("{key}.command"),
            "the program (first element) must not be blank",
        ),
        Some(_) => {}
    }
    if agent.command.iter().any(|arg| arg.contains('\0')) {
        p.add(format!("{key}.command"), "must not contain NUL characters");
    }
    for (var, value) in &agent.env {
        if var.is_empty() || var.contains('=') || var.contains('\0') {
            p.add(
                format!("{key}.env"),
                format!("`{var}` is not a valid environment variable name"),
            );
        } else if value.contains('\0') {
            p.add(
                format!("{key}.env.{var}"),
                "must not contain NUL characters",
            );
        }
    }
}

fn check_openai(p: &mut Problems, key: &str, agent: &OpenAiAgent) {
    if !(agent.base_url.starts_with("http://") || agent.base_url.starts_with("https://")) {
        p.add(
            format!("{key}.base_url"),
            format!("`{}` must start with http:// or https://", agent.base_url),
        );
    }
    if let Some(t) = agent.temperature {
        if !t.is_finite() || !(0.0..=2.0).contains(&t) {
            p.add(format!("{key}.temperature"), "must be between 0 and 2");
        }
    }
    if let Some(var) = &agent.api_key_env {
        if var.trim().is_empty() {
            p.add(format!("{key}.api_key_env"), "must not be blank");
        }
    }
}
