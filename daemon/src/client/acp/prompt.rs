//! `session/prompt` from the editor: content blocks become prompt text and uploads,
//! the turn's verdict (from the session's event stream) becomes the prompt response.

use super::Bridge;
use agent_client_protocol::v1::schema::{
    ContentBlock, EmbeddedResourceResource, PromptRequest, PromptResponse, StopReason as AcpStop,
    Usage as AcpUsage,
};
use base64::Engine;
use serde_json::json;
use sessiond_protocol::params::{PromptParams, PromptResult};
use sessiond_protocol::{SessionId, StopReason, TurnId, TurnVerdict};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use tokio::sync::oneshot;

/// A JSON-RPC error for the editor (internal error code, the message says why).
pub fn rpc_error(message: impl std::fmt::Display) -> agent_client_protocol::Error {
    agent_client_protocol::Error::new(-32603, message.to_string())
}

/// Verdicts seen on the event streams, handed to the prompts waiting for them.
#[derive(Default)]
pub struct Verdicts {
    inner: Mutex<VerdictsInner>,
}

#[derive(Default)]
struct VerdictsInner {
    waiting: HashMap<TurnId, (SessionId, oneshot::Sender<TurnVerdict>)>,
    /// Verdicts that arrived before anyone waited (a turn faster than its prompt's reply).
    done: HashMap<TurnId, TurnVerdict>,
    order: VecDeque<TurnId>,
}

/// How many unclaimed verdicts are kept.
const UNCLAIMED: usize = 256;

impl Verdicts {
    fn lock(&self) -> std::sync::MutexGuard<'_, VerdictsInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn complete(&self, v: TurnVerdict) {
        let mut g = self.lock();
        if let Some((_, tx)) = g.waiting.remove(&v.turn_id) {
            let _ = tx.send(v);
            return;
        }
        g.order.push_back(v.turn_id.clone());
        g.done.insert(v.turn_id.clone(), v);
        while g.order.len() > UNCLAIMED {
            if let Some(old) = g.order.pop_front() {
                g.done.remove(&old);
            }
        }
    }

    fn wait(&self, session: &SessionId, turn: &TurnId) -> oneshot::Receiver<TurnVerdict> {
        let (tx, rx) = oneshot::channel();
        let mut g = self.lock();
        match g.done.remove(turn) {
            Some(v) => {
                let _ = tx.send(v);
            }
            None => {
                g.waiting.insert(turn.clone(), (session.clone(), tx));
            }
        }
        rx
    }

    /// The session's stream ended: its waiting prompts fail.
    pub fn forget_session(&self, session: &SessionId) {
        self.lock().waiting.retain(|_, (s, _)| s != session);
    }
}

/// Runs one editor prompt to its verdict.
pub async fn run(
    bridge: &Bridge,
    req: PromptRequest,
) -> agent_client_protocol::Result<PromptResponse> {
    let id = SessionId::from(req.session_id.0.as_ref());
    if !bridge.is_attached(&id) {
        return Err(rpc_error(format!(
            "session {id} is not open here: use session/new or session/load first"
        )));
    }
    let (text, attachments) = content(bridge, &id, &req.prompt).await?;
    bridge.own_prompt(&id, &text);
    let accepted = bridge
        .client
        .prompt(PromptParams {
            session_id: id.clone(),
            text: text.clone(),
            attachments: (!attachments.is_empty()).then_some(attachments),
            interrupt: None,
            wait: None,
        })
        .await;
    let turn = match accepted {
        Ok(PromptResult::Accepted(a)) => a.turn_id,
        Ok(PromptResult::Finished(v)) => return response(v),
        Err(e) => {
            bridge.take_own_prompt(&id, &text);
            return Err(rpc_error(e));
        }
    };
    match bridge.verdicts.wait(&id, &turn).await {
        Ok(v) => response(v),
        Err(_) => Err(rpc_error(
            "the session's event stream ended before the turn did",
        )),
    }
}

/// The prompt text (text blocks and links) and the uploads of embedded content.
async fn content(
    bridge: &Bridge,
    id: &SessionId,
    blocks: &[ContentBlock],
) -> agent_client_protocol::Result<(String, Vec<String>)> {
    let mut parts = Vec::new();
    let mut refs = Vec::new();
    let b64 = base64::engine::general_purpose::STANDARD;
    for (i, block) in blocks.iter().enumerate() {
        let upload: Option<(String, Option<String>, Vec<u8>)> = match block {
            ContentBlock::Text(t) => {
                parts.push(t.text.clone());
                None
            }
            ContentBlock::ResourceLink(l) => {
                parts.push(format!("[{}]({})", l.name, l.uri));
                None
            }
            ContentBlock::Resource(r) => match &r.resource {
                EmbeddedResourceResource::TextResourceContents(t) => Some((
                    file_name(&t.uri, i),
                    t.mime_type.clone(),
                    t.text.clone().into_bytes(),
                )),
                EmbeddedResourceResource::BlobResourceContents(b) => Some((
                    file_name(&b.uri, i),
                    b.mime_type.clone(),
                    b64.decode(&b.blob)
                        .map_err(|e| rpc_error(format!("invalid base64 in a resource: {e}")))?,
                )),
                _ => None,
            },
            ContentBlock::Image(img) => Some((
                format!("image-{i}"),
                Some(img.mime_type.clone()),
                b64.decode(&img.data)
                    .map_err(|e| rpc_error(format!("invalid base64 in an image: {e}")))?,
            )),
            _ => None,
        };
        if let Some((name, mime, bytes)) = upload {
            let entry = bridge
                .client
                .upload_bytes(id, name, mime, &bytes)
                .await
                .map_err(rpc_error)?;
            refs.push(entry.ref_id);
        }
    }
    Ok((parts.join("\n"), refs))
}

fn file_name(uri: &str, i: usize) -> String {
    uri.rsplit('/')
        .find(|s| !s.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("resource-{i}"))
}

/// The prompt response for a verdict; a failed turn is an error with its message.
fn response(v: TurnVerdict) -> agent_client_protocol::Result<PromptResponse> {
    let stop = match v.stop_reason {
        StopReason::EndTurn => AcpStop::EndTurn,
        StopReason::Cancelled => AcpStop::Cancelled,
        StopReason::MaxTokens => AcpStop::MaxTokens,
        StopReason::MaxTurnRequests => AcpStop::MaxTurnRequests,
        StopReason::Refusal => AcpStop::Refusal,
        StopReason::Failed => {
            return Err(rpc_error(
                v.error.unwrap_or_else(|| "the turn failed".to_owned()),
            ))
        }
    };
    let u = v.usage;
    let mut r = PromptResponse::new(stop).usage(AcpUsage::new(
        u.input_tokens.saturating_add(u.output_tokens),
        u.input_tokens,
        u.output_tokens,
    ));
    let mut meta = serde_json::Map::new();
    meta.insert(
        "sessiond".to_owned(),
        json!({"turn_id": v.turn_id, "cancel_cause": v.cancel_cause}),
    );
    r.meta = Some(meta);
    Ok(r)
}
