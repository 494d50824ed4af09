//! The client side of the binary: the command line (`serve` runs the daemon; the
//! other commands are its client), built on `sessiond-client` only.
//! Errors print one line on stderr and exit non-zero.

pub mod acp;
pub mod attach;
pub mod autostart;
pub mod cli;
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
    /// Never start the daemon when nothing answers on the socket (also SESSIOND_NO_START=1).
    #[arg(long, global = true)]
    pub no_start: bool,
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
        /// Write the log to FILE (bounded in size: rotated to FILE.1) instead of stderr.
        #[arg(long, value_name = "FILE")]
        log_file: Option<PathBuf>,
    },
    /// Show the daemon's status (never starts it).
    Status {
        /// Print the raw status object as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List every session (live or not), newest first.
    Ls {
        /// Accepted for compatibility: every session is listed by default.
        #[arg(long, hide = true)]
        all: bool,
        /// Only sessions loaded in the daemon's memory.
        #[arg(long)]
        live: bool,
        /// Print the raw session objects as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a session (in the current directory unless --cwd) and print its id.
    New {
        /// Agent alias (see `sessiond agents`); default from the configuration.
        #[arg(long)]
        agent: Option<String>,
        /// Session mode.
        #[arg(long, value_parser = ["chat", "code"])]
        mode: Option<String>,
        /// Working directory of the session (default: the current directory).
        #[arg(long, value_name = "DIR")]
        cwd: Option<PathBuf>,
        /// Title (default: the first line of the first prompt).
        #[arg(long)]
        title: Option<String>,
        /// Expire the session after SECS idle.
        #[arg(long, value_name = "SECS")]
        ttl: Option<u64>,
        /// Keep this profile's other idle sessions of the same mode loaded.
        #[arg(long)]
        keep_siblings: bool,
        /// Print the whole result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send a prompt and stream the reply to stdout (thoughts and tools on stderr).
    Prompt {
        /// Session id or unique prefix.
        session_id: String,
        /// The prompt; `-` or nothing reads it from stdin (when stdin is not a terminal).
        text: Vec<String>,
        /// Cancel the running turn and run this one next.
        #[arg(long)]
        interrupt: bool,
        /// Print every event as one JSON line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Cancel the running turn of a session.
    Cancel {
        /// Session id or unique prefix.
        session_id: String,
    },
    /// Kill a session (admin): cancel its turn, mark it killed, unload it.
    Kill {
        /// Session id or unique prefix.
        session_id: String,
    },
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
    /// Print a session's transcript (like `tmux capture-pane`).
    Log {
        /// Session id or unique prefix.
        session_id: String,
        /// Then stream new events until the session closes.
        #[arg(long, short)]
        follow: bool,
        /// Print messages (and followed events) as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Unload a session from memory (it stays listed and can be prompted again).
    Close {
        /// Session id or unique prefix.
        session_id: String,
    },
    /// Delete a session: memory, transcript and upload index.
    Delete {
        /// Session id or unique prefix.
        session_id: String,
    },
    /// Set a session's title.
    Rename {
        /// Session id or unique prefix.
        session_id: String,
        /// The new title.
        title: String,
    },
    /// Answer a request of the agent (a permission or a question).
    Respond {
        /// Session id or unique prefix.
        session_id: String,
        /// `[REQUEST_ID] ANSWER`: the answer is an option id, a text, or a JSON object.
        #[arg(num_args = 1..=2, required = true, value_names = ["REQUEST_ID", "ANSWER"])]
        args: Vec<String>,
    },
    /// Upload a file to a session; prints its reference for `prompt` attachments.
    Upload {
        /// Session id or unique prefix.
        session_id: String,
        /// The file to upload.
        file: PathBuf,
        /// Print the upload entry as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a session's model, provider or temperature (from its next turn).
    Set {
        /// Session id or unique prefix.
        session_id: String,
        /// Model name; an empty string clears it.
        #[arg(long)]
        model: Option<String>,
        /// Provider (an agent alias); an empty string clears it.
        #[arg(long)]
        provider: Option<String>,
        /// Sampling temperature, 0 to 2; `none` clears it.
        #[arg(long, value_name = "T")]
        temperature: Option<String>,
    },
    /// Daemon counters: connections, sessions, turns, cancels, memory.
    Stats {
        /// Print the raw object as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The TUIs connected to the daemon.
    Tuis {
        /// Print the raw object as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The configured agents.
    Agents {
        /// Print the raw object as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Start the daemon in the background unless it runs; prints {pid, socket, started}.
    Start,
    /// Stop the daemon gracefully; returns once it is gone.
    Stop {
        /// Let running turns finish for up to SECS before cancelling them.
        #[arg(long, value_name = "SECS", default_value_t = 0)]
        grace: u64,
    },
    /// Reload the configuration file (agents, log filter); an invalid file changes nothing.
    Reload,
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
    /// Print the OpenRPC document of the protocol (with the JSON Schema of every type).
    Schema,
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
    connect::set_start_options(cli.no_start, cli.config.clone());
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sessiond: {}", cli::exit::one_line(&e));
            ExitCode::from(cli::exit::code_of(&e) as u8)
        }
    }
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
        Command::Serve {
            data_dir,
            ws,
            log_file,
        } => {
            let opts = LoadOptions {
                config_file: cli.config.clone(),
                socket: cli.socket.clone(),
                data_dir: data_dir.clone(),
                ws_listen: ws.clone(),
            };
            let cfg = Config::load(&opts)?.config;
            crate::logging::init(&cfg, log_file.as_deref())?;
            crate::reload::set_source(opts);
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
            let cfg = client_config(&cli)?;
            Ok(attach::run(&cfg, cli.profile.as_deref(), args))
        }
        Command::Acp { agent } => {
            let cfg = client_config(&cli)?;
            // Stdout is the ACP channel: logs go to stderr only.
            crate::logging::init(&cfg, None)?;
            acp::run(&cfg, cli.profile.as_deref(), agent.clone())
        }
        Command::Completions { .. } | Command::Man | Command::Schema => cli::generate::run(&cli),
        _ => {
            let cfg = client_config(&cli)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(cli::run(&cfg, &cli))
        }
    }
}

/// The configuration a client command uses. A broken configuration file must not
/// keep `status`, `ls` or `stop` from reaching a daemon that runs: the file's
/// problems are said once on stderr and the defaults (with the environment and
/// flags) are used to find the socket.
fn client_config(cli: &Cli) -> anyhow::Result<Config> {
    match load_config(cli, None, None) {
        Ok(cfg) => Ok(cfg),
        Err(e) => {
            eprintln!(
                "sessiond: warning: ignoring the configuration file: {}",
                cli::exit::one_line(&e)
            );
            Ok(Config {
                socket: cli
                    .socket
                    .clone()
                    .or_else(|| std::env::var_os("SESSIOND_SOCKET").map(PathBuf::from)),
                ..Config::default()
            })
        }
    }
}
