//! The client side of the binary: the command line (`serve` runs the daemon; the
//! other commands are its client), built on `sessiond-client` only.
//! Errors print one line on stderr and exit non-zero.

pub mod acp;
pub mod attach;
mod commands;
mod config_cmd;
pub mod connect;
pub mod profile;

use clap::{Parser, Subcommand};
use sessiond_config::{Config, LoadOptions};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "sessiond",
    version,
    about = "Session daemon for terminal AI agents"
)]
pub struct Cli {
    /// Configuration file (default: $XDG_CONFIG_HOME/sessiond/config.toml, or $SESSIOND_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Unix socket path (default from config, $SESSIOND_SOCKET, or the runtime dir).
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Client profile whose TUI identity client commands use (default: `default`).
    #[arg(long, global = true, value_name = "NAME", env = "SESSIOND_PROFILE")]
    pub profile: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground.
    Serve {
        /// Data directory (database, uploads, secrets).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Also listen for token-protected WebSocket connections on ADDR (e.g. 127.0.0.1:7777).
        #[arg(long, value_name = "ADDR")]
        ws: Option<String>,
    },
    /// Show the daemon's status.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// List sessions (yours by default; --all for every session).
    Ls {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Create a session.
    New {
        #[arg(long)]
        agent: Option<String>,
        #[arg(long, value_parser = ["chat", "code"])]
        mode: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Send a prompt and stream the reply to stdout.
    Prompt {
        session_id: String,
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Cancel the running turn of a session.
    Cancel { session_id: String },
    /// Kill a session (admin).
    Kill { session_id: String },
    /// Attach the terminal UI to a session (the picker without SESSION; see docs/tui.md).
    Attach(attach::AttachArgs),
    /// Speak the Agent Client Protocol on stdio (for editors); sessions live in the daemon.
    Acp {
        /// Agent alias of the sessions it creates (default: the daemon's default agent).
        #[arg(long, value_name = "ALIAS")]
        agent: Option<String>,
    },
    /// Show or check the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the resolved configuration as TOML.
    Show,
    /// Validate the configuration file; exit non-zero with every problem.
    Check,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sessiond: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

fn one_line(e: &anyhow::Error) -> String {
    let s = format!("{e:#}");
    s.lines().map(str::trim).collect::<Vec<_>>().join(" ")
}

pub(crate) fn load_config(
    cli: &Cli,
    data_dir: Option<PathBuf>,
    ws: Option<String>,
) -> anyhow::Result<Config> {
    let opts = LoadOptions {
        config_file: cli.config.clone(),
        socket: cli.socket.clone(),
        data_dir,
        ws_listen: ws,
    };
    Ok(Config::load(&opts)?.config)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Serve { data_dir, ws } => {
            let cfg = load_config(&cli, data_dir.clone(), ws.clone())?;
            init_tracing(&cfg.log);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let served = rt.block_on(crate::server::serve(cfg));
            // A blocking task stuck in a system call must not hold the exit.
            rt.shutdown_timeout(std::time::Duration::from_secs(5));
            served?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config { action } => config_cmd::run(&cli, action),
        Command::Attach(args) => {
            let cfg = load_config(&cli, None, None)?;
            Ok(attach::run(&cfg, cli.profile.as_deref(), args))
        }
        Command::Acp { agent } => {
            let cfg = load_config(&cli, None, None)?;
            init_tracing(&cfg.log);
            acp::run(&cfg, cli.profile.as_deref(), agent.clone())
        }
        _ => {
            let cfg = load_config(&cli, None, None)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(commands::run(&cfg, &cli))
        }
    }
}

fn init_tracing(directive: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SESSIOND_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_env("RUST_LOG"))
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(directive))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
