//! `sessiond config show|check`.

use super::{Cli, ConfigAction};
use sessiond_config::{Config, LoadOptions};
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
                let problems = e.problems();
                if problems.is_empty() {
                    eprintln!("sessiond: {e}");
                    return Ok(ExitCode::FAILURE);
                }
                // Every problem, each with the file and line of its key.
                let file = config_file(&opts);
                let text = file
                    .as_ref()
                    .and_then(|f| std::fs::read_to_string(f).ok())
                    .unwrap_or_default();
                for p in problems {
                    match (&file, line_of(&text, &p.key)) {
                        (Some(f), Some(n)) => eprintln!("sessiond: {}:{n}: {p}", f.display()),
                        _ => eprintln!("sessiond: {p}"),
                    }
                }
                Ok(ExitCode::FAILURE)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::line_of;

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
