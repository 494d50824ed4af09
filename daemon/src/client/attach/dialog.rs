//! The dialog for a request of the agent: a permission lists its options numbered
//! 1..9 (the digit answers; arrows and Enter too); a question has a text field. Also
//! the yes/no confirmation used before a take-over or a delete.

use super::input::Input;
use super::state::Request;
use super::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};
use sessiond_protocol::RequestKind;

/// The dialog's state: which option is selected, what is typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Dialog {
    pub request: Request,
    pub selected: usize,
    pub answer: Input,
}

impl Dialog {
    pub fn new(request: Request) -> Dialog {
        Dialog {
            request,
            selected: 0,
            answer: Input::default(),
        }
    }

    pub fn up(&mut self) {
        self.selected = self.selected.saturating_sub(1);
    }

    pub fn down(&mut self) {
        let n = self.request.options.len();
        if n > 0 {
            self.selected = (self.selected + 1).min(n - 1);
        }
    }

    /// The answer for option `index` (0-based) of a permission.
    pub fn pick(&self, index: usize) -> Option<serde_json::Value> {
        let o = self.request.options.get(index)?;
        Some(serde_json::json!({"outcome": "selected", "option_id": o.option_id}))
    }

    /// The answer Enter gives: the selected option, or the typed text.
    pub fn enter(&self) -> Option<serde_json::Value> {
        match self.request.kind {
            RequestKind::Permission if !self.request.options.is_empty() => self.pick(self.selected),
            _ => Some(serde_json::json!({"outcome": "answered", "text": self.answer.text})),
        }
    }

    /// Whether typed characters go to the text field.
    pub fn takes_text(&self) -> bool {
        self.request.kind == RequestKind::Question || self.request.options.is_empty()
    }
}

/// A centered rectangle of at most `w` x `h` inside `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// The request dialog widget.
pub struct DialogView<'a> {
    pub dialog: &'a Dialog,
    pub theme: &'a Theme,
    /// More requests wait behind this one.
    pub more: usize,
}

impl Widget for DialogView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let d = self.dialog;
        let mut lines = vec![Line::raw(d.request.prompt.clone()), Line::raw("")];
        let help = if d.takes_text() {
            lines.push(Line::raw(format!("> {}", d.answer.text)));
            "Enter answers · Esc cancels the turn"
        } else {
            for (i, o) in d.request.options.iter().enumerate().take(9) {
                let mark = if i == d.selected { "›" } else { " " };
                let text = format!("{mark} {}. {}", i + 1, o.label);
                let style = if i == d.selected {
                    self.theme.selected()
                } else {
                    Default::default()
                };
                lines.push(Line::from(Span::styled(text, style)));
            }
            "1-9 or arrows + Enter answer · Esc cancels the turn"
        };
        lines.push(Line::raw(""));
        lines.push(Line::from(Span::styled(help, self.theme.thought())));
        if self.more > 0 {
            lines.push(Line::raw(format!("({} more waiting)", self.more)));
        }
        let title = match d.request.kind {
            RequestKind::Permission => " permission ",
            RequestKind::Question => " question ",
        };
        let h = lines.len() as u16 + 3;
        let rect = centered(area, area.width.saturating_sub(8).clamp(20, 72), h);
        Clear.render(rect, buf);
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(title)
                    .border_style(self.theme.warn()),
            )
            .render(rect, buf);
    }
}

/// A yes/no question of the TUI itself.
pub struct ConfirmView<'a> {
    pub text: &'a str,
    pub theme: &'a Theme,
}

impl Widget for ConfirmView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let lines = vec![
            Line::raw(self.text.to_owned()),
            Line::raw(""),
            Line::from(Span::styled("y: yes · n or Esc: no", self.theme.thought())),
        ];
        let rect = centered(area, area.width.saturating_sub(8).clamp(20, 64), 7);
        Clear.render(rect, buf);
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" confirm ")
                    .border_style(self.theme.warn()),
            )
            .render(rect, buf);
    }
}
