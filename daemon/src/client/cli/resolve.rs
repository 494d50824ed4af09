//! Naming a session on the command line: its full id or any unique prefix of it
//! (with or without the `ses_`), like git's short hashes. An ambiguous prefix lists
//! the candidates.

use super::exit::{fail, Code};
use sessiond_client::Client;
use sessiond_protocol::params::ListParams;
use sessiond_protocol::{SessionId, SessionInfo};

/// Every session the daemon knows (any owner, live or not), newest first.
pub async fn all_sessions(client: &Client, live: Option<bool>) -> anyhow::Result<Vec<SessionInfo>> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = client
            .list_sessions(ListParams {
                owner: Some("any".into()),
                live,
                limit: Some(1000),
                cursor: cursor.take(),
                ..Default::default()
            })
            .await?;
        out.extend(page.sessions);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

/// The session `arg` names.
pub async fn resolve(client: &Client, arg: &str) -> anyhow::Result<SessionId> {
    let sessions = all_sessions(client, None).await?;
    pick(&sessions, arg).map(|s| s.session_id.clone())
}

/// The one session of `sessions` that `arg` names.
pub fn pick<'a>(sessions: &'a [SessionInfo], arg: &str) -> anyhow::Result<&'a SessionInfo> {
    let arg = arg.trim();
    if arg.is_empty() {
        return Err(fail(Code::Usage, "a session id or prefix is needed"));
    }
    if let Some(exact) = sessions.iter().find(|s| s.session_id.0 == arg) {
        return Ok(exact);
    }
    let matches: Vec<&SessionInfo> = sessions
        .iter()
        .filter(|s| {
            let id = s.session_id.0.as_str();
            id.starts_with(arg) || id.strip_prefix("ses_").is_some_and(|r| r.starts_with(arg))
        })
        .collect();
    match matches.as_slice() {
        [] => Err(fail(Code::NotFound, format!("no session matches {arg:?}"))),
        [one] => Ok(one),
        many => {
            let list = many
                .iter()
                .map(|s| match &s.title {
                    Some(t) => format!("{} ({})", s.session_id, super::output::cut(t, 30)),
                    None => s.session_id.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ");
            Err(fail(
                Code::Usage,
                format!(
                    "session prefix {arg:?} is ambiguous: {} sessions match: {list}",
                    many.len()
                ),
            ))
        }
    }
}

/// The shortest prefix length (at least 8 characters after `ses_`) that tells every
/// session of the list apart: what `ls` shows.
pub fn short_len(sessions: &[SessionInfo]) -> usize {
    let ids: Vec<&str> = sessions.iter().map(|s| s.session_id.0.as_str()).collect();
    let mut len = "ses_".len() + 8;
    let longest = ids.iter().map(|i| i.len()).max().unwrap_or(len);
    while len < longest {
        let mut seen = std::collections::HashSet::new();
        if ids.iter().all(|i| seen.insert(&i[..len.min(i.len())])) {
            break;
        }
        len += 2;
    }
    len.min(longest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str) -> SessionInfo {
        serde_json::from_value(serde_json::json!({
            "session_id": id, "agent": "echo", "mode": "chat", "title": null, "cwd": null,
            "owner_tui_id": null, "status": "created", "live": true, "turn": null,
            "queued_turns": 0, "pending_requests": 0, "overrides": {},
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "last_active_at": "2026-01-01T00:00:00Z", "message_count": 0, "round_count": 0,
            "usage": {"input_tokens": 0, "output_tokens": 0}
        }))
        .unwrap()
    }

    #[test]
    fn prefixes_pick_one_or_list_the_candidates() {
        let s = vec![info("ses_abc111"), info("ses_abc222"), info("ses_xyz")];
        assert_eq!(pick(&s, "ses_x").unwrap().session_id.0, "ses_xyz");
        assert_eq!(pick(&s, "abc1").unwrap().session_id.0, "ses_abc111");
        let e = pick(&s, "abc").unwrap_err();
        assert_eq!(super::super::exit::code_of(&e), Code::Usage);
        assert!(e.to_string().contains("ses_abc111") && e.to_string().contains("ses_abc222"));
        let e = pick(&s, "nope").unwrap_err();
        assert_eq!(super::super::exit::code_of(&e), Code::NotFound);
    }
}
