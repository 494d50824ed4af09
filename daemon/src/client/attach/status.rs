//! The status line: title, short id, agent, mode, model/provider overrides, state,
//! owner, watchers and the connection.

use super::state::{Attached, Link};
use super::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;
use std::time::Instant;

/// The first 8 characters of a session id after its prefix.
pub fn short_id(id: &str) -> String {
    let s = id.strip_prefix("ses_").unwrap_or(id);
    s.chars().take(8).collect()
}

/// The state in words: `awaiting your answer`, `running 12s` or `idle`, with
/// `N queued` and `read-only` added when they apply.
pub fn state_words(s: &Attached, now: Instant) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(reason) = s.closed {
        parts.push(format!("closed ({})", close_word(reason)));
    } else if !s.requests.is_empty() || s.info.pending_requests > 0 && s.running.is_some() {
        parts.push("awaiting your answer".into());
    } else if let Some((_, since)) = &s.running {
        parts.push(format!(
            "running {}s",
            now.saturating_duration_since(*since).as_secs()
        ));
    } else {
        parts.push("idle".into());
    }
    if s.info.queued_turns > 0 {
        parts.push(format!("{} queued", s.info.queued_turns));
    }
    if s.read_only() {
        parts.push("read-only".into());
    }
    parts.join(", ")
}

pub fn close_word(r: sessiond_protocol::CloseReason) -> &'static str {
    use sessiond_protocol::CloseReason::*;
    match r {
        Closed => "closed",
        Evicted => "evicted",
        Killed => "killed",
        Expired => "expired",
        Deleted => "deleted",
    }
}

/// The status line's text.
pub fn status_text(s: &Attached, now: Instant) -> String {
    let i = &s.info;
    let mut model = Vec::new();
    if let Some(m) = &i.overrides.model {
        model.push(m.clone());
    }
    if let Some(p) = &i.overrides.model_provider {
        model.push(format!("via {p}"));
    }
    if let Some(t) = i.overrides.temperature {
        model.push(format!("t={t}"));
    }
    let mut parts = vec![
        i.title.clone().unwrap_or_else(|| "(untitled)".into()),
        short_id(i.session_id.as_str()),
        i.agent.clone(),
        i.mode.as_str().to_owned(),
    ];
    if !model.is_empty() {
        parts.push(model.join(" "));
    }
    parts.push(state_words(s, now));
    parts.push(
        match s.link {
            Link::Connected => "connected",
            Link::Reconnecting => "reconnecting",
        }
        .into(),
    );
    parts.push(format!("owner: {}", s.owner_words()));
    parts.push(format!(
        "{} watcher{}",
        i.watchers,
        if i.watchers == 1 { "" } else { "s" }
    ));
    parts.join(" · ")
}

/// The status line widget.
pub struct StatusLine<'a> {
    pub state: &'a Attached,
    pub theme: &'a Theme,
    pub now: Instant,
}

impl Widget for StatusLine<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let style = self.theme.status();
        buf.set_style(area, style);
        let text = format!(" {}", status_text(self.state, self.now));
        buf.set_line(
            area.x,
            area.y,
            &Line::from(Span::styled(text, style)),
            area.width,
        );
    }
}
