//! How every client command reaches the daemon: connect to the socket, then
//! `initialize` with the profile's identity so the command acts as that profile's TUI.

use super::profile::Profile;
use anyhow::Context;
use sessiond_client::{Client, ConnectOptions};
use sessiond_config::Config;

/// The client name sent in `initialize`.
pub const CLIENT_NAME: &str = "sessiond-cli";

/// Connects to the daemon's socket (no identity yet).
pub async fn connect_anonymous(cfg: &Config) -> anyhow::Result<Client> {
    let socket = cfg.socket_path();
    Client::connect_unix(&socket, ConnectOptions::default())
        .await
        .with_context(|| {
            format!(
                "cannot connect to {} (is `sessiond serve` running?)",
                socket.display()
            )
        })
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
