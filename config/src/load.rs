//! Layering: built-in defaults < TOML file < `SESSIOND_*` environment < command-line flags.

use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::{Config, ConfigError, LoadOptions, Loaded};

/// Where the config file comes from, which decides whether a missing file is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FileChoice {
    /// Named by `--config` or `SESSIOND_CONFIG`: it must exist.
    Explicit(PathBuf),
    /// The XDG default location: a missing file means "all defaults".
    Default(PathBuf),
    /// No location could be derived (no `XDG_CONFIG_HOME`, no `HOME`).
    None,
}

/// Reads one variable from `env`, treating an empty value as unset.
fn lookup(env: &dyn Fn(&str) -> Option<String>, key: &str) -> Option<String> {
    env(key).filter(|v| !v.is_empty())
}

fn choose_file(opts: &LoadOptions, env: &dyn Fn(&str) -> Option<String>) -> FileChoice {
    if let Some(path) = &opts.config_file {
        return FileChoice::Explicit(path.clone());
    }
    if let Some(path) = lookup(env, "SESSIOND_CONFIG") {
        return FileChoice::Explicit(PathBuf::from(path));
    }
    if let Some(dir) = lookup(env, "XDG_CONFIG_HOME") {
        return FileChoice::Default(Path::new(&dir).join("sessiond").join("config.toml"));
    }
    if let Some(home) = lookup(env, "HOME") {
        return FileChoice::Default(Path::new(&home).join(".config/sessiond/config.toml"));
    }
    FileChoice::None
}

/// Reads and parses the chosen file; `Ok(None)` when a default-location file is absent.
fn read_file(choice: &FileChoice) -> Result<Option<(Config, PathBuf)>, ConfigError> {
    let (path, required) = match choice {
        FileChoice::Explicit(path) => (path, true),
        FileChoice::Default(path) => (path, false),
        FileChoice::None => return Ok(None),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !required => return Ok(None),
        Err(source) => {
            return Err(ConfigError::Io {
                path: path.clone(),
                source,
            })
        }
    };
    let config = parse_toml(&text, Some(path))?;
    Ok(Some((config, path.clone())))
}

/// Parses TOML into a `Config` without validating it.
pub(crate) fn parse_toml(text: &str, path: Option<&Path>) -> Result<Config, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.map(Path::to_path_buf),
        message: describe_toml_error(text, &e),
    })
}

/// One line: `line L, column C: <message>`, the message naming the offending key.
fn describe_toml_error(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim().replace('\n', " ");
    match err.span() {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            match enclosing_table(text, line) {
                Some(table) => format!("line {line}, column {column}, in {table}: {message}"),
                None => format!("line {line}, column {column}: {message}"),
            }
        }
        None => message,
    }
}

/// The `[table]` header at or above 1-based `line`, so errors inside agent tables say
/// which agent they are about.
fn enclosing_table(text: &str, line: usize) -> Option<&str> {
    text.lines()
        .take(line)
        .map(str::trim)
        .filter(|l| l.starts_with('['))
        .last()
        .map(|header| match header.rfind(']') {
            Some(end) => header.get(..=end).unwrap_or(header),
            None => header,
        })
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// Parses a numeric environment variable, naming it in the error.
fn env_number<T: FromStr>(
    env: &dyn Fn(&str) -> Option<String>,
    var: &str,
) -> Result<Option<T>, ConfigError> {
    match lookup(env, var) {
        None => Ok(None),
        Some(raw) => raw
            .trim()
            .parse::<T>()
            .map(Some)
            .map_err(|_| ConfigError::Env {
                var: var.to_owned(),
                message: format!("expected a non-negative integer, got `{raw}`"),
            }),
    }
}

fn apply_env(config: &mut Config, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    if let Some(socket) = lookup(env, "SESSIOND_SOCKET") {
        config.socket = Some(PathBuf::from(socket));
    }
    if let Some(dir) = lookup(env, "SESSIOND_DATA_DIR") {
        config.data_dir = Some(PathBuf::from(dir));
    }
    if let Some(agent) = lookup(env, "SESSIOND_DEFAULT_AGENT") {
        config.default_agent = agent;
    }
    if let Some(log) = lookup(env, "SESSIOND_LOG") {
        config.log = log;
    }
    if let Some(listen) = lookup(env, "SESSIOND_WS_LISTEN") {
        config.ws.listen = Some(listen);
    }
    if let Some(n) = env_number(env, "SESSIOND_MAX_LIVE_SESSIONS")? {
        config.max_live_sessions = n;
    }
    if let Some(n) = env_number(env, "SESSIOND_MAX_QUEUED_TURNS")? {
        config.max_queued_turns = n;
    }
    if let Some(n) = env_number(env, "SESSIOND_MAX_UPLOAD_BYTES")? {
        config.max_upload_bytes = n;
    }
    if let Some(n) = env_number(env, "SESSIOND_MAX_TURN_SECS")? {
        config.max_turn_secs = n;
    }
    if let Some(n) = env_number(env, "SESSIOND_SESSION_TTL_SECS")? {
        config.session_ttl_secs = n;
    }
    Ok(())
}

fn apply_flags(config: &mut Config, opts: &LoadOptions) {
    if let Some(socket) = &opts.socket {
        config.socket = Some(socket.clone());
    }
    if let Some(dir) = &opts.data_dir {
        config.data_dir = Some(dir.clone());
    }
    if let Some(listen) = &opts.ws_listen {
        config.ws.listen = Some(listen.clone());
    }
}

impl Config {
    /// Loads the configuration with the layering defaults < TOML file < environment <
    /// flags, then validates it, reporting every problem together.
    ///
    /// The file is `opts.config_file`, else `$SESSIOND_CONFIG`, else
    /// `$XDG_CONFIG_HOME/sessiond/config.toml`, else `$HOME/.config/sessiond/config.toml`.
    /// A missing file at the default location is fine; a missing file that was named
    /// explicitly is an error. Empty environment values count as unset.
    pub fn load(opts: &LoadOptions) -> Result<Loaded, ConfigError> {
        Self::load_with_env(opts, &|key| std::env::var(key).ok())
    }

    /// [`Config::load`] reading every environment variable it consults (`SESSIOND_*`,
    /// `XDG_CONFIG_HOME`, `HOME`) through `env` instead of the process environment.
    pub fn load_with_env(
        opts: &LoadOptions,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Loaded, ConfigError> {
        let (mut config, source) = match read_file(&choose_file(opts, env))? {
            Some((config, path)) => (config, Some(path)),
            None => (Config::default(), None),
        };
        apply_env(&mut config, env)?;
        apply_flags(&mut config, opts);
        config.validate()?;
        Ok(Loaded { config, source })
    }

    /// Parses a TOML document and validates it.
    pub fn from_toml_str(s: &str) -> Result<Config, ConfigError> {
        let config = parse_toml(s, None)?;
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // Byte 10 is the `=` after "bé " (b, two-byte é, space): the fourth character.
        assert_eq!(line_column(text, 10), (2, 4));
        assert_eq!(line_column(text, 1000), (3, 1));
    }

    #[test]
    fn errors_name_the_enclosing_table() {
        let text = "log = \"info\"\n[agents.gpt] # note\nkind = \"openai\"\n";
        assert_eq!(enclosing_table(text, 1), None);
        assert_eq!(enclosing_table(text, 2), Some("[agents.gpt]"));
        assert_eq!(enclosing_table(text, 3), Some("[agents.gpt]"));
        let err = parse_toml("[agents.e]\nkind = \"echo\"\nchunk_size = 3\n", None)
            .expect_err("unknown key");
        assert!(
            err.to_string()
                .contains("in [agents.e]: unknown field `chunk_size`"),
            "{err}"
        );
    }

    #[test]
    fn explicit_flag_beats_env_and_default() {
        let opts = LoadOptions {
            config_file: Some(PathBuf::from("/flag.toml")),
            ..LoadOptions::default()
        };
        let env = |k: &str| match k {
            "SESSIOND_CONFIG" => Some("/env.toml".to_owned()),
            "XDG_CONFIG_HOME" => Some("/xdg".to_owned()),
            _ => None,
        };
        assert_eq!(
            choose_file(&opts, &env),
            FileChoice::Explicit(PathBuf::from("/flag.toml"))
        );
        assert_eq!(
            choose_file(&LoadOptions::default(), &env),
            FileChoice::Explicit(PathBuf::from("/env.toml"))
        );
        let home_only = |k: &str| (k == "HOME").then(|| "/home/u".to_owned());
        assert_eq!(
            choose_file(&LoadOptions::default(), &home_only),
            FileChoice::Default(PathBuf::from("/home/u/.config/sessiond/config.toml"))
        );
        assert_eq!(
            choose_file(&LoadOptions::default(), &|_| None),
            FileChoice::None
        );
    }
}
