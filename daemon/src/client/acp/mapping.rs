//! sessiond events and transcript messages as ACP `session/update`s, and ACP prompt
//! content as sessiond prompt text (the pure part of the bridge).

use agent_client_protocol::v1::schema::{
    ContentBlock, ContentChunk, PermissionOption, PermissionOptionKind, Plan, PlanEntry,
    SessionUpdate, ToolCall, ToolCallStatus, ToolCallUpdate, ToolCallUpdateFields,
};
use sessiond_protocol::{Event, Message, OptionKind, RequestOption, Role};

fn chunk(text: impl Into<String>) -> ContentChunk {
    ContentChunk::new(ContentBlock::from(text.into()))
}

/// The update an event becomes, if any (requests and verdicts are handled apart).
pub fn event_update(event: &Event) -> Option<SessionUpdate> {
    Some(match event {
        Event::UserMessage { text, .. } => SessionUpdate::UserMessageChunk(chunk(text.clone())),
        Event::AgentMessageChunk { text, .. } => {
            SessionUpdate::AgentMessageChunk(chunk(text.clone()))
        }
        Event::AgentThoughtChunk { text, .. } => {
            SessionUpdate::AgentThoughtChunk(chunk(text.clone()))
        }
        Event::ToolCall {
            tool_call_id,
            name,
            input,
            ..
        } => SessionUpdate::ToolCall(
            ToolCall::new(tool_call_id.clone(), name.clone())
                .status(ToolCallStatus::InProgress)
                .raw_input(input.clone()),
        ),
        Event::ToolResult {
            tool_call_id,
            output,
            is_error,
            ..
        } => SessionUpdate::ToolCallUpdate(ToolCallUpdate::new(
            tool_call_id.clone(),
            ToolCallUpdateFields::new()
                .status(if *is_error {
                    ToolCallStatus::Failed
                } else {
                    ToolCallStatus::Completed
                })
                .raw_output(output.clone()),
        )),
        Event::Plan { entries, .. } => {
            let entries: Vec<PlanEntry> = serde_json::from_value(entries.clone()).ok()?;
            SessionUpdate::Plan(Plan::new(entries))
        }
        // What an ACP agent reported is passed on as it came, when it still reads as one.
        Event::AgentUpdate { data, .. } => serde_json::from_value(data.clone()).ok()?,
        _ => return None,
    })
}

/// A transcript message replayed on `session/load`.
pub fn message_update(m: &Message) -> SessionUpdate {
    match m.role {
        Role::User => SessionUpdate::UserMessageChunk(chunk(m.content.clone())),
        Role::Assistant => SessionUpdate::AgentMessageChunk(chunk(m.content.clone())),
        Role::Tool => SessionUpdate::ToolCall(
            ToolCall::new(format!("message-{}", m.index), "tool")
                .status(ToolCallStatus::Completed)
                .raw_output(serde_json::Value::String(m.content.clone())),
        ),
    }
}

/// A request's options as ACP permission options. An option without a kind is read
/// from its id: ids that say no (`no`, `deny`, `reject`...) reject, others allow.
pub fn permission_options(options: &[RequestOption]) -> Vec<PermissionOption> {
    options
        .iter()
        .map(|o| {
            let kind = match o.kind {
                Some(OptionKind::AllowOnce) => PermissionOptionKind::AllowOnce,
                Some(OptionKind::AllowAlways) => PermissionOptionKind::AllowAlways,
                Some(OptionKind::RejectOnce) => PermissionOptionKind::RejectOnce,
                Some(OptionKind::RejectAlways) => PermissionOptionKind::RejectAlways,
                None => {
                    let id = o.option_id.to_ascii_lowercase();
                    if ["no", "deny", "reject", "cancel"]
                        .iter()
                        .any(|w| id.starts_with(w))
                    {
                        PermissionOptionKind::RejectOnce
                    } else {
                        PermissionOptionKind::AllowOnce
                    }
                }
            };
            PermissionOption::new(o.option_id.clone(), o.label.clone(), kind)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sessiond_protocol::TurnId;

    #[test]
    fn tool_results_and_plans_map_to_their_acp_updates() {
        let t = TurnId::from("turn-1");
        let u = event_update(&Event::ToolResult {
            turn_id: t.clone(),
            tool_call_id: "c1".into(),
            output: json!({"ok": 1}),
            is_error: true,
        })
        .unwrap();
        let v = serde_json::to_value(&u).unwrap();
        assert_eq!(v["sessionUpdate"], "tool_call_update");
        assert_eq!(v["status"], "failed");
        assert_eq!(v["rawOutput"], json!({"ok": 1}));
        let plan = event_update(&Event::Plan {
            turn_id: t.clone(),
            entries: json!([{"content": "x", "priority": "low", "status": "pending"}]),
        })
        .unwrap();
        assert_eq!(
            serde_json::to_value(&plan).unwrap()["entries"][0]["content"],
            "x"
        );
        // An update passed through from an ACP agent comes out as it went in.
        let data = json!({"sessionUpdate": "current_mode_update", "currentModeId": "ask"});
        let u = event_update(&Event::AgentUpdate {
            turn_id: t,
            kind: "current_mode_update".into(),
            data: data.clone(),
        })
        .unwrap();
        assert_eq!(serde_json::to_value(&u).unwrap(), data);
    }

    #[test]
    fn options_without_kind_are_read_from_their_ids() {
        let opts = RequestOption::parse_list(&json!(["yes", "no"]));
        let acp = permission_options(&opts);
        assert_eq!(acp[0].kind, PermissionOptionKind::AllowOnce);
        assert_eq!(acp[1].kind, PermissionOptionKind::RejectOnce);
    }
}
