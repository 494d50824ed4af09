//! The transcript view: user prompts, the streamed answer, thoughts (dimmed), tool
//! calls (one summary line each, expanded on request), turn lines, notices; code
//! blocks stand out. Follows the bottom unless scrolled up.

use super::state::{Attached, Item, ToolItem};
use super::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

/// How the transcript is scrolled and which details are open (view state only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// Rows scrolled up from the bottom (0: follows the bottom).
    pub scroll_up: usize,
    /// Tool calls shown with their input and output in full.
    pub expand_tools: bool,
}

fn one_line(v: &serde_json::Value, max: usize) -> String {
    let s = match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let s = s.replace('\n', " ");
    if s.chars().count() > max {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    } else {
        s
    }
}

fn tool_lines(t: &ToolItem, expand: bool, th: &Theme, out: &mut Vec<(String, Style)>) {
    let status = match (&t.output, t.is_error) {
        (None, _) => "running".to_owned(),
        (Some(o), false) => format!("ok: {}", one_line(o, 60)),
        (Some(o), true) => format!("error: {}", one_line(o, 60)),
    };
    let style = if t.is_error { th.error() } else { th.tool() };
    out.push((
        format!("⚙ {}({}) → {}", t.name, one_line(&t.input, 40), status),
        style,
    ));
    if expand {
        let pretty = |v: &serde_json::Value| {
            serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
        };
        for l in pretty(&t.input).lines() {
            out.push((format!("    in  {l}"), th.tool()));
        }
        if let Some(o) = &t.output {
            let text = match o {
                serde_json::Value::String(s) => s.clone(),
                other => pretty(other),
            };
            for l in text.lines() {
                out.push((format!("    out {l}"), style));
            }
        }
    }
}

/// Text with ``` fences: code lines get the code style and a bar.
fn text_lines(text: &str, base: Style, th: &Theme, out: &mut Vec<(String, Style)>) {
    let mut in_code = false;
    for l in text.split('\n') {
        if l.trim_start().starts_with("```") {
            in_code = !in_code;
            out.push((format!("│ {l}"), th.code()));
        } else if in_code {
            out.push((format!("│ {l}"), th.code()));
        } else {
            out.push((l.to_owned(), base));
        }
    }
}

/// Every logical line of the transcript with its style.
pub fn lines(state: &Attached, view: &View, th: &Theme) -> Vec<(String, Style)> {
    let mut out = Vec::new();
    for item in &state.items {
        match item {
            Item::User { text, .. } => {
                out.push((String::new(), Style::default()));
                let mut first = true;
                for l in text.split('\n') {
                    let prefix = if first { "> " } else { "  " };
                    first = false;
                    out.push((format!("{prefix}{l}"), th.user()));
                }
            }
            Item::Assistant { text, .. } => text_lines(text, Style::default(), th, &mut out),
            Item::Thought { text, .. } => {
                for l in text.split('\n') {
                    out.push((format!("~ {l}"), th.thought()));
                }
            }
            Item::Tool(t) => tool_lines(t, view.expand_tools, th, &mut out),
            Item::TurnEnd {
                stop_reason,
                cancel_cause,
                error,
                usage,
                ..
            } => {
                let mut s = format!("── {}", stop_reason.as_str());
                if let Some(c) = cancel_cause {
                    s.push_str(&format!(" ({})", c.as_str()));
                }
                if let Some(e) = error {
                    s.push_str(&format!(": {}", e.replace('\n', " ")));
                }
                s.push_str(&format!(
                    " · {} in / {} out tokens",
                    usage.input_tokens, usage.output_tokens
                ));
                let style = if error.is_some() {
                    th.error()
                } else {
                    th.turn_end()
                };
                out.push((s, style));
            }
            Item::Notice { text, error } => {
                let style = if *error { th.error() } else { th.notice() };
                for l in text.split('\n') {
                    out.push((format!("* {l}"), style));
                }
            }
        }
    }
    out
}

/// Cuts a line into rows of at most `width` characters.
pub fn wrap(line: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let chars: Vec<char> = line.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars.chunks(width).map(|c| c.iter().collect()).collect()
}

/// The transcript widget.
pub struct TranscriptView<'a> {
    pub state: &'a Attached,
    pub view: &'a View,
    pub theme: &'a Theme,
}

impl TranscriptView<'_> {
    /// All rows at `width`, with their styles.
    pub fn rows(&self, width: usize) -> Vec<(String, Style)> {
        lines(self.state, self.view, self.theme)
            .into_iter()
            .flat_map(|(l, s)| wrap(&l, width).into_iter().map(move |r| (r, s)))
            .collect()
    }
}

impl Widget for TranscriptView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let rows = self.rows(area.width as usize);
        let height = area.height as usize;
        let max_up = rows.len().saturating_sub(height);
        let up = self.view.scroll_up.min(max_up);
        let end = rows.len() - up;
        let start = end.saturating_sub(height);
        for (i, (text, style)) in rows[start..end].iter().enumerate() {
            let line = Line::from(Span::styled(text.clone(), *style));
            buf.set_line(area.x, area.y + i as u16, &line, area.width);
        }
    }
}
