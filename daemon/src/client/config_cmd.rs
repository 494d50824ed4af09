//! `sessiond config show|check`.

use super::{Cli, ConfigAction};
use sessiond_config::{Config, ConfigError, LoadOptions};
use std::path::PathBuf;
use std::process::ExitCode;

/// The file `Config::load` reads: `--config`, else `$SESSIOND_CONFIG`, else the
/// default location when it exists.
fn config_file(opts: &LoadOptions) -> Option<PathBuf> {
    if let Some(f) = &opts.config_file {
        return Some(f.clone());
    }
    if let Some(f) = std::env::var_os("SESSIOND_CONFIG").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(f));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("sessiond/config.toml")).filter(|p| p.exists())
}

/// The 1-based line of a dotted key (`agents.gpt.base_url`) in a TOML text: the line
/// that sets it, else the header of its table (or of the closest enclosing one).
pub fn line_of(text: &str, key: &str) -> Option<usize> {
    let mut table = String::new();
    let mut best: Option<(usize, usize)> = None; // (matched length, line)
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let full = if let Some(h) = line.strip_prefix('[') {
            table = h
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .split('.')
                .map(|p| p.trim().trim_matches('"'))
                .collect::<Vec<_>>()
                .join(".");
            table.clone()
        } else if let Some((k, _)) = line.split_once('=') {
            let k = k
                .split('.')
                .map(|p| p.trim().trim_matches('"'))
                .collect::<Vec<_>>()
                .join(".");
            if table.is_empty() {
                k
            } else {
                format!("{table}.{k}")
            }
        } else {
            continue;
        };
        let matches = full == key || key.starts_with(&format!("{full}."));
        if matches && best.is_none_or(|(len, _)| full.len() > len) {
            best = Some((full.len(), i + 1));
        }
    }
    best.map(|(_, line)| line)
}

pub fn run(cli: &Cli, action: &ConfigAction) -> anyhow::Result<ExitCode> {
    let opts = LoadOptions {
        config_file: cli.config.clone(),
        socket: cli.socket.clone(),
        ..Default::default()
    };
    match action {
        ConfigAction::Show => {
            let loaded = Config::load(&opts)?;
            if let Some(src) = &loaded.source {
                println!("# from {}", src.display());
            }
            print!("{}", loaded.config.to_toml_string());
            Ok(ExitCode::SUCCESS)
        }
        ConfigAction::Check => match Config::load(&opts) {
            Ok(loaded) => {
                match &loaded.source {
                    Some(src) => println!("ok: {}", src.display()),
                    None => println!("ok: no config file, built-in defaults"),
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                // Every problem of the file in one run, each with its line.
                let file = config_file(&opts);
                let text = file.as_ref().and_then(|f| std::fs::read_to_string(f).ok());
                let found = match (&e, &text) {
                    (ConfigError::Parse { .. } | ConfigError::Invalid(_), Some(t)) => {
                        all_problems(t)
                    }
                    _ => Vec::new(),
                };
                if found.is_empty() {
                    // Not from the file (the environment), or not readable again.
                    if e.problems().is_empty() {
                        eprintln!("sessiond: {e}");
                    }
                    for p in e.problems() {
                        eprintln!("sessiond: {p}");
                    }
                }
                for (line, message) in found {
                    match (&file, line) {
                        (Some(f), Some(n)) => eprintln!("sessiond: {}:{n}: {message}", f.display()),
                        (Some(f), None) => eprintln!("sessiond: {}: {message}", f.display()),
                        _ => eprintln!("sessiond: {message}"),
                    }
                }
                Ok(ExitCode::FAILURE)
            }
        },
    }
}

/// Every problem of a configuration text, each with its line when known: errors
/// of parsing one at a time (a `key = value` line at fault is set aside and the
/// rest parsed again), then every validation problem of what is left.
pub fn all_problems(text: &str) -> Vec<(Option<usize>, String)> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut out = Vec::new();
    for _ in 0..100 {
        let current = lines.join("\n");
        match Config::from_toml_str(&current) {
            Ok(_) => break,
            Err(ConfigError::Invalid(problems)) => {
                for p in problems {
                    out.push((line_of(&current, &p.key), p.to_string()));
                }
                break;
            }
            Err(ConfigError::Parse { message, .. }) => {
                let (line, rest) = split_position(&message);
                // An error inside a table may point at its header: find the key.
                let at = line.and_then(|n| key_line(&lines, n, rest));
                out.push((at.or(line), rest.to_owned()));
                match at.and_then(|n| lines.get_mut(n - 1)) {
                    Some(l) => *l = format!("# {l}"),
                    None => break,
                }
            }
            Err(other) => {
                out.push((None, other.to_string()));
                break;
            }
        }
    }
    out
}

/// The line to set aside for a parse error reported at line `n`: that line when it
/// sets a key, else (a table header) the line of the unknown field the message
/// names, within that table.
fn key_line(lines: &[String], n: usize, message: &str) -> Option<usize> {
    let is_key = |l: &str| l.contains('=') && !l.trim_start().starts_with(['[', '#']);
    let here = lines.get(n - 1)?;
    if is_key(here) {
        return Some(n);
    }
    let field = message.strip_prefix("unknown field `")?.split('`').next()?;
    lines
        .iter()
        .enumerate()
        .skip(n)
        .take_while(|(_, l)| !l.trim_start().starts_with('['))
        .find(|(_, l)| is_key(l) && l.split('=').next().map(str::trim) == Some(field))
        .map(|(i, _)| i + 1)
}

/// `line L, column C[, in T]: message` as (L, `[in T: ]message`).
fn split_position(message: &str) -> (Option<usize>, &str) {
    let Some(rest) = message.strip_prefix("line ") else {
        return (None, message);
    };
    let line = rest
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok());
    let text = match rest.split_once(": ") {
        Some((_, text)) => text,
        None => message,
    };
    (line, text)
}

#[cfg(test)]
mod tests {
    use super::{all_problems, line_of};

    #[test]
    fn every_problem_is_reported_in_one_run() {
        let text = "colour = 1\nmax_live_sessions = 0\n[agents.gpt]\nkind = \"echo\"\nspeed = 3\nchunk_chars = 0\n";
        let found = all_problems(text);
        let lines: Vec<Option<usize>> = found.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [Some(1), Some(5), Some(2), Some(6)], "{found:?}");
        assert!(
            found[0].1.contains("colour") && found[1].1.contains("speed"),
            "{found:?}"
        );
        assert!(found[2].1.contains("max_live_sessions"), "{found:?}");
        assert!(found[3].1.contains("chunk_chars"), "{found:?}");
    }

    #[test]
    fn keys_are_found_on_their_lines() {
        let text = "# c\nmax_live_sessions = 0\n\n[agents.gpt]\nkind = \"openai\"\nbase_url = \"x\"\n[ws]\nlisten = \"1\"\n";
        assert_eq!(line_of(text, "max_live_sessions"), Some(2));
        assert_eq!(line_of(text, "agents.gpt.base_url"), Some(6));
        assert_eq!(line_of(text, "agents.gpt.model"), Some(4));
        assert_eq!(line_of(text, "ws.listen"), Some(8));
        assert_eq!(line_of(text, "default_agent"), None);
    }
}
