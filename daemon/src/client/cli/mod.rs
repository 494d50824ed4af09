//! The client verbs of the command line, one file per verb group, and the output
//! helpers they share. Every verb acts as the profile's TUI (see `profile.rs`) and
//! names sessions by id or unique prefix (see `resolve.rs`).

pub mod admin;
pub mod daemon_ctl;
pub mod exit;
pub mod generate;
pub mod output;
pub mod prompt;
pub mod resolve;
pub mod sessions;
pub mod turn;

use super::connect::{connect_as, CLIENT_NAME};
use super::profile::Profile;
use super::{Cli, Command};
use sessiond_client::Client;
use sessiond_config::Config;
use std::process::ExitCode;

/// Runs a client command.
pub async fn run(cfg: &Config, cli: &Cli) -> anyhow::Result<ExitCode> {
    // Verbs that manage the daemon itself connect on their own terms.
    match &cli.command {
        Command::Start => return daemon_ctl::start(cfg).await,
        Command::Stop { grace } => return daemon_ctl::stop(cfg, *grace).await,
        Command::Status { json } => return admin::status(cfg, *json).await,
        _ => {}
    }
    let client = tui(cfg, cli).await?;
    let c = &client;
    match &cli.command {
        Command::Ls { live, json, .. } => sessions::ls(c, *live, *json).await,
        Command::New {
            agent,
            mode,
            cwd,
            title,
            ttl,
            keep_siblings,
            json,
        } => {
            let new = sessions::New {
                keep_siblings: *keep_siblings,
                agent: agent.clone(),
                mode: mode.clone(),
                cwd: cwd.clone(),
                title: title.clone(),
                ttl: *ttl,
            };
            sessions::new(c, new, *json).await
        }
        Command::Prompt {
            session_id,
            text,
            interrupt,
            json,
        } => prompt::run(c, session_id, text, *interrupt, *json).await,
        Command::Cancel { session_id } => turn::cancel(c, session_id).await,
        Command::Respond { session_id, args } => turn::respond(c, session_id, args).await,
        Command::Kill { session_id } => admin::kill(c, session_id).await,
        Command::Log {
            session_id,
            follow,
            json,
        } => sessions::log(c, session_id, *follow, *json).await,
        Command::Close { session_id } => sessions::close(c, session_id).await,
        Command::Delete { session_id } => sessions::delete(c, session_id).await,
        Command::Rename { session_id, title } => sessions::rename(c, session_id, title).await,
        Command::Upload {
            session_id,
            file,
            json,
        } => sessions::upload(c, session_id, file, *json).await,
        Command::Set {
            session_id,
            model,
            provider,
            temperature,
        } => sessions::set(c, session_id, model, provider, temperature).await,
        Command::Stats { json } => admin::stats(c, *json).await,
        Command::Tuis { json } => admin::tuis(c, *json).await,
        Command::Agents { json } => admin::agents(c, *json).await,
        Command::Reload => daemon_ctl::reload(c).await,
        _ => Err(exit::fail(exit::Code::Usage, "not a client command")),
    }
}

/// Connects as the profile's TUI (starting the daemon when allowed).
pub async fn tui(cfg: &Config, cli: &Cli) -> anyhow::Result<Client> {
    let profile = Profile::named(cli.profile.as_deref())?;
    connect_as(cfg, &profile, CLIENT_NAME).await
}
