//! Turns: `session/prompt` (optionally waiting for the verdict), `session/cancel`,
//! `session/respond`.

use super::{ctx, Rpc};
use crate::store::{PromptRequest, StoreError};
use jsonrpsee::core::{async_trait, RpcResult};
use jsonrpsee::Extensions;
use sessiond_protocol::api::TurnApiServer;
use sessiond_protocol::params::{CancelResult, PromptAccepted, PromptResult, RespondResult};
use sessiond_protocol::{RequestId, SessionId};

#[async_trait]
impl TurnApiServer for Rpc {
    async fn session_prompt(
        &self,
        ext: &Extensions,
        session_id: SessionId,
        text: String,
        attachments: Option<Vec<String>>,
        interrupt: Option<bool>,
        wait: Option<bool>,
    ) -> RpcResult<PromptResult> {
        let caller = ctx(ext).caller();
        let accepted = self
            .d
            .store
            .prompt(
                &caller,
                &session_id,
                PromptRequest {
                    text,
                    attachments: attachments.unwrap_or_default(),
                    interrupt: interrupt.unwrap_or(false),
                    wait: wait.unwrap_or(false),
                },
            )
            .await?;
        // A queued turn publishes nothing until it starts: the feed shows the queue.
        self.d
            .store
            .feed
            .touch(&session_id, crate::events::feed::Change::Changed);
        match accepted.verdict {
            Some(rx) => {
                let verdict = rx
                    .await
                    .map_err(|_| StoreError::Internal("the turn ended without a verdict".into()))?;
                Ok(PromptResult::Finished(verdict))
            }
            None => Ok(PromptResult::Accepted(PromptAccepted {
                turn_id: accepted.turn_id,
                queued_behind: accepted.queued_behind,
            })),
        }
    }

    async fn session_cancel(
        &self,
        ext: &Extensions,
        session_id: SessionId,
    ) -> RpcResult<CancelResult> {
        let caller = ctx(ext).caller();
        let (cancelled, turn_id) = self.d.store.cancel(&caller, &session_id).await?;
        Ok(CancelResult { cancelled, turn_id })
    }

    async fn session_respond(
        &self,
        ext: &Extensions,
        session_id: SessionId,
        request_id: Option<RequestId>,
        response: serde_json::Value,
    ) -> RpcResult<RespondResult> {
        let caller = ctx(ext).caller();
        let remaining = self
            .d
            .store
            .respond(&caller, &session_id, request_id, response)
            .await?;
        Ok(RespondResult { remaining })
    }
}
