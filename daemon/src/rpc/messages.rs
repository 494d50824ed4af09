//! `session/messages` as a snapshot a client can continue from: the stored
//! transcript, the running turn's content so far (`partial: true`), and the `seq` of
//! the last event they reflect, so `session/subscribe {since_seq: seq}` goes on with
//! no gap and no duplicate whatever the size of the replay window.

use crate::events::PartialTurn;
use crate::state::Daemon;
use crate::store::record::MessageRecord;
use crate::store::StoreError;
use sessiond_protocol::params::MessagesResult;
use sessiond_protocol::{Message, Role, SessionId, TurnId};

/// What was read under the entry's lock of a live session.
struct Captured {
    seq: u64,
    partial: Option<PartialTurn>,
    /// Stored messages with an index below this are reflected by `seq`.
    stored: u64,
}

fn capture(d: &Daemon, id: &SessionId) -> Option<Captured> {
    let e = d.store.sessions.get(id)?;
    let (seq, partial) = e.hub.snapshot();
    Some(Captured {
        seq,
        partial,
        stored: e.rec.message_count,
    })
}

/// The page cut at [`super::page::MESSAGES_PAGE_BYTES`] of content (at least one message).
fn capped(rows: Vec<MessageRecord>) -> Vec<MessageRecord> {
    super::page::cap_bytes(rows, super::page::MESSAGES_PAGE_BYTES, |m| m.content.len())
}

fn to_message(m: MessageRecord) -> Message {
    Message {
        index: m.index,
        role: m.role,
        content: m.content,
        turn_id: m.turn_id.map(TurnId),
        created_at: m.created_at,
        partial: false,
    }
}

/// A page of the transcript from `from`, ending (on its last page) with the running
/// turn's tool calls and reply so far.
pub(crate) async fn snapshot(
    d: &Daemon,
    id: &SessionId,
    from: u64,
    limit: u32,
) -> Result<MessagesResult, StoreError> {
    let store = &d.store;
    // A session that is not live changes only by being loaded: read it, and read
    // again if it went live meanwhile.
    let cap = loop {
        if let Some(c) = capture(d, id) {
            break c;
        }
        let rec = store
            .db()
            .get_session(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        let rows = store.db().messages(id, from, limit).await?;
        if store.sessions.contains_key(id) {
            continue;
        }
        return Ok(MessagesResult {
            messages: capped(rows).into_iter().map(to_message).collect(),
            total: rec.message_count,
            seq: rec.last_seq,
        });
    };
    // Every write queued before the capture (under the same entry lock as the
    // events it matches) is committed once this empty write is.
    store.db().write(Vec::new()).await?;
    let running = cap.partial.as_ref().map(|p| p.turn_id.0.as_str());
    let rows = store.db().messages(id, from, limit).await?;
    let read = rows.len();
    let rows = capped(rows);
    // A page cut by count or by size is not the last one: the partial turn waits.
    let full_page = rows.len() < read || read as u64 >= u64::from(limit);
    let mut messages: Vec<Message> = rows
        .into_iter()
        .filter(|m| m.index < cap.stored)
        // The running turn's reply and tools come from memory (they may be stored
        // already while its `turn_complete` is not yet published).
        .filter(|m| m.role == Role::User || running.is_none() || m.turn_id.as_deref() != running)
        .map(to_message)
        .collect();
    if let Some(p) = cap.partial.filter(|_| !full_page) {
        let now = crate::util::now_rfc3339();
        let mut index = cap.stored;
        let mut push = |role, content| {
            // A `from` past them leaves them out, as it does stored messages.
            if index >= from {
                messages.push(Message {
                    index,
                    role,
                    content,
                    turn_id: Some(p.turn_id.clone()),
                    created_at: now.clone(),
                    partial: true,
                });
            }
            index += 1;
        };
        for t in &p.tools {
            push(Role::Tool, t.message_content());
        }
        push(Role::Assistant, p.content.clone());
    }
    Ok(MessagesResult {
        messages,
        total: cap.stored,
        seq: cap.seq,
    })
}
