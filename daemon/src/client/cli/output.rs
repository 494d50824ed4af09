//! Shared output helpers of the command line: stdout lines that end the command
//! quietly on a closed pipe, JSON, colours (only on a terminal, never with
//! `NO_COLOR`), aligned tables and "3m ago" times.

use std::io::{IsTerminal, Write};

/// Writes one line to stdout. A closed pipe (`sessiond ls | head -1`) ends the
/// process quietly with status 0: the reader has what it wanted.
pub fn line(s: &str) {
    write_out(s.as_bytes(), true);
}

/// Writes text to stdout without a newline and flushes it (streamed replies).
pub fn text(s: &str) {
    write_out(s.as_bytes(), false);
}

fn write_out(bytes: &[u8], newline: bool) {
    let mut out = std::io::stdout().lock();
    let r = out
        .write_all(bytes)
        .and_then(|_| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|_| out.flush());
    if let Err(e) = r {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        // Any other write failure: nothing sensible is left to print to.
        std::process::exit(1);
    }
}

/// Prints a value as pretty JSON.
pub fn json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    line(&serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Prints a value as one JSON line.
pub fn json_line<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    line(&serde_json::to_string(v)?);
    Ok(())
}

fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Whether stdout gets colours.
pub fn color_stdout() -> bool {
    !no_color() && std::io::stdout().is_terminal()
}

/// Whether stderr gets colours (and spinners).
pub fn color_stderr() -> bool {
    !no_color() && std::io::stderr().is_terminal()
}

/// `s` dimmed when `on`.
pub fn dim(s: &str, on: bool) -> String {
    if on {
        format!("\x1b[2m{s}\x1b[0m")
    } else {
        s.to_owned()
    }
}

/// `s` in bold when `on`.
pub fn bold(s: &str, on: bool) -> String {
    if on {
        format!("\x1b[1m{s}\x1b[0m")
    } else {
        s.to_owned()
    }
}

/// A table with a header and columns padded to their widest cell (the last column
/// is not padded, so lines carry no trailing spaces).
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The lines of the table, header first.
    pub fn lines(&self, color: bool) -> Vec<String> {
        let n = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let fmt = |cells: &[String]| {
            let mut s = String::new();
            for (i, c) in cells.iter().enumerate().take(n) {
                if i + 1 == n {
                    s.push_str(c);
                } else {
                    s.push_str(c);
                    s.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
                }
            }
            s.trim_end().to_owned()
        };
        let mut out = vec![bold(&fmt(&self.header), color)];
        out.extend(self.rows.iter().map(|r| fmt(r)));
        out
    }

    pub fn print(&self) {
        for l in self.lines(color_stdout()) {
            line(&l);
        }
    }
}

/// "just now", "42s ago", "3m ago", "5h ago", "2d ago" for an RFC 3339 time.
pub fn ago(rfc3339: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(rfc3339) else {
        return rfc3339.to_owned();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds();
    ago_secs(secs)
}

fn ago_secs(secs: i64) -> String {
    match secs {
        s if s < 5 => "just now".into(),
        s if s < 60 => format!("{s}s ago"),
        s if s < 3600 => format!("{}m ago", s / 60),
        s if s < 86_400 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}

/// The wire name of a unit enum value (`awaiting_response`).
pub fn name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

/// Cuts `s` to `max` characters on a character boundary, with an ellipsis.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_without_trailing_spaces() {
        let mut t = Table::new(&["ID", "TITLE", "AGE"]);
        t.row(vec!["a".into(), "long title".into(), "1m ago".into()]);
        t.row(vec!["bbbb".into(), "".into(), "2h ago".into()]);
        let l = t.lines(false);
        assert_eq!(l[0], "ID    TITLE       AGE");
        assert_eq!(l[1], "a     long title  1m ago");
        assert_eq!(l[2], "bbbb              2h ago");
    }

    #[test]
    fn times_read_like_a_person_says_them() {
        assert_eq!(ago_secs(2), "just now");
        assert_eq!(ago_secs(42), "42s ago");
        assert_eq!(ago_secs(190), "3m ago");
        assert_eq!(ago_secs(3 * 3600 + 5), "3h ago");
        assert_eq!(ago_secs(2 * 86_400), "2d ago");
        assert_eq!(cut("héllo world", 5), "héll…");
    }
}
