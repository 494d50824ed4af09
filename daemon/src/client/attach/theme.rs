//! Styles of the TUI: the terminal's own palette colours, none at all under `NO_COLOR`.

use ratatui::style::{Color, Modifier, Style};

/// Which styles to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colours unless `NO_COLOR` is set (to anything non-empty).
    pub fn from_env() -> Theme {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Theme { color: !no_color }
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    pub fn user(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    pub fn thought(&self) -> Style {
        Style::default().add_modifier(Modifier::DIM)
    }
    pub fn code(&self) -> Style {
        self.fg(Color::Yellow)
    }
    pub fn tool(&self) -> Style {
        self.fg(Color::Magenta)
    }
    pub fn error(&self) -> Style {
        self.fg(Color::Red)
    }
    pub fn notice(&self) -> Style {
        self.fg(Color::Blue)
    }
    pub fn turn_end(&self) -> Style {
        Style::default().add_modifier(Modifier::DIM)
    }
    pub fn status(&self) -> Style {
        if self.color {
            Style::default().bg(Color::Blue).fg(Color::White)
        } else {
            Style::default().add_modifier(Modifier::REVERSED)
        }
    }
    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }
}
