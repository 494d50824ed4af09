//! The client commands: status, ls, new, prompt, cancel, kill. They act as the
//! profile's TUI (see `profile.rs`).

use super::connect::{connect_as, CLIENT_NAME};
use super::profile::Profile;
use super::{Cli, Command};
use anyhow::bail;
use sessiond_client::Client;
use sessiond_config::Config;
use sessiond_protocol::params::{ListParams, NewSessionParams, PromptParams, PromptResult};
use sessiond_protocol::{Event, Mode, SessionId, SessionInfo, StopReason};
use std::io::Write;
use std::process::ExitCode;

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn session_line(s: &SessionInfo) -> String {
    let state = match (&s.turn, s.live) {
        (Some(_), _) => "running",
        (None, true) => "live",
        (None, false) => "-",
    };
    format!(
        "{}  {:<7} {:<4} {:<7} {:<7} {}",
        s.session_id,
        s.status.as_str(),
        s.mode.as_str(),
        state,
        s.agent,
        s.title.as_deref().unwrap_or("")
    )
}

pub async fn run(cfg: &Config, cli: &Cli) -> anyhow::Result<ExitCode> {
    let profile = Profile::named(cli.profile.as_deref())?;
    let client = connect_as(cfg, &profile, CLIENT_NAME).await?;
    match &cli.command {
        Command::Status { json } => {
            let st = client.status().await?;
            if *json {
                print_json(&st)?;
            } else {
                println!(
                    "sessiond {} (pid {}), up {}s",
                    st.server_version, st.pid, st.uptime_secs
                );
                println!("socket:   {}", st.socket);
                println!("data dir: {}", st.data_dir);
                if let Some(ws) = &st.ws_listen {
                    println!("ws:       {ws}");
                }
                println!(
                    "sessions: {} live, {} total",
                    st.sessions_live, st.sessions_total
                );
            }
        }
        Command::Ls { all, json } => {
            // Every owner, like `tmux ls`.
            let params = ListParams {
                owner: Some("any".into()),
                live: if *all { None } else { Some(true) },
                limit: Some(1000),
                ..Default::default()
            };
            let res = client.list_sessions(params).await?;
            if *json {
                print_json(&res.sessions)?;
            } else {
                for s in &res.sessions {
                    println!("{}", session_line(s));
                }
            }
        }
        Command::New { agent, mode, json } => {
            let res = client
                .new_session(NewSessionParams {
                    agent: agent.clone(),
                    mode: mode.as_deref().and_then(Mode::parse),
                    ..Default::default()
                })
                .await?;
            if *json {
                print_json(&res)?;
            } else {
                println!("{}", res.session.session_id);
            }
        }
        Command::Prompt { session_id, text } => {
            return prompt(&client, session_id, text.join(" ")).await
        }
        Command::Cancel { session_id } => {
            let r = client.cancel(&SessionId(session_id.clone())).await?;
            match r.turn_id {
                Some(t) if r.cancelled => println!("cancelled {t}"),
                _ => println!("nothing to cancel"),
            }
        }
        Command::Kill { session_id } => {
            let r = client.admin_kill(&SessionId(session_id.clone())).await?;
            println!("{}", if r.killed { "killed" } else { "already killed" });
        }
        Command::Serve { .. }
        | Command::Config { .. }
        | Command::Attach(_)
        | Command::Acp { .. } => {
            bail!("not a client command")
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Subscribes first, then prompts, so no chunk of the reply is missed.
async fn prompt(client: &Client, session_id: &str, text: String) -> anyhow::Result<ExitCode> {
    let id = SessionId(session_id.to_owned());
    let mut events = client.subscribe(&id, None).await?;
    let accepted = match client
        .prompt(PromptParams {
            session_id: id.clone(),
            text,
            attachments: None,
            interrupt: None,
            wait: None,
        })
        .await?
    {
        PromptResult::Accepted(a) => a,
        PromptResult::Finished(_) => bail!("unexpected verdict without wait"),
    };
    let mut out = std::io::stdout().lock();
    while let Some(ev) = events.next_event().await {
        let env = ev?;
        match env.event {
            Event::AgentMessageChunk { turn_id, text } if turn_id == accepted.turn_id => {
                out.write_all(text.as_bytes())?;
                out.flush()?;
            }
            Event::TurnComplete { verdict } if verdict.turn_id == accepted.turn_id => {
                writeln!(out)?;
                return match verdict.stop_reason {
                    StopReason::EndTurn => Ok(ExitCode::SUCCESS),
                    StopReason::Cancelled => {
                        let cause = verdict
                            .cancel_cause
                            .map(|c| c.as_str())
                            .unwrap_or("unknown");
                        bail!("turn cancelled ({cause})")
                    }
                    StopReason::Failed => {
                        bail!("turn failed: {}", verdict.error.unwrap_or_default())
                    }
                    other => bail!("turn stopped: {}", other.as_str()),
                };
            }
            Event::SessionClosed { reason } => bail!("session closed ({reason:?})"),
            _ => {}
        }
    }
    bail!("the daemon ended the event stream")
}
