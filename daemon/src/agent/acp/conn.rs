//! One live ACP connection: the agent process of a session, `initialize`, then
//! `session/new` or `session/load`, and the handlers that route the agent's
//! updates and permission requests to the turn that is running.

use super::process::{spawn_in_own_group, AgentProcess, Spec};
use super::Settings;
use crate::turn::emitter::Emitter;
use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::schema::{
    ClientCapabilities, Implementation, InitializeRequest, InitializeResponse, LoadSessionRequest,
    NewSessionRequest, RequestPermissionOutcome, RequestPermissionRequest,
    RequestPermissionResponse, SessionConfigOption, SessionConfigOptionCategory,
    SessionId as AcpSessionId, SessionNotification,
};
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::{Agent as AcpPeer, ByteStreams, Client, Responder, V1};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

/// A permission request of the agent, waiting for the turn to publish it.
pub struct PermissionAsk {
    pub request: RequestPermissionRequest,
    pub responder: Responder<RequestPermissionResponse, V1>,
}

/// Where the agent's traffic goes while a turn runs.
pub struct TurnSink {
    pub emit: Emitter,
    pub asks: mpsc::UnboundedSender<PermissionAsk>,
}

/// State shared with the connection's handlers.
#[derive(Default)]
pub struct Shared {
    /// `None` between turns (and while `session/load` replays history): updates are
    /// then dropped and permission requests answered `cancelled`.
    pub turn: Mutex<Option<TurnSink>>,
}

impl Shared {
    fn sink(&self) -> std::sync::MutexGuard<'_, Option<TurnSink>> {
        self.turn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn attach(&self, sink: TurnSink) {
        *self.sink() = Some(sink);
    }

    pub fn detach(&self) {
        *self.sink() = None;
    }
}

/// How the session was opened on the agent's side.
pub enum Opened {
    /// `session/new` (no stored id, or the agent cannot load).
    New { had_stored: bool },
    /// `session/load` of the stored id.
    Loaded,
}

/// A started agent with its ACP session.
pub struct Live {
    pub cx: ConnectionTo<AcpPeer>,
    pub acp_session: AcpSessionId,
    pub process: AgentProcess,
    pub shared: Arc<Shared>,
    pub init: InitializeResponse,
    /// The id of the agent's `model` config option, when it offers one.
    pub model_option: Option<String>,
    /// The model last applied through `session/set_config_option`.
    pub applied_model: Option<String>,
    /// Ends the connection task when dropped.
    _stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the agent, initializes it and opens the session (`session/load` of
/// `stored` when the agent can, else `session/new`), within the startup timeout.
pub async fn start(
    s: &Settings,
    session_id: &str,
    cwd: Option<&str>,
    stored: Option<&str>,
) -> Result<(Live, Opened), String> {
    let (mut process, streams) = spawn_in_own_group(&Spec {
        program: &s.program,
        args: &s.args,
        env: &s.env,
        cwd,
        session_id,
    })
    .await?;
    let shared = Arc::new(Shared::default());
    let (cx_tx, cx_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(run_connection(
        ByteStreams::new(streams.stdin.compat_write(), streams.stdout.compat()),
        shared.clone(),
        cx_tx,
        stop_rx,
    ));
    let setup = async {
        let cx = cx_rx
            .await
            .map_err(|_| "the acp connection ended before it started".to_owned())?;
        let init = cx
            .send_request(
                InitializeRequest::new(ProtocolVersion::V1)
                    .client_capabilities(ClientCapabilities::new())
                    .client_info(Implementation::new("sessiond", env!("CARGO_PKG_VERSION"))),
            )
            .block_task()
            .await
            .map_err(|e| format!("acp initialize failed: {e}"))?;
        let cwd_path = PathBuf::from(cwd.unwrap_or("/"));
        let (acp_session, options, opened) = match stored {
            Some(id) if init.agent_capabilities.load_session => {
                let id = AcpSessionId::new(id);
                match cx
                    .send_request(LoadSessionRequest::new(id.clone(), cwd_path.clone()))
                    .block_task()
                    .await
                {
                    Ok(r) => (id, r.config_options, Opened::Loaded),
                    Err(e) => {
                        tracing::info!(error = %e, "acp session/load failed; starting a new session");
                        let r = new_session(&cx, &cwd_path).await?;
                        (r.0, r.1, Opened::New { had_stored: true })
                    }
                }
            }
            _ => {
                let r = new_session(&cx, &cwd_path).await?;
                (
                    r.0,
                    r.1,
                    Opened::New {
                        had_stored: stored.is_some(),
                    },
                )
            }
        };
        Ok::<_, String>((cx, init, acp_session, options, opened))
    };
    let timeout = Duration::from_millis(s.startup_timeout_ms);
    let outcome = tokio::select! {
        r = tokio::time::timeout(timeout, setup) => match r {
            Ok(r) => r,
            Err(_) => Err(format!("the acp agent did not start within {} ms", s.startup_timeout_ms)),
        },
        status = process.wait() => Err(format!("the acp agent exited during start-up ({status})")),
    };
    match outcome {
        Ok((cx, init, acp_session, options, opened)) => Ok((
            Live {
                cx,
                acp_session,
                process,
                shared,
                init,
                model_option: model_option(options.as_deref()),
                applied_model: None,
                _stop: stop_tx,
                task,
            },
            opened,
        )),
        Err(e) => {
            task.abort();
            process.kill().await;
            Err(format!("{e}{}", process.stderr_suffix().await))
        }
    }
}

async fn new_session(
    cx: &ConnectionTo<AcpPeer>,
    cwd: &std::path::Path,
) -> Result<(AcpSessionId, Option<Vec<SessionConfigOption>>), String> {
    let r = cx
        .send_request(NewSessionRequest::new(cwd.to_path_buf()))
        .block_task()
        .await
        .map_err(|e| format!("acp session/new failed: {e}"))?;
    Ok((r.session_id, r.config_options))
}

fn model_option(options: Option<&[SessionConfigOption]>) -> Option<String> {
    options?
        .iter()
        .find(|o| matches!(o.category, Some(SessionConfigOptionCategory::Model)))
        .map(|o| o.id.0.to_string())
}

/// Runs the connection until `stop` fires (or is dropped) or the transport fails.
async fn run_connection<T>(
    transport: T,
    shared: Arc<Shared>,
    cx_tx: oneshot::Sender<ConnectionTo<AcpPeer>>,
    stop: oneshot::Receiver<()>,
) where
    T: agent_client_protocol::ConnectTo<Client> + 'static,
{
    let updates = shared.clone();
    let asks = shared;
    let r = Client
        .v1()
        .name("sessiond")
        .on_receive_notification(
            async move |n: SessionNotification, _cx| {
                if let Some(sink) = updates.sink().as_ref() {
                    super::updates::publish(&sink.emit, n.update);
                }
                Ok(())
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .on_receive_request(
            async move |request: RequestPermissionRequest, responder, _cx| {
                let ask = PermissionAsk { request, responder };
                let unsent = match asks.sink().as_ref() {
                    Some(sink) => sink.asks.send(ask).err().map(|e| e.0),
                    None => Some(ask),
                };
                if let Some(ask) = unsent {
                    ask.responder.respond(RequestPermissionResponse::new(
                        RequestPermissionOutcome::Cancelled,
                    ))?;
                }
                Ok(())
            },
            agent_client_protocol::on_receive_request!(),
        )
        .connect_with(transport, async move |cx| {
            let _ = cx_tx.send(cx);
            let _ = stop.await;
            Ok(())
        })
        .await;
    if let Err(e) = r {
        tracing::debug!(error = %e, "acp connection ended");
    }
}
