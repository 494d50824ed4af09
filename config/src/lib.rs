//! sessiond configuration: defaults, TOML file, environment, flags and validation.
//!
//! [`Config::load`] layers built-in defaults < TOML file < `SESSIOND_*` environment <
//! command-line flags ([`LoadOptions`]) and validates the result, reporting every
//! problem at once with its dotted key. The keys are those of PROTOCOL.md section 10.

mod load;
mod model;
mod paths;
mod validate;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub use model::Durability;
pub use model::{
    AcpAgent, AgentConfig, CommandAgent, Config, EchoAgent, OpenAiAgent, RetentionConfig, WsConfig,
    BUILTIN_ECHO,
};
pub use validate::{
    is_valid_agent_name, MAX_QUEUED_TURNS_LIMIT, MAX_UPLOAD_BYTES_LIMIT, MIN_BUFFER,
};

/// Values given on the command line; each one set overrides file and environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// `--config`: the file to read; it must exist.
    pub config_file: Option<PathBuf>,
    /// `--socket`.
    pub socket: Option<PathBuf>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--ws-listen`.
    pub ws_listen: Option<String>,
}

/// A loaded, validated configuration and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The resolved configuration.
    pub config: Config,
    /// The file actually read, or `None` when only defaults, environment and flags applied.
    pub source: Option<PathBuf>,
}

/// One validation problem, naming its dotted key (e.g. `agents.gpt.base_url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path of the offending key.
    pub key: String,
    /// What is wrong with it, lowercase, no trailing period.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file exists (or was named explicitly) but could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The TOML is malformed, has an unknown key, a bad `kind` or a wrongly typed value.
    #[error("{}", parse_display(path.as_deref(), message))]
    Parse {
        /// The file, or `None` for a string given to [`Config::from_toml_str`].
        path: Option<PathBuf>,
        /// The parser's description, naming the offending key.
        message: String,
    },
    /// An environment variable could not be used.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable's name.
        var: String,
        /// What is wrong with its value.
        message: String,
    },
    /// The configuration parsed but breaks one or more constraints.
    #[error("invalid configuration: {}", join_problems(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// The validation problems, empty for the other kinds of error.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid(problems) => problems,
            _ => &[],
        }
    }
}

fn parse_display(path: Option<&Path>, message: &str) -> String {
    match path {
        Some(path) => format!("cannot parse config file {}: {message}", path.display()),
        None => format!("cannot parse configuration: {message}"),
    }
}

fn join_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
