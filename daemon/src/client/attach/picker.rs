//! The session picker: every session, newest first (title, short id, agent, mode,
//! state, owner, last activity), filtered by title as you type, updated live from
//! the daemon feed.

use super::input::Input;
use super::status::short_id;
use super::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};
use sessiond_protocol::{Mode, SessionId, SessionInfo, TuiId, TurnState};

/// A question the picker is asking.
#[derive(Debug, Clone, PartialEq)]
pub enum Ask {
    /// Delete this session? (y/n)
    Delete(SessionId),
    /// The new title of this session.
    Rename(SessionId, Input),
    /// Agent and mode of a new session.
    New {
        agents: Vec<String>,
        agent: usize,
        mode: Mode,
    },
}

/// The picker's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Picker {
    pub sessions: Vec<SessionInfo>,
    pub filter: String,
    pub selected: usize,
    pub me: TuiId,
    pub ask: Option<Ask>,
    /// The last error or note, shown at the bottom.
    pub message: Option<String>,
}

impl Picker {
    pub fn new(me: TuiId, mut sessions: Vec<SessionInfo>) -> Picker {
        sort(&mut sessions);
        Picker {
            sessions,
            filter: String::new(),
            selected: 0,
            me,
            ask: None,
            message: None,
        }
    }

    /// The sessions the filter lets through, in order.
    pub fn visible(&self) -> Vec<&SessionInfo> {
        let f = self.filter.to_lowercase();
        self.sessions
            .iter()
            .filter(|s| {
                f.is_empty() || s.title.as_deref().unwrap_or("").to_lowercase().contains(&f)
            })
            .collect()
    }

    pub fn current(&self) -> Option<&SessionInfo> {
        self.visible().get(self.selected).copied()
    }

    fn clamp(&mut self) {
        let n = self.visible().len();
        self.selected = self.selected.min(n.saturating_sub(1));
    }

    pub fn up(&mut self) {
        self.selected = self.selected.saturating_sub(1);
    }

    pub fn down(&mut self) {
        self.selected += 1;
        self.clamp();
    }

    pub fn type_char(&mut self, c: char) {
        self.filter.push(c);
        self.selected = 0;
    }

    pub fn backspace(&mut self) {
        self.filter.pop();
        self.clamp();
    }

    /// A session's newer record (from the feed): replaces or adds it.
    pub fn upsert(&mut self, info: SessionInfo) {
        let keep = self.current().map(|s| s.session_id.clone());
        match self
            .sessions
            .iter_mut()
            .find(|s| s.session_id == info.session_id)
        {
            Some(s) => *s = info,
            None => self.sessions.push(info),
        }
        sort(&mut self.sessions);
        self.reselect(keep);
    }

    pub fn remove(&mut self, id: &SessionId) {
        let keep = self.current().map(|s| s.session_id.clone());
        self.sessions.retain(|s| &s.session_id != id);
        self.reselect(keep);
    }

    fn reselect(&mut self, keep: Option<SessionId>) {
        if let Some(k) = keep {
            if let Some(i) = self.visible().iter().position(|s| s.session_id == k) {
                self.selected = i;
            }
        }
        self.clamp();
    }

    fn owner(&self, s: &SessionInfo) -> String {
        match &s.owner_tui_id {
            None => "nobody".into(),
            Some(o) if *o == self.me => "you".into(),
            Some(_) => "other".into(),
        }
    }
}

fn sort(v: &mut [SessionInfo]) {
    v.sort_by(|a, b| {
        b.last_active_at
            .cmp(&a.last_active_at)
            .then_with(|| b.session_id.as_str().cmp(a.session_id.as_str()))
    });
}

/// The state column of a session.
pub fn session_state(s: &SessionInfo) -> String {
    if s.status.is_terminal() {
        return s.status.as_str().to_owned();
    }
    let mut out = match &s.turn {
        Some(t) if t.state == TurnState::AwaitingResponse => "awaiting".to_owned(),
        Some(_) => "running".to_owned(),
        None if s.live => "idle".to_owned(),
        None => "stored".to_owned(),
    };
    if s.queued_turns > 0 {
        out.push_str(&format!(" +{} queued", s.queued_turns));
    }
    out
}

/// `2026-11-30T10:02:03Z` as `11-30 10:02`.
fn when(ts: &str) -> String {
    if ts.len() >= 16 {
        format!("{} {}", &ts[5..10], &ts[11..16])
    } else {
        ts.to_owned()
    }
}

fn cut(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if s.chars().count() > n {
        out.pop();
        out.push('…');
    }
    format!("{out:<n$}")
}

/// The picker widget.
pub struct PickerView<'a> {
    pub picker: &'a Picker,
    pub theme: &'a Theme,
}

impl Widget for PickerView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let p = self.picker;
        let title_w = (area.width as usize).saturating_sub(62).clamp(10, 40);
        let mut lines = vec![
            Line::from(Span::styled(
                format!(" sessions · filter: {}_", p.filter),
                self.theme.status(),
            )),
            Line::from(Span::styled(
                format!(
                    " {} {:<8} {:<10} {:<4} {:<12} {:<6} {}",
                    cut("title", title_w),
                    "id",
                    "agent",
                    "mode",
                    "state",
                    "owner",
                    "last active"
                ),
                self.theme.thought(),
            )),
        ];
        let visible = p.visible();
        let rows = (area.height as usize).saturating_sub(4);
        let start = p.selected.saturating_sub(rows.saturating_sub(1));
        for (i, s) in visible.iter().enumerate().skip(start).take(rows) {
            let text = format!(
                " {} {:<8} {:<10} {:<4} {:<12} {:<6} {}",
                cut(s.title.as_deref().unwrap_or("(untitled)"), title_w),
                short_id(s.session_id.as_str()),
                cut(&s.agent, 10),
                s.mode.as_str(),
                cut(&session_state(s), 12),
                p.owner(s),
                when(&s.last_active_at)
            );
            let style = if i == p.selected {
                self.theme.selected()
            } else {
                Default::default()
            };
            lines.push(Line::from(Span::styled(text, style)));
        }
        if visible.is_empty() {
            lines.push(Line::raw(" no sessions (Ctrl-N creates one)"));
        }
        Paragraph::new(lines).render(area, buf);
        let footer = p.message.clone().unwrap_or_else(|| {
            "Enter attach · Ctrl-W watch · Ctrl-N new · Ctrl-R rename · Ctrl-X delete · Esc/Ctrl-D leave"
                .into()
        });
        if area.height > 0 {
            buf.set_line(
                area.x,
                area.y + area.height - 1,
                &Line::from(Span::styled(format!(" {footer}"), self.theme.thought())),
                area.width,
            );
        }
        if let Some(ask) = &p.ask {
            render_ask(ask, p, area, buf, self.theme);
        }
    }
}

fn render_ask(ask: &Ask, p: &Picker, area: Rect, buf: &mut Buffer, th: &Theme) {
    let (title, lines) = match ask {
        Ask::Delete(id) => {
            let name = p
                .sessions
                .iter()
                .find(|s| &s.session_id == id)
                .and_then(|s| s.title.clone())
                .unwrap_or_else(|| short_id(id.as_str()));
            (
                " delete ",
                vec![
                    Line::raw(format!("Delete {name}? Its transcript is gone for good.")),
                    Line::raw(""),
                    Line::from(Span::styled("y: delete · n or Esc: keep", th.thought())),
                ],
            )
        }
        Ask::Rename(_, input) => (
            " rename ",
            vec![
                Line::raw(format!("> {}_", input.text)),
                Line::raw(""),
                Line::from(Span::styled("Enter rename · Esc back", th.thought())),
            ],
        ),
        Ask::New {
            agents,
            agent,
            mode,
        } => {
            let mut l = vec![
                Line::raw(format!("mode: {mode} (Tab switches)")),
                Line::raw(""),
            ];
            for (i, a) in agents.iter().enumerate() {
                let style = if i == *agent {
                    th.selected()
                } else {
                    Default::default()
                };
                l.push(Line::from(Span::styled(format!("{}. {a}", i + 1), style)));
            }
            l.push(Line::raw(""));
            l.push(Line::from(Span::styled(
                "arrows choose the agent · Enter create · Esc back",
                th.thought(),
            )));
            (" new session ", l)
        }
    };
    let h = lines.len() as u16 + 2;
    let rect = super::dialog::centered(area, area.width.saturating_sub(8).clamp(20, 64), h);
    Clear.render(rect, buf);
    Paragraph::new(lines)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(title)
                .border_style(th.warn()),
        )
        .render(rect, buf);
}
