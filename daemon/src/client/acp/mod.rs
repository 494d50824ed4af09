//! `sessiond acp`: sessiond as an ACP agent on stdio, for editors. Each ACP session
//! is a sessiond session; the bridge talks to the daemon as the profile's TUI, so a
//! closed editor only detaches and the session (and its running turn) goes on.
//! Logs go to stderr; stdout carries ACP only.

mod attach;
mod config_options;
mod mapping;
mod prompt;

use crate::client::connect::connect_as;
use crate::client::profile::Profile;
use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::schema::{
    AgentCapabilities, CancelNotification, Implementation, InitializeRequest, InitializeResponse,
    ListSessionsRequest, ListSessionsResponse, LoadSessionRequest, LoadSessionResponse,
    NewSessionRequest, NewSessionResponse, PromptCapabilities, PromptRequest, ResumeSessionRequest,
    ResumeSessionResponse, SessionCapabilities, SessionConfigOption, SessionId as AcpSessionId,
    SessionInfo as AcpSessionInfo, SessionListCapabilities, SessionResumeCapabilities,
    SetSessionConfigOptionRequest,
};
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::{Agent, Client as Editor, Stdio};
use prompt::{rpc_error, Verdicts};
use sessiond_client::Client;
use sessiond_config::Config;
use sessiond_protocol::params::AgentInfo;
use sessiond_protocol::params::{ListParams, NewSessionParams};
use sessiond_protocol::{Mode, SessionId};
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// The client name the bridge initializes with.
pub const CLIENT_NAME: &str = "sessiond-acp";

/// State shared by the editor's requests.
pub struct Bridge {
    client: Client,
    /// The daemon's agents (`daemon/agents`): the choices of the config options.
    agents: Vec<AgentInfo>,
    /// The agent alias of new sessions (`None`: the daemon's default).
    agent: Option<String>,
    verdicts: Verdicts,
    /// The forwarder of each session open in the editor.
    attached: Mutex<HashMap<SessionId, JoinHandle<()>>>,
    /// Prompt texts this editor sent whose `user_message` is not to be echoed back.
    own_prompts: Mutex<HashMap<SessionId, Vec<String>>>,
}

impl Bridge {
    fn is_attached(&self, id: &SessionId) -> bool {
        self.attached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(id)
    }

    fn own_prompt(&self, id: &SessionId, text: &str) {
        self.own_prompts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.clone())
            .or_default()
            .push(text.to_owned());
    }

    /// True (and forgotten) when `text` is a prompt this editor sent to `id`.
    fn take_own_prompt(&self, id: &SessionId, text: &str) -> bool {
        let mut g = self.own_prompts.lock().unwrap_or_else(|p| p.into_inner());
        let Some(list) = g.get_mut(id) else {
            return false;
        };
        match list.iter().position(|t| t == text) {
            Some(i) => {
                list.remove(i);
                true
            }
            None => false,
        }
    }

    fn set_forwarder(&self, id: &SessionId, task: JoinHandle<()>) {
        let old = self
            .attached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), task);
        if let Some(old) = old {
            old.abort();
        }
    }

    fn detached(&self, id: &SessionId) {
        self.attached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.verdicts.forget_session(id);
    }
}

/// Runs the bridge until the editor closes stdin.
pub fn run(cfg: &Config, profile: Option<&str>, agent: Option<String>) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let profile = Profile::named(profile)?;
        let client = connect_as(cfg, &profile, CLIENT_NAME).await?;
        let agents = client.agents().await?.agents;
        let bridge = Arc::new(Bridge {
            client,
            agents,
            agent,
            verdicts: Verdicts::default(),
            attached: Mutex::new(HashMap::new()),
            own_prompts: Mutex::new(HashMap::new()),
        });
        serve(bridge)
            .await
            .map_err(|e| anyhow::anyhow!("acp connection failed: {e}"))?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn serve(bridge: Arc<Bridge>) -> agent_client_protocol::Result<()> {
    let (b_new, b_load, b_resume, b_list, b_prompt, b_cancel, b_set) = (
        bridge.clone(),
        bridge.clone(),
        bridge.clone(),
        bridge.clone(),
        bridge.clone(),
        bridge.clone(),
        bridge,
    );
    Agent
        .v1()
        .name("sessiond")
        .on_receive_request(
            async move |req: InitializeRequest, responder, _cx| {
                let _ = req;
                responder.respond(initialize_response())
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: NewSessionRequest, responder, cx: ConnectionTo<Editor>| {
                let bridge = b_new.clone();
                let cx2 = cx.clone();
                cx.spawn(async move {
                    responder.respond_with_result(new_session(&bridge, &cx2, req).await)
                })
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: LoadSessionRequest, responder, cx: ConnectionTo<Editor>| {
                let bridge = b_load.clone();
                let cx2 = cx.clone();
                cx.spawn(async move {
                    let id = SessionId::from(req.session_id.0.as_ref());
                    let r = open(&bridge, &cx2, &id, true).await;
                    responder.respond_with_result(
                        r.map(|options| LoadSessionResponse::new().config_options(options)),
                    )
                })
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: ResumeSessionRequest, responder, cx: ConnectionTo<Editor>| {
                let bridge = b_resume.clone();
                let cx2 = cx.clone();
                cx.spawn(async move {
                    let id = SessionId::from(req.session_id.0.as_ref());
                    let r = open(&bridge, &cx2, &id, false).await;
                    responder.respond_with_result(
                        r.map(|options| ResumeSessionResponse::new().config_options(options)),
                    )
                })
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: ListSessionsRequest, responder, cx: ConnectionTo<Editor>| {
                let bridge = b_list.clone();
                cx.spawn(async move { responder.respond_with_result(list(&bridge, req).await) })
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: PromptRequest, responder, cx: ConnectionTo<Editor>| {
                let bridge = b_prompt.clone();
                cx.spawn(
                    async move { responder.respond_with_result(prompt::run(&bridge, req).await) },
                )
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: SetSessionConfigOptionRequest, responder, cx: ConnectionTo<Editor>| {
                let bridge = b_set.clone();
                cx.spawn(async move {
                    responder.respond_with_result(config_options::set(&bridge, req).await)
                })
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_notification(
            async move |n: CancelNotification, cx: ConnectionTo<Editor>| {
                let bridge = b_cancel.clone();
                cx.spawn(async move {
                    let id = SessionId::from(n.session_id.0.as_ref());
                    if let Err(e) = bridge.client.cancel(&id).await {
                        tracing::info!(session_id = %id, error = %e, "cannot cancel");
                    }
                    Ok(())
                })
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .connect_to(Stdio::new())
        .await
}

fn initialize_response() -> InitializeResponse {
    InitializeResponse::new(ProtocolVersion::V1)
        .agent_capabilities(
            AgentCapabilities::new()
                .load_session(true)
                .prompt_capabilities(PromptCapabilities::new().embedded_context(true).image(true))
                .session_capabilities(
                    SessionCapabilities::new()
                        .list(SessionListCapabilities::new())
                        .resume(SessionResumeCapabilities::new()),
                ),
        )
        .agent_info(Implementation::new("sessiond", env!("CARGO_PKG_VERSION")))
}

async fn new_session(
    bridge: &Arc<Bridge>,
    cx: &ConnectionTo<Editor>,
    req: NewSessionRequest,
) -> agent_client_protocol::Result<NewSessionResponse> {
    let created = bridge
        .client
        .new_session(NewSessionParams {
            agent: bridge.agent.clone(),
            mode: Some(Mode::Code),
            cwd: Some(req.cwd.display().to_string()),
            keep_siblings: Some(true),
            ..Default::default()
        })
        .await
        .map_err(rpc_error)?;
    let options = config_options::options(
        &bridge.agents,
        &created.session.agent,
        &created.session.overrides,
    );
    let id = created.session.session_id;
    let stream = bridge
        .client
        .subscribe(&id, None)
        .await
        .map_err(rpc_error)?;
    let task = tokio::spawn(attach::forward(
        bridge.clone(),
        cx.clone(),
        id.clone(),
        stream,
    ));
    bridge.set_forwarder(&id, task);
    Ok(NewSessionResponse::new(AcpSessionId::new(id.as_str())).config_options(options))
}

/// `session/load` (`replay`) or `session/resume`: take the session over, replay its
/// transcript when asked, then stream what follows (a running turn included).
async fn open(
    bridge: &Arc<Bridge>,
    cx: &ConnectionTo<Editor>,
    id: &SessionId,
    replay: bool,
) -> agent_client_protocol::Result<Vec<SessionConfigOption>> {
    let loaded = bridge
        .client
        .load_session(id, true, true)
        .await
        .map_err(rpc_error)?;
    let options = config_options::options(
        &bridge.agents,
        &loaded.session.agent,
        &loaded.session.overrides,
    );
    // The transcript is a snapshot at a seq; the stream continues from it (a
    // resume, without the replay, follows live events only).
    let since = if replay {
        Some(
            attach::replay_history(bridge, cx, id)
                .await
                .map_err(rpc_error)?,
        )
    } else {
        None
    };
    let stream = bridge
        .client
        .subscribe(id, since)
        .await
        .map_err(rpc_error)?;
    let task = tokio::spawn(attach::forward(
        bridge.clone(),
        cx.clone(),
        id.clone(),
        stream,
    ));
    bridge.set_forwarder(id, task);
    Ok(options)
}

/// `session/list`: every session of the daemon, newest first, those of `cwd` only
/// when it is given (the daemon's `cwd` filter).
async fn list(
    bridge: &Bridge,
    req: ListSessionsRequest,
) -> agent_client_protocol::Result<ListSessionsResponse> {
    let cwd = req.cwd.as_ref().map(|c| c.display().to_string());
    let page = bridge
        .client
        .list_sessions(ListParams {
            owner: Some("any".to_owned()),
            cursor: req.cursor.clone(),
            cwd,
            ..Default::default()
        })
        .await
        .map_err(rpc_error)?;
    let sessions = page
        .sessions
        .into_iter()
        .filter(|s| !s.status.is_terminal())
        .map(|s| {
            let mut info = AcpSessionInfo::new(
                AcpSessionId::new(s.session_id.as_str()),
                s.cwd.clone().unwrap_or_default(),
            );
            info.title = s.title.clone();
            info.updated_at = Some(s.updated_at.clone());
            info
        })
        .collect();
    let mut r = ListSessionsResponse::new(sessions);
    r.next_cursor = page.next_cursor;
    Ok(r)
}
