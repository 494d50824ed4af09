//! Attaching an ACP session to a sessiond session: the history replay of
//! `session/load`, and the forwarder that turns the session's events into
//! `session/update` notifications, permission requests and prompt verdicts.

use super::mapping::{event_update, message_update, permission_options};
use super::Bridge;
use agent_client_protocol::v1::schema::{
    RequestPermissionOutcome, RequestPermissionRequest, SessionId as AcpSessionId,
    SessionNotification, ToolCallUpdate, ToolCallUpdateFields,
};
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::Client as Editor;
use serde_json::json;
use sessiond_client::EventStream;
use sessiond_protocol::{Event, RequestId, RequestOption, SessionId, TurnId};
use std::sync::Arc;

/// Replays the whole transcript as updates, the running turn's reply and tool calls
/// so far included, and returns the `seq` the snapshot reflects: subscribing from it
/// continues with no gap and no duplicate (PROTOCOL.md 11.1).
pub async fn replay_history(
    bridge: &Bridge,
    cx: &ConnectionTo<Editor>,
    id: &SessionId,
) -> anyhow::Result<u64> {
    let mut from = 0u64;
    loop {
        let page = bridge.client.messages(id, Some(from), Some(500)).await?;
        let mut stored = 0;
        for m in &page.messages {
            if !m.partial {
                stored += 1;
                from = m.index + 1;
            }
            notify(cx, id, message_update(m));
        }
        // The running turn comes on the last page only; a page with nothing stored
        // is past the end. Either way the snapshot is whole at this page's seq.
        if stored == 0 || page.messages.iter().any(|m| m.partial) {
            return Ok(page.seq);
        }
    }
}

fn notify(
    cx: &ConnectionTo<Editor>,
    id: &SessionId,
    update: agent_client_protocol::v1::schema::SessionUpdate,
) {
    let n = SessionNotification::new(AcpSessionId::new(id.as_str()), update);
    if let Err(e) = cx.send_notification(n) {
        tracing::debug!(error = %e, "cannot send a session update to the editor");
    }
}

/// Forwards the session's events to the editor until the stream ends.
pub async fn forward(
    bridge: Arc<Bridge>,
    cx: ConnectionTo<Editor>,
    id: SessionId,
    mut stream: EventStream,
) {
    while let Some(item) = stream.next_event().await {
        let env = match item {
            Ok(env) => env,
            Err(e) => {
                tracing::warn!(session_id = %id, error = %e, "event stream error");
                break;
            }
        };
        let event = env.event;
        match &event {
            Event::UserMessage { text, .. } if bridge.take_own_prompt(&id, text) => {}
            Event::TurnComplete { verdict } => bridge.verdicts.complete(verdict.clone()),
            Event::Request {
                turn_id,
                request_id,
                prompt,
                options,
                ..
            } => ask_editor(
                &bridge,
                &cx,
                &id,
                (turn_id.clone(), request_id.clone()),
                prompt.clone(),
                options,
            ),
            Event::SessionClosed { .. } => break,
            other => {
                if let Some(update) = event_update(other) {
                    notify(&cx, &id, update);
                }
            }
        }
    }
    bridge.detached(&id);
}

/// Asks the editor a request's question as `session/request_permission` and gives
/// its choice to `session/respond`.
fn ask_editor(
    bridge: &Arc<Bridge>,
    cx: &ConnectionTo<Editor>,
    id: &SessionId,
    (turn_id, request_id): (TurnId, RequestId),
    prompt: String,
    options: &serde_json::Value,
) {
    let parsed = RequestOption::parse_list(options);
    if parsed.is_empty() {
        tracing::info!(session_id = %id, %request_id, "a request without options is left to other clients");
        return;
    }
    // Clients written before option objects sent back a bare option id.
    let bare = options
        .as_array()
        .is_some_and(|l| l.iter().all(|o| o.is_string()));
    let request = RequestPermissionRequest::new(
        AcpSessionId::new(id.as_str()),
        ToolCallUpdate::new(
            request_id.as_str().to_owned(),
            ToolCallUpdateFields::new().title(prompt),
        ),
        permission_options(&parsed),
    );
    let bridge = bridge.clone();
    let cx = cx.clone();
    let id = id.clone();
    tokio::spawn(async move {
        // A request replayed from the event window may belong to a turn that has
        // ended: a request is pending only while its turn runs.
        match bridge.client.get_session(&id).await {
            Ok(info) if info.turn.as_ref().map(|t| &t.turn_id) == Some(&turn_id) => {}
            _ => return,
        }
        let sent = cx.send_request(request);
        let response = match sent.block_task().await {
            Ok(r) => match r.outcome {
                RequestPermissionOutcome::Selected(s) if bare => json!(s.option_id.0.as_ref()),
                RequestPermissionOutcome::Selected(s) => {
                    json!({"outcome": "selected", "option_id": s.option_id.0.as_ref()})
                }
                _ => json!({"outcome": "cancelled"}),
            },
            Err(e) => {
                tracing::debug!(error = %e, "the editor did not answer a permission request");
                return;
            }
        };
        if let Err(e) = bridge.client.respond(&id, Some(request_id), response).await {
            tracing::info!(session_id = %id, error = %e, "cannot pass on the editor's answer");
        }
    });
}
