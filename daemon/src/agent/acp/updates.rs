//! ACP `session/update` notifications and stop reasons as sessiond events and
//! verdicts: chunks, thoughts, tool calls and results, plans, and every other kind
//! passed on as `agent_update`.

use crate::turn::emitter::Emitter;
use agent_client_protocol::v1::schema::{
    ContentBlock, PermissionOption, PermissionOptionKind, SessionUpdate, StopReason as AcpStop,
    ToolCallStatus,
};
use sessiond_protocol::{OptionKind, RequestOption, StopReason};

/// Publishes one update of the running turn.
pub fn publish(emit: &Emitter, update: SessionUpdate) {
    match update {
        SessionUpdate::AgentMessageChunk(c) => emit.chunk(block_text(&c.content)),
        SessionUpdate::AgentThoughtChunk(c) => {
            let text = block_text(&c.content);
            if !text.is_empty() {
                emit.thought(text);
            }
        }
        SessionUpdate::ToolCall(call) => {
            let id = call.tool_call_id.0.to_string();
            let name = call.name.clone().unwrap_or_else(|| call.title.clone());
            let input = serde_json::to_value(&call).unwrap_or(serde_json::Value::Null);
            let done = final_status(call.status);
            emit.tool_call(id.clone(), name, input);
            if let Some(is_error) = done {
                let output = call
                    .raw_output
                    .clone()
                    .unwrap_or_else(|| serde_json::to_value(&call.content).unwrap_or_default());
                emit.tool_result(id, output, is_error);
            }
        }
        SessionUpdate::ToolCallUpdate(update) => {
            let Some(is_error) = update.fields.status.and_then(final_status) else {
                emit.agent_update(
                    "tool_call_update".to_owned(),
                    serde_json::to_value(&update).unwrap_or_default(),
                );
                return;
            };
            let output = match (&update.fields.raw_output, &update.fields.content) {
                (Some(raw), _) => raw.clone(),
                (None, Some(content)) => serde_json::to_value(content).unwrap_or_default(),
                (None, None) => serde_json::Value::Null,
            };
            emit.tool_result(update.tool_call_id.0.to_string(), output, is_error);
        }
        SessionUpdate::Plan(plan) => {
            emit.plan(serde_json::to_value(&plan.entries).unwrap_or_default());
        }
        other => {
            let data = serde_json::to_value(&other).unwrap_or_default();
            let kind = data
                .get("sessionUpdate")
                .and_then(|k| k.as_str())
                .unwrap_or("unknown")
                .to_owned();
            emit.agent_update(kind, data);
        }
    }
}

/// `Some(is_error)` when a tool call's status is final.
fn final_status(status: ToolCallStatus) -> Option<bool> {
    match status {
        ToolCallStatus::Completed => Some(false),
        ToolCallStatus::Failed => Some(true),
        _ => None,
    }
}

/// The text of a content block; other blocks are described in brackets.
pub fn block_text(block: &ContentBlock) -> String {
    match block {
        ContentBlock::Text(t) => t.text.clone(),
        ContentBlock::ResourceLink(l) => format!("[{}]({})", l.name, l.uri),
        ContentBlock::Image(_) => "[image]".to_owned(),
        ContentBlock::Audio(_) => "[audio]".to_owned(),
        ContentBlock::Resource(_) => "[resource]".to_owned(),
        _ => String::new(),
    }
}

/// A stop reason the agent gave, as the verdict's; `None` for `cancelled`, which
/// the turn's cancel token already accounts for.
pub fn stop_reason(reason: AcpStop) -> Option<StopReason> {
    match reason {
        AcpStop::EndTurn => Some(StopReason::EndTurn),
        AcpStop::MaxTokens => Some(StopReason::MaxTokens),
        AcpStop::MaxTurnRequests => Some(StopReason::MaxTurnRequests),
        AcpStop::Refusal => Some(StopReason::Refusal),
        _ => None,
    }
}

/// The options of a permission request as a `request` event offers them.
pub fn request_options(options: &[PermissionOption]) -> Vec<RequestOption> {
    options
        .iter()
        .map(|o| RequestOption {
            option_id: o.option_id.0.to_string(),
            label: o.name.clone(),
            kind: match o.kind {
                PermissionOptionKind::AllowOnce => Some(OptionKind::AllowOnce),
                PermissionOptionKind::AllowAlways => Some(OptionKind::AllowAlways),
                PermissionOptionKind::RejectOnce => Some(OptionKind::RejectOnce),
                PermissionOptionKind::RejectAlways => Some(OptionKind::RejectAlways),
                _ => None,
            },
        })
        .collect()
}
