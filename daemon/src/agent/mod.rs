//! Agents: what executes a turn. One file per provider kind; `Agents` builds them
//! from the configuration by alias.

pub mod acp;
pub mod command;
pub mod echo;
pub mod emit;
pub mod openai;
pub mod process;
pub mod sse;

use crate::persist::Db;
pub use emit::Emitter;
use futures::future::BoxFuture;
use serde::Serialize;
use sessiond_config::{AgentConfig, Config};
use sessiond_protocol::{Overrides, RequestId, Role, SessionId, TurnId, UploadEntry};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One message of the session's history as an agent receives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryMessage {
    pub role: Role,
    pub content: String,
}

/// Everything a turn needs to run.
#[derive(Debug, Clone)]
pub struct TurnInput {
    pub session_id: SessionId,
    pub turn_id: TurnId,
    /// The prompt text followed by the markers of its attachments, each on its own line.
    pub text: String,
    pub attachments: Vec<UploadEntry>,
    /// Earlier messages of the session, oldest first (without this turn's prompt).
    pub history: Vec<HistoryMessage>,
    pub overrides: Overrides,
    pub cwd: Option<String>,
}

/// The client's answer to a request the turn made.
#[derive(Debug, Clone)]
pub struct RequestResponse {
    pub request_id: RequestId,
    pub response: serde_json::Value,
}

/// What a running turn talks through.
pub struct TurnIo {
    /// Publishes chunks, tool calls, requests and usage.
    pub emit: Emitter,
    /// Answers to the turn's requests, in the order they were given.
    pub responses: mpsc::UnboundedReceiver<RequestResponse>,
    /// Fires when the turn is cancelled; the agent must stop promptly.
    pub cancel: CancellationToken,
}

/// A provider that runs turns.
pub trait Agent: Send + Sync {
    /// The provider kind (`echo`, `command`, `openai`).
    fn kind(&self) -> &'static str;

    /// Runs one turn to its end. `Err` fails the turn with that message. When the
    /// cancel token fires, return as soon as possible (the result is then ignored).
    fn run(&self, input: TurnInput, io: TurnIo) -> BoxFuture<'static, Result<(), String>>;

    /// The session left memory (unloaded, closed, killed, deleted, evicted, or the
    /// daemon stops): drop whatever the agent keeps for it (a process, a connection).
    fn release(&self, _session_id: &SessionId) {}
}

/// Why an agent alias cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AgentUnavailable {
    #[error("unknown agent {0:?}")]
    Unknown(String),
    #[error("agent {alias:?} cannot be used: {reason}")]
    Broken { alias: String, reason: String },
}

/// Each alias's agent, or why it cannot be built.
type Built = BTreeMap<String, Result<Arc<dyn Agent>, String>>;

/// The agents of the configuration, built at start-up and again by a reload.
pub struct Agents {
    built: std::sync::RwLock<Built>,
}

impl Agents {
    /// Builds every configured alias (and the built-in `echo`); a provider that
    /// cannot be built is remembered with its reason.
    pub fn from_config(config: &Config) -> Agents {
        Agents::from_config_with_db(config, None)
    }

    /// As [`Agents::from_config`], with the database agents keep per-session state in
    /// (an ACP agent's session id).
    pub fn from_config_with_db(config: &Config, db: Option<Db>) -> Agents {
        let mut built = BTreeMap::new();
        for alias in config.agent_aliases() {
            if let Some(cfg) = config.agent(&alias) {
                let agent = build(&alias, &cfg, db.clone());
                built.insert(alias, agent);
            }
        }
        Agents {
            built: std::sync::RwLock::new(built),
        }
    }

    /// Takes the agents of a reloaded configuration; turns already running keep the
    /// agent they started with.
    pub fn replace(&self, other: Agents) {
        let new = other.built.into_inner().unwrap_or_else(|p| p.into_inner());
        *self.built.write().unwrap_or_else(|p| p.into_inner()) = new;
    }

    /// Tells every agent that a session left memory (see [`Agent::release`]).
    pub fn release(&self, session_id: &SessionId) {
        let built = self.built.read().unwrap_or_else(|p| p.into_inner());
        for agent in built.values().flatten() {
            agent.release(session_id);
        }
    }

    /// The agent of an alias.
    pub fn get(&self, alias: &str) -> Result<Arc<dyn Agent>, AgentUnavailable> {
        let built = self.built.read().unwrap_or_else(|p| p.into_inner());
        match built.get(alias) {
            None => Err(AgentUnavailable::Unknown(alias.to_owned())),
            Some(Err(reason)) => Err(AgentUnavailable::Broken {
                alias: alias.to_owned(),
                reason: reason.clone(),
            }),
            Some(Ok(a)) => Ok(a.clone()),
        }
    }
}

fn build(alias: &str, cfg: &AgentConfig, db: Option<Db>) -> Result<Arc<dyn Agent>, String> {
    match cfg {
        AgentConfig::Echo(e) => Ok(Arc::new(echo::EchoAgent::new(
            e.chunk_chars,
            e.chunk_delay_ms,
        ))),
        AgentConfig::Command(c) => Ok(Arc::new(command::CommandAgent::new(c)?)),
        AgentConfig::OpenAi(o) => Ok(Arc::new(openai::OpenAiAgent::new(o)?)),
        AgentConfig::Acp(a) => Ok(Arc::new(acp::AcpAgent::new(alias, a, db)?)),
    }
}
