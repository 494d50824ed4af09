//! Daemon and admin verbs: `status`, `stats`, `tuis`, `agents`, `kill`.

use super::output::{self, ago, Table};
use super::resolve::resolve;
use crate::client::connect::connect_existing;
use sessiond_client::Client;
use sessiond_config::Config;
use std::process::ExitCode;

/// `status`: never starts the daemon (exit 3 when none runs).
pub async fn status(cfg: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let c = connect_existing(cfg).await?;
    let st = c.status().await?;
    if json {
        output::json(&st)?;
        return Ok(ExitCode::SUCCESS);
    }
    output::line(&format!(
        "sessiond {} (pid {}), up {}",
        st.server_version,
        st.pid,
        uptime(st.uptime_secs)
    ));
    output::line(&format!("socket:   {}", st.socket));
    output::line(&format!("data dir: {}", st.data_dir));
    if let Some(ws) = &st.ws_listen {
        output::line(&format!("ws:       {ws}"));
    }
    output::line(&format!(
        "sessions: {} live, {} total",
        st.sessions_live, st.sessions_total
    ));
    Ok(ExitCode::SUCCESS)
}

fn uptime(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// `kill`.
pub async fn kill(c: &Client, arg: &str) -> anyhow::Result<ExitCode> {
    let id = resolve(c, arg).await?;
    let r = c.admin_kill(&id).await?;
    output::line(if r.killed { "killed" } else { "already killed" });
    Ok(ExitCode::SUCCESS)
}

/// `stats`.
pub async fn stats(c: &Client, json: bool) -> anyhow::Result<ExitCode> {
    let s = c.admin_stats().await?;
    if json {
        output::json(&s)?;
        return Ok(ExitCode::SUCCESS);
    }
    output::line(&format!(
        "connections:   {} ({} tuis)",
        s.connections, s.tuis
    ));
    output::line(&format!(
        "sessions:      {} live, {} total",
        s.sessions_live, s.sessions_total
    ));
    output::line(&format!(
        "turns:         {} running, {} queued",
        s.turns_running, s.turns_queued
    ));
    let by_agent = s
        .by_agent
        .iter()
        .map(|(a, n)| format!("{a} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    output::line(&format!("live by agent: {}", none_if_empty(by_agent)));
    let cancels = s
        .cancels_by_cause
        .iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    output::line(&format!("cancels:       {}", none_if_empty(cancels)));
    output::line(&format!(
        "memory (rss):  {} MiB",
        s.rss_bytes / (1024 * 1024)
    ));
    Ok(ExitCode::SUCCESS)
}

fn none_if_empty(s: String) -> String {
    if s.is_empty() {
        "none".into()
    } else {
        s
    }
}

/// `tuis`.
pub async fn tuis(c: &Client, json: bool) -> anyhow::Result<ExitCode> {
    let r = c.admin_tuis().await?;
    if json {
        output::json(&r)?;
        return Ok(ExitCode::SUCCESS);
    }
    let me = c.identity().map(|i| i.tui_id);
    let mut t = Table::new(&["TUI", "TRANSPORT", "PEER", "CONNECTED"]);
    for tui in &r.tuis {
        let id = if Some(&tui.tui_id) == me.as_ref() {
            format!("{} (this command)", tui.tui_id)
        } else {
            tui.tui_id.to_string()
        };
        t.row(vec![
            id,
            tui.transport.clone(),
            tui.peer.clone(),
            ago(&tui.connected_at),
        ]);
    }
    t.print();
    Ok(ExitCode::SUCCESS)
}

/// `agents`.
pub async fn agents(c: &Client, json: bool) -> anyhow::Result<ExitCode> {
    let r = c.agents().await?;
    if json {
        output::json(&r)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(&["ALIAS", "KIND", "MODEL", "DEFAULT"]);
    for a in &r.agents {
        t.row(vec![
            a.alias.clone(),
            a.kind.clone(),
            a.model.clone().unwrap_or_else(|| "-".into()),
            if a.default {
                "yes".into()
            } else {
                String::new()
            },
        ]);
    }
    t.print();
    Ok(ExitCode::SUCCESS)
}
