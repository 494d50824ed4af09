//! The session's `model` and `model_provider` as ACP config options (select), and
//! `session/set_config_option` as `session/configure`. The choices come from the
//! daemon's `daemon/agents`.

use super::prompt::rpc_error;
use super::Bridge;
use agent_client_protocol::v1::schema::{
    SessionConfigOption, SessionConfigOptionCategory, SessionConfigSelectOption,
    SessionConfigSelectOptions, SetSessionConfigOptionRequest, SetSessionConfigOptionResponse,
};
use sessiond_protocol::params::{AgentInfo, OverridesPatch};
use sessiond_protocol::{Overrides, Patch, SessionId};

/// The `model` value that means "no override".
pub const DEFAULT_MODEL: &str = "default";

/// The options of a session with `agent` and `overrides`.
pub fn options(
    agents: &[AgentInfo],
    agent: &str,
    overrides: &Overrides,
) -> Vec<SessionConfigOption> {
    let provider = overrides
        .model_provider
        .clone()
        .unwrap_or_else(|| agent.to_owned());
    let mut aliases: Vec<String> = agents.iter().map(|a| a.alias.clone()).collect();
    if !aliases.contains(&provider) {
        aliases.push(provider.clone());
    }
    let mut models = vec![DEFAULT_MODEL.to_owned()];
    for m in agents.iter().filter_map(|a| a.model.as_ref()) {
        if !models.contains(m) {
            models.push(m.clone());
        }
    }
    let model = overrides
        .model
        .clone()
        .unwrap_or_else(|| DEFAULT_MODEL.to_owned());
    if !models.contains(&model) {
        models.push(model.clone());
    }
    let select = |values: Vec<String>| {
        SessionConfigSelectOptions::Ungrouped(
            values
                .into_iter()
                .map(|v| SessionConfigSelectOption::new(v.clone(), v))
                .collect(),
        )
    };
    vec![
        SessionConfigOption::select("model_provider", "Agent", provider, select(aliases)).category(
            SessionConfigOptionCategory::Other("_model_provider".to_owned()),
        ),
        SessionConfigOption::select("model", "Model", model, select(models))
            .category(SessionConfigOptionCategory::Model),
    ]
}

/// `session/set_config_option`: `model` (`default` clears it) or `model_provider`.
pub async fn set(
    bridge: &Bridge,
    req: SetSessionConfigOptionRequest,
) -> agent_client_protocol::Result<SetSessionConfigOptionResponse> {
    let id = SessionId::from(req.session_id.0.as_ref());
    let Some(value) = req.value.as_value_id().map(|v| v.0.to_string()) else {
        return Err(
            agent_client_protocol::Error::invalid_params().data(serde_json::json!(
                "config options of sessiond take a value id"
            )),
        );
    };
    let mut patch = OverridesPatch::default();
    match req.config_id.0.as_ref() {
        "model" if value == DEFAULT_MODEL => patch.model = Patch::Clear,
        "model" => patch.model = Patch::Set(value),
        "model_provider" => patch.model_provider = Patch::Set(value),
        other => {
            return Err(
                agent_client_protocol::Error::invalid_params().data(serde_json::json!(format!(
                    "unknown config option {other:?}"
                ))),
            )
        }
    }
    bridge
        .client
        .configure(&id, patch)
        .await
        .map_err(rpc_error)?;
    let info = bridge.client.get_session(&id).await.map_err(rpc_error)?;
    Ok(SetSessionConfigOptionResponse::new(options(
        &bridge.agents,
        &info.agent,
        &info.overrides,
    )))
}
