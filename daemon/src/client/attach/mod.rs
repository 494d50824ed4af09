//! `sessiond attach`: the terminal UI that attaches to a session the way tmux
//! attaches to a shell. Built on `sessiond-client` only: a reconnecting client with
//! the profile's identity, a snapshot plus a resuming event stream, the daemon feed.
//!
//! One file per screen or dialog: `transcript`, `status`, `input`, `dialog`,
//! `picker`; the state and its reducer in `state`; keys in `keys`; the loop in `app`.

pub mod app;
pub mod commands;
pub mod dialog;
pub mod input;
pub mod keys;
pub mod picker;
pub mod session;
pub mod state;
pub mod status;
pub mod theme;
pub mod transcript;

#[cfg(test)]
mod view_tests;

use super::profile::Profile;
use anyhow::Context;
use app::{App, Msg};
use sessiond_client::protocol::params::NewSessionParams;
use sessiond_client::ReconnectingClient;
use sessiond_config::Config;
use sessiond_protocol::{CloseReason, Mode};
use std::io::IsTerminal;
use std::process::ExitCode;

/// Exit status after a detach (Ctrl-D, `/detach`, Ctrl-C twice, leaving the picker).
pub const EXIT_DETACHED: u8 = 0;
/// The attach itself failed (no daemon, no such session, ambiguous prefix, refused).
pub const EXIT_ATTACH_FAILED: u8 = 1;
/// stdin or stdout is not a terminal.
pub const EXIT_NOT_A_TERMINAL: u8 = 2;
/// The session was killed, deleted or expired under the TUI.
pub const EXIT_SESSION_GONE: u8 = 3;
/// The daemon went away and reconnecting gave up.
pub const EXIT_DAEMON_GONE: u8 = 4;

/// The options of `sessiond attach`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AttachArgs {
    /// Session id or a unique prefix of one (without it, and without --new: the picker).
    pub session: Option<String>,
    /// Create a session and attach to it.
    #[arg(long, conflicts_with = "session")]
    pub new: bool,
    /// Agent of the new session.
    #[arg(long, requires = "new")]
    pub agent: Option<String>,
    /// Mode of the new session.
    #[arg(long, value_parser = ["chat", "code"], requires = "new")]
    pub mode: Option<String>,
    /// Working directory of the new session (default: the current directory).
    #[arg(long, requires = "new")]
    pub cwd: Option<std::path::PathBuf>,
    /// Title of the new session.
    #[arg(long, requires = "new")]
    pub title: Option<String>,
    /// Attach read-only.
    #[arg(long, conflicts_with = "take_over")]
    pub watch: bool,
    /// Take the session over from the profile that owns it.
    #[arg(long)]
    pub take_over: bool,
}

/// How the TUI ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Detached,
    Closed(CloseReason),
    Failed(String),
    DaemonGone(String),
}

/// Runs `sessiond attach`.
pub fn run(cfg: &Config, profile: Option<&str>, args: &AttachArgs) -> ExitCode {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        eprintln!("sessiond attach: stdin and stdout must be a terminal");
        return ExitCode::from(EXIT_NOT_A_TERMINAL);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sessiond attach: {e}");
            return ExitCode::from(EXIT_ATTACH_FAILED);
        }
    };
    let exit = rt.block_on(async {
        match start(cfg, profile, args).await {
            Ok(exit) => exit,
            Err(e) => Exit::Failed(format!("{e:#}")),
        }
    });
    rt.shutdown_background();
    match exit {
        Exit::Detached => ExitCode::from(EXIT_DETACHED),
        Exit::Closed(reason) => {
            eprintln!(
                "sessiond attach: the session was {}",
                status::close_word(reason)
            );
            ExitCode::from(EXIT_SESSION_GONE)
        }
        Exit::Failed(e) => {
            eprintln!("sessiond attach: {}", e.replace('\n', " "));
            ExitCode::from(EXIT_ATTACH_FAILED)
        }
        Exit::DaemonGone(e) => {
            eprintln!("sessiond attach: lost the daemon: {e}");
            ExitCode::from(EXIT_DAEMON_GONE)
        }
    }
}

async fn start(cfg: &Config, profile: Option<&str>, args: &AttachArgs) -> anyhow::Result<Exit> {
    let profile = Profile::named(profile)?;
    // One plain connection settles the identity (issued and saved if needed).
    let first = super::connect::connect_as(cfg, &profile, "sessiond-attach").await?;
    let identity = first.identity().context("the daemon issued no identity")?;
    drop(first);
    let rc = ReconnectingClient::connect_unix(cfg.socket_path(), "sessiond-attach", Some(identity))
        .await
        .context("cannot connect to the daemon")?;
    let me = rc.identity().tui_id.clone();
    let cwd = match &args.cwd {
        Some(d) => Some(std::path::absolute(d)?),
        None => std::env::current_dir().ok(),
    }
    .map(|p| p.display().to_string());

    // Resolve what to show before the screen is taken over, so errors print plainly.
    let c = rc.client().await?;
    let target = match &args.session {
        Some(s) => Some(session::resolve(&c, s).await?),
        None => None,
    };

    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Msg>();
    let mut app = App::new(rc.clone(), me, theme::Theme::from_env(), tx, cwd.clone());
    let how = session::How {
        watch: args.watch,
        take_over: args.take_over,
    };
    if args.new {
        app.create(NewSessionParams {
            agent: args.agent.clone(),
            mode: args.mode.as_deref().and_then(Mode::parse),
            cwd,
            title: args.title.clone(),
            ..Default::default()
        });
    } else if let Some(id) = target {
        app.start_attach(id, how);
    } else {
        app.open_picker();
    }
    let mut term = terminal::enter()?;
    let gone = {
        let rc = rc.clone();
        async move {
            loop {
                if let Err(e) = rc.next_reconnect().await {
                    return e;
                }
            }
        }
    };
    let r = tokio::select! {
        r = app.run(&mut term, rx) => r,
        e = gone => Ok(Exit::DaemonGone(e.to_string())),
    };
    terminal::leave(&mut term);
    r
}

/// Entering and leaving the terminal's TUI mode; leaving also happens on a panic.
pub mod terminal {
    use crossterm::event::{
        DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    };
    use crossterm::execute;
    use crossterm::terminal::{
        disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
    };
    use ratatui::backend::CrosstermBackend;
    use ratatui::Terminal;
    use std::io::Stdout;

    pub type Term = Terminal<CrosstermBackend<Stdout>>;

    fn restore() {
        let _ = disable_raw_mode();
        let _ = execute!(
            std::io::stdout(),
            DisableBracketedPaste,
            DisableMouseCapture,
            LeaveAlternateScreen,
            crossterm::cursor::Show
        );
    }

    /// Raw mode, the alternate screen, mouse and paste; a panic restores the terminal
    /// before its message is printed.
    pub fn enter() -> anyhow::Result<Term> {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            hook(info);
        }));
        enable_raw_mode()?;
        let mut out = std::io::stdout();
        if let Err(e) = execute!(
            out,
            EnterAlternateScreen,
            EnableMouseCapture,
            EnableBracketedPaste
        ) {
            restore();
            return Err(e.into());
        }
        Ok(Terminal::new(CrosstermBackend::new(std::io::stdout()))?)
    }

    /// Back to the terminal as it was.
    pub fn leave(term: &mut Term) {
        let _ = term.show_cursor();
        restore();
    }
}
