//! How every client command reaches the daemon: connect to the socket (starting the
//! daemon in the background when nothing answers, as tmux does), then `initialize`
//! with the profile's identity so the command acts as that profile's TUI.

use super::autostart;
use super::cli::exit::{fail, Code};
use super::profile::Profile;
use sessiond_client::{Client, ConnectOptions};
use sessiond_config::Config;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// The client name sent in `initialize`.
pub const CLIENT_NAME: &str = "sessiond-cli";

static NO_START: AtomicBool = AtomicBool::new(false);
static CONFIG_FILE: OnceLock<PathBuf> = OnceLock::new();

/// Set once from the command line: `--no-start`, and the `--config` file a started
/// daemon must read too.
pub fn set_start_options(no_start: bool, config_file: Option<PathBuf>) {
    NO_START.store(no_start, Ordering::Relaxed);
    if let Some(f) = config_file {
        let f = std::path::absolute(&f).unwrap_or(f);
        let _ = CONFIG_FILE.set(f);
    }
}

/// True when client commands must not start a daemon (`--no-start`, or
/// `SESSIOND_NO_START` set to anything but empty or `0`).
pub fn no_start() -> bool {
    NO_START.load(Ordering::Relaxed)
        || std::env::var("SESSIOND_NO_START").is_ok_and(|v| !v.is_empty() && v != "0")
}

pub(crate) fn config_file() -> Option<PathBuf> {
    CONFIG_FILE.get().cloned()
}

/// Connects to the daemon's socket (no identity yet), starting the daemon first
/// when nothing answers and starting is allowed.
pub async fn connect_anonymous(cfg: &Config) -> anyhow::Result<Client> {
    connect_or_start(cfg).await.map(|(c, _)| c)
}

/// As [`connect_anonymous`]; also says whether this call started the daemon.
pub async fn connect_or_start(cfg: &Config) -> anyhow::Result<(Client, bool)> {
    match connect_existing(cfg).await {
        Ok(c) => Ok((c, false)),
        Err(e) if no_start() => Err(e),
        Err(_) => autostart::start_and_connect(cfg).await,
    }
}

/// Connects to a daemon that is already running; never starts one.
pub async fn connect_existing(cfg: &Config) -> anyhow::Result<Client> {
    let socket = cfg.socket_path();
    Client::connect_unix(&socket, ConnectOptions::default())
        .await
        .map_err(|e| {
            fail(
                Code::Unreachable,
                format!("no daemon answers on {} ({})", socket.display(), reason(&e)),
            )
        })
}

/// Why a connect failed, said once (no nested "os error" repeats).
fn reason(e: &sessiond_client::Error) -> String {
    match e {
        sessiond_client::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::NotFound => "no socket".into(),
            std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
            // A refusal of the client's own (an untrusted socket directory or peer)
            // carries its reason; the system's says only "permission denied".
            std::io::ErrorKind::PermissionDenied if io.get_ref().is_some() => io.to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".into(),
            _ => io.to_string(),
        },
        other => other.to_string(),
    }
}

/// Connects and initializes as the profile's TUI. A profile without an identity, or
/// whose identity another daemon issued (`INVALID_TUI_SIGNATURE`), gets a new one,
/// which is saved.
pub async fn connect_as(cfg: &Config, profile: &Profile, name: &str) -> anyhow::Result<Client> {
    let client = connect_anonymous(cfg).await?;
    let stored = profile.load()?;
    let result = match client.initialize(name, stored.clone()).await {
        Err(e) if e.code_name() == Some("INVALID_TUI_SIGNATURE") => {
            // A connection may call initialize once: start again on a new one.
            drop(client);
            let client = connect_anonymous(cfg).await?;
            let r = client.initialize(name, None).await?;
            return save_and_return(profile, client, r);
        }
        other => other?,
    };
    if stored.as_ref().map(|s| &s.tui_id) != Some(&result.tui_id) {
        return save_and_return(profile, client, result);
    }
    Ok(client)
}

fn save_and_return(
    profile: &Profile,
    client: Client,
    r: sessiond_protocol::params::InitializeResult,
) -> anyhow::Result<Client> {
    profile.save(&sessiond_client::Identity {
        tui_id: r.tui_id,
        tui_sig: r.tui_sig,
    })?;
    Ok(client)
}
