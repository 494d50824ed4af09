//! The input box: a multi-line editor (Alt-Enter inserts a newline), several lines
//! high when needed, with slash-command completion on Tab.

use super::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Widget};

/// The slash commands, for completion and help.
pub const COMMANDS: &[&str] = &[
    "/model",
    "/provider",
    "/temperature",
    "/title",
    "/upload",
    "/interrupt",
    "/cancel",
    "/new",
    "/sessions",
    "/take-over",
    "/detach",
    "/help",
];

/// The text being typed and the cursor (a char index).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Input {
    pub text: String,
    pub cursor: usize,
}

impl Input {
    fn byte(&self, char_idx: usize) -> usize {
        self.text
            .char_indices()
            .nth(char_idx)
            .map_or(self.text.len(), |(b, _)| b)
    }

    fn len(&self) -> usize {
        self.text.chars().count()
    }

    pub fn insert(&mut self, c: char) {
        let b = self.byte(self.cursor);
        self.text.insert(b, c);
        self.cursor += 1;
    }

    pub fn insert_str(&mut self, s: &str) {
        for c in s.chars() {
            self.insert(c);
        }
    }

    pub fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            let b = self.byte(self.cursor);
            self.text.remove(b);
        }
    }

    pub fn delete(&mut self) {
        if self.cursor < self.len() {
            let b = self.byte(self.cursor);
            self.text.remove(b);
        }
    }

    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.len());
    }

    pub fn home(&mut self) {
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.cursor = self.len();
    }

    pub fn clear(&mut self) {
        self.text.clear();
        self.cursor = 0;
    }

    /// Takes the text out, leaving the box empty.
    pub fn take(&mut self) -> String {
        self.cursor = 0;
        std::mem::take(&mut self.text)
    }

    /// Completes a slash command at the start of a one-word input: the only match,
    /// or the longest common prefix of several.
    pub fn complete(&mut self) {
        if !self.text.starts_with('/') || self.text.contains(char::is_whitespace) {
            return;
        }
        let matches: Vec<&str> = COMMANDS
            .iter()
            .copied()
            .filter(|c| c.starts_with(self.text.as_str()))
            .collect();
        let done = match matches.as_slice() {
            [] => return,
            [one] => format!("{one} "),
            many => {
                let mut p = many[0].to_owned();
                for m in many {
                    while !m.starts_with(&p) {
                        p.pop();
                    }
                }
                p
            }
        };
        self.text = done;
        self.cursor = self.len();
    }

    /// Rows the text needs (at least one).
    pub fn rows(&self) -> u16 {
        self.text.split('\n').count().max(1) as u16
    }

    /// The cursor as (row, column) within the text.
    pub fn cursor_pos(&self) -> (u16, u16) {
        let before: String = self.text.chars().take(self.cursor).collect();
        let row = before.matches('\n').count();
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count());
        (row as u16, col as u16)
    }
}

/// The input box widget.
pub struct InputBox<'a> {
    pub input: &'a Input,
    pub title: String,
    pub theme: &'a Theme,
    pub disabled: bool,
}

impl InputBox<'_> {
    /// Height of the box for `input`: its rows (up to 8) and the border.
    pub fn height(input: &Input) -> u16 {
        input.rows().min(8) + 2
    }
}

impl Widget for InputBox<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let inner_h = area.height.saturating_sub(2) as usize;
        let (row, _) = self.input.cursor_pos();
        let skip = (row as usize + 1).saturating_sub(inner_h);
        let lines: Vec<Line> = self
            .input
            .text
            .split('\n')
            .skip(skip)
            .map(|l| Line::raw(l.to_owned()))
            .collect();
        let mut block = Block::default().borders(Borders::ALL).title(self.title);
        if self.disabled {
            block = block.border_style(self.theme.thought());
        }
        Paragraph::new(lines).block(block).render(area, buf);
    }
}
