//! Talking to the daemon for the attach screen: resolving `SESSION` (id or unique
//! prefix), attaching (load or take over unless watching, snapshot, subscribe from
//! the snapshot's seq), and reloading after a `resync`.

use super::state::Attached;
use anyhow::{anyhow, bail};
use sessiond_client::protocol::params::{ListParams, MessagesResult};
use sessiond_client::{Client, ReconnectingClient, ResumingEventStream};
use sessiond_protocol::{SessionId, SessionInfo, TuiId};

/// How to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct How {
    /// Read-only: no load, no input.
    pub watch: bool,
    /// Take the session over from its owner.
    pub take_over: bool,
}

/// Every session of the daemon, newest first (pages followed).
pub async fn all_sessions(c: &Client) -> anyhow::Result<Vec<SessionInfo>> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = c
            .list_sessions(ListParams {
                owner: Some("any".into()),
                limit: Some(500),
                cursor,
                ..Default::default()
            })
            .await?;
        out.extend(page.sessions);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(out),
        }
    }
}

/// The session named by an id or a unique prefix of one.
pub async fn resolve(c: &Client, given: &str) -> anyhow::Result<SessionId> {
    let all = all_sessions(c).await?;
    if let Some(s) = all.iter().find(|s| s.session_id.as_str() == given) {
        return Ok(s.session_id.clone());
    }
    let bare = |id: &str| id.strip_prefix("ses_").unwrap_or(id).to_owned();
    let matches: Vec<&SessionInfo> = all
        .iter()
        .filter(|s| {
            s.session_id.as_str().starts_with(given)
                || bare(s.session_id.as_str()).starts_with(given)
        })
        .collect();
    match matches.as_slice() {
        [] => bail!("no session matches {given:?}"),
        [one] => Ok(one.session_id.clone()),
        many => {
            let names: Vec<String> = many
                .iter()
                .map(|s| {
                    format!(
                        "{} ({})",
                        s.session_id.as_str(),
                        s.title.as_deref().unwrap_or("untitled")
                    )
                })
                .collect();
            bail!("{given:?} is ambiguous: {}", names.join(", "))
        }
    }
}

/// The transcript as one snapshot: the newest 10000 messages at most.
pub async fn snapshot(c: &Client, id: &SessionId) -> anyhow::Result<MessagesResult> {
    const PAGE: u32 = 10_000;
    let first = c.messages(id, None, Some(PAGE)).await?;
    if first.total <= u64::from(PAGE) {
        return Ok(first);
    }
    Ok(
        c.messages(id, Some(first.total - u64::from(PAGE)), Some(PAGE))
            .await?,
    )
}

/// Attaches: owns the session when it may (load, or take over when asked), reads
/// the snapshot and subscribes from its seq.
pub async fn attach(
    rc: &ReconnectingClient,
    me: &TuiId,
    id: &SessionId,
    how: How,
) -> anyhow::Result<(Attached, ResumingEventStream)> {
    let c = rc.client().await?;
    let mut info = c.get_session(id).await?;
    let mine_or_free = info.owner_tui_id.as_ref().is_none_or(|o| o == me);
    if !how.watch && !info.status.is_terminal() && (mine_or_free || how.take_over) {
        info = c
            .load_session(id, how.take_over && !mine_or_free, false)
            .await
            .map_err(|e| anyhow!("cannot attach: {e}"))?
            .session;
    }
    let snap = snapshot(&c, id).await?;
    let events = rc
        .subscribe(id, Some(snap.seq))
        .await?
        .with_replay_boundary();
    let mut st = Attached::new(info, me.clone(), how.watch);
    st.load_snapshot(&snap);
    if let Ok(fresh) = c.get_session(id).await {
        st.set_info(fresh);
    }
    if !how.watch && st.read_only() {
        st.notice(format!(
            "owned by {}: read-only (/take-over takes it over)",
            st.owner_words()
        ));
    }
    Ok((st, events))
}
