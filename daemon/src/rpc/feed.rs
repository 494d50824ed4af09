//! `daemon/subscribe`: the daemon-wide session feed (`daemon/update` notifications
//! `session_changed {session}` / `session_deleted {session_id}`). The record is read
//! when it is sent, so a subscriber that lags gets each changed session's latest
//! state once instead of every intermediate one.

use super::Rpc;
use crate::events::feed::Change;
use crate::store::StoreError;
use jsonrpsee::core::{async_trait, SubscriptionResult};
use jsonrpsee::{Extensions, PendingSubscriptionSink, SubscriptionMessage};
use sessiond_protocol::api::FeedApiServer;
use sessiond_protocol::DaemonUpdate;

#[async_trait]
impl FeedApiServer for Rpc {
    async fn daemon_subscribe(
        &self,
        pending: PendingSubscriptionSink,
        _ext: &Extensions,
    ) -> SubscriptionResult {
        let store = self.d.store.clone();
        let queue = store.feed.register();
        let Ok(sink) = pending.accept().await else {
            store.feed.unregister(&queue);
            return Ok(());
        };
        'feed: loop {
            while let Some((id, change)) = queue.pop() {
                let update = match change {
                    Change::Deleted => DaemonUpdate::SessionDeleted { session_id: id },
                    Change::Changed => match store.get(&id).await {
                        Ok(info) => DaemonUpdate::SessionChanged {
                            session: Box::new(info),
                        },
                        Err(StoreError::NotFound(_)) => {
                            DaemonUpdate::SessionDeleted { session_id: id }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot read a session for the feed");
                            continue;
                        }
                    },
                };
                let Ok(raw) = serde_json::value::to_raw_value(&update) else {
                    continue;
                };
                if sink.send(SubscriptionMessage::from(raw)).await.is_err() {
                    break 'feed;
                }
            }
            tokio::select! {
                _ = queue.wait() => {}
                _ = sink.closed() => break,
            }
        }
        store.feed.unregister(&queue);
        Ok(())
    }
}
