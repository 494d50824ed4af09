//! `session/subscribe`: replay after `since_seq`, then live events, with no gap and
//! no duplicate; a subscriber that falls behind catches up from the replay window
//! (or gets `resync`) and never slows the turn or the other subscribers.

use crate::events::feed::Change;
use crate::events::{Published, Subscription};
use crate::state::Daemon;
use crate::store::StoreError;
use jsonrpsee::core::SubscriptionError;
use jsonrpsee::{PendingSubscriptionSink, SubscriptionMessage, SubscriptionSink};
use sessiond_protocol::{Event, EventEnvelope, SessionId};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Sends one event. Its JSON was made once for the writer and every subscriber; each
/// subscriber's message gets a copy of those bytes, not a serialisation of its own.
async fn send(sink: &SubscriptionSink, env: &Published) -> Result<(), SubscriptionError> {
    let raw = env
        .json()
        .ok_or_else(|| SubscriptionError::from("cannot serialise event"))?
        .to_owned();
    sink.send(SubscriptionMessage::from(raw))
        .await
        .map_err(|_| SubscriptionError::from("subscriber disconnected"))
}

fn is_last(env: &Published) -> bool {
    matches!(env.event, Event::SessionClosed { .. })
}

pub(crate) async fn run(
    d: Arc<Daemon>,
    pending: PendingSubscriptionSink,
    id: SessionId,
    since_seq: Option<u64>,
) {
    let store = d.store.clone();
    // Watching a session makes it live (no eviction, no change of owner).
    let mut attempt = 0;
    let (hub, sub) = loop {
        attempt += 1;
        if let Err(e) = store.ensure_live(&id).await {
            pending
                .reject(jsonrpsee::types::ErrorObjectOwned::from(e))
                .await;
            return;
        }
        let Some(hub) = store.sessions.get(&id).map(|e| e.hub.clone()) else {
            continue;
        };
        match hub.subscribe(since_seq) {
            Ok(sub) => break (hub, sub),
            Err(_) if attempt < 8 => continue,
            Err(_) => {
                pending
                    .reject(jsonrpsee::types::ErrorObjectOwned::from(
                        StoreError::NotFound(id),
                    ))
                    .await;
                return;
            }
        }
    };
    let Ok(sink) = pending.accept().await else {
        hub.unsubscribe(sub.id);
        return;
    };
    // Watchers changed.
    store.feed.touch(&id, Change::Changed);
    let ended = follow(&store, &hub, &sink, &id, since_seq, sub).await;
    hub.unsubscribe(ended);
    store.feed.touch(&id, Change::Changed);
}

/// Replays, marks the end of the replay, then follows live events until the
/// subscription or the session ends; returns the hub subscriber id to remove.
async fn follow(
    store: &Arc<crate::store::Store>,
    hub: &Arc<crate::events::EventHub>,
    sink: &SubscriptionSink,
    id: &SessionId,
    since_seq: Option<u64>,
    sub: Subscription,
) -> u64 {
    let Subscription {
        replay,
        mut rx,
        mut lagged,
        id: mut sub_id,
        head_seq,
    } = sub;
    let mut last_seq = since_seq.unwrap_or(0);
    let mut replayed_requests = std::collections::HashSet::new();
    for env in &replay {
        if matches!(env.event, Event::Request { .. }) {
            replayed_requests.insert(env.seq);
        }
        last_seq = last_seq.max(env.seq);
        if send(sink, env).await.is_err() {
            return sub_id;
        }
    }
    // Questions still waiting for an answer are delivered again to a returning subscriber.
    for env in store.pending_envelopes(id) {
        if !replayed_requests.insert(env.seq) {
            continue;
        }
        if send(sink, &env).await.is_err() {
            return sub_id;
        }
    }
    // What follows is live (not stored; its seq is the head of the replay).
    let boundary = Published::new(EventEnvelope {
        session_id: id.clone(),
        seq: head_seq,
        at: crate::util::now_rfc3339(),
        event: Event::ReplayComplete { head_seq },
    });
    if send(sink, &boundary).await.is_err() {
        return sub_id;
    }
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(env) => {
                    // A request published while we subscribed may also have been
                    // delivered from the pending list just above: send it once.
                    if replayed_requests.remove(&env.seq) {
                        continue;
                    }
                    last_seq = env.seq;
                    if send(sink, &env).await.is_err() {
                        break;
                    }
                    if is_last(&env) {
                        return sub_id;
                    }
                }
                None if lagged.load(Ordering::Acquire) => {
                    // Cut off for falling behind: catch up from the window. If the
                    // session was unloaded meanwhile, the window still ends with its
                    // `session_closed`.
                    let Ok(again) = hub.subscribe(Some(last_seq)) else {
                        for env in hub.replay_since(last_seq) {
                            if send(sink, &env).await.is_err() {
                                break;
                            }
                        }
                        return sub_id;
                    };
                    hub.unsubscribe(sub_id);
                    sub_id = again.id;
                    for env in &again.replay {
                        last_seq = env.seq;
                        if send(sink, env).await.is_err() {
                            return sub_id;
                        }
                    }
                    rx = again.rx;
                    lagged = again.lagged;
                }
                None => return sub_id,
            },
            _ = sink.closed() => break,
        }
    }
    sub_id
}
