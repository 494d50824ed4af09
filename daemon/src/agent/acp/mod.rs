//! The `acp` agent: sessiond as an Agent Client Protocol client. One agent process
//! per live session, started on its first turn in the session's `cwd`, kept until
//! the session leaves memory; its ACP session id is stored with the session so a
//! later start (after an unload or a daemon restart) loads it again.

mod conn;
pub mod process;
mod turn;
pub mod updates;

use super::{Agent, TurnInput, TurnIo};
use crate::persist::{Db, Op};
use conn::Live;
use dashmap::DashMap;
use futures::future::BoxFuture;
use sessiond_protocol::SessionId;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Runs a configured ACP agent.
pub struct AcpAgent {
    inner: Arc<Inner>,
}

/// The checked configuration.
pub struct Settings {
    pub program: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cancel_grace_ms: u64,
    pub startup_timeout_ms: u64,
}

struct Inner {
    settings: Settings,
    /// The agent-state key the ACP session id is stored under (per alias, since a
    /// session may switch agents through `model_provider`).
    state_key: String,
    db: Option<Db>,
    /// The live connection of each session; the lock is held by the running turn.
    sessions: DashMap<SessionId, Arc<tokio::sync::Mutex<Option<Live>>>>,
}

impl AcpAgent {
    /// Checks the configuration; the program itself is started at a session's first turn.
    pub fn new(
        alias: &str,
        cfg: &sessiond_config::AcpAgent,
        db: Option<Db>,
    ) -> Result<AcpAgent, String> {
        let Some((program, args)) = cfg.command.split_first() else {
            return Err("command must name a program".to_owned());
        };
        if program.trim().is_empty() || cfg.command.iter().any(|a| a.contains('\0')) {
            return Err("command must name a program without NUL characters".to_owned());
        }
        Ok(AcpAgent {
            inner: Arc::new(Inner {
                settings: Settings {
                    program: program.clone(),
                    args: args.to_vec(),
                    env: cfg.env.clone(),
                    cancel_grace_ms: cfg.cancel_grace_ms,
                    startup_timeout_ms: cfg.startup_timeout_ms.max(1),
                },
                state_key: format!("acp:{alias}:session_id"),
                db,
                sessions: DashMap::new(),
            }),
        })
    }
}

impl Agent for AcpAgent {
    fn kind(&self) -> &'static str {
        "acp"
    }

    fn run(&self, input: TurnInput, io: TurnIo) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(turn::run(self.inner.clone(), input, io))
    }

    fn release(&self, session_id: &SessionId) {
        // Dropping the connection ends the agent's process group.
        self.inner.sessions.remove(session_id);
    }
}

impl Inner {
    fn slot(&self, id: &SessionId) -> Arc<tokio::sync::Mutex<Option<Live>>> {
        self.sessions.entry(id.clone()).or_default().clone()
    }

    async fn stored_id(&self, id: &SessionId) -> Option<String> {
        let db = self.db.as_ref()?;
        match db.agent_state(id, &self.state_key).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the stored acp session id");
                None
            }
        }
    }

    async fn store_id(&self, id: &SessionId, acp_session: &str) {
        let Some(db) = &self.db else {
            return;
        };
        let op = Op::SetAgentState {
            session_id: id.clone(),
            key: self.state_key.clone(),
            value: Some(acp_session.to_owned()),
        };
        if let Err(e) = db.write(vec![op]).await {
            tracing::warn!(error = %e, "cannot store the acp session id");
        }
    }
}
