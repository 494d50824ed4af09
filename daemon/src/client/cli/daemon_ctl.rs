//! Managing the daemon from the command line: `start` (idempotent), `stop` (returns
//! once the daemon is gone), `reload` (the configuration file, through `admin/reload`).

use super::exit::{fail, Code};
use super::output;
use crate::client::connect::{connect_existing, connect_or_start};
use sessiond_client::Client;
use sessiond_config::Config;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// `start`: one JSON line `{pid, socket, started}`, once the daemon answers.
pub async fn start(cfg: &Config) -> anyhow::Result<ExitCode> {
    let (c, started) = connect_or_start(cfg).await?;
    let st = c.status().await?;
    output::json_line(&serde_json::json!({
        "pid": st.pid,
        "socket": st.socket,
        "started": started,
    }))?;
    Ok(ExitCode::SUCCESS)
}

/// `stop`: a graceful stop; a daemon that does not run is already stopped.
pub async fn stop(cfg: &Config, grace: u64) -> anyhow::Result<ExitCode> {
    let c = match connect_existing(cfg).await {
        Ok(c) => c,
        Err(_) => {
            eprintln!("sessiond is not running");
            return Ok(ExitCode::SUCCESS);
        }
    };
    let pid = c.status().await?.pid;
    c.admin_shutdown(Some(grace)).await?;
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(grace) + Duration::from_secs(60);
    while alive(pid) {
        if Instant::now() > deadline {
            return Err(fail(
                Code::Failure,
                format!("sessiond (pid {pid}) is still running"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("stopped sessiond (pid {pid})");
    Ok(ExitCode::SUCCESS)
}

/// Whether a process runs (a zombie waiting for its parent counts as gone).
fn alive(pid: u32) -> bool {
    let Ok(pid_t) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid_t, 0) } != 0 {
        return std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

/// `reload`: the daemon reads its configuration file again; an invalid file is
/// refused with every problem and the running configuration is kept.
pub async fn reload(c: &Client) -> anyhow::Result<ExitCode> {
    let r = c.admin_reload().await?;
    if r.reloaded {
        if r.changed.is_empty() {
            output::line("reloaded; nothing changed");
        } else {
            output::line(&format!("reloaded: {}", r.changed.join(", ")));
        }
        if !r.restart_needed.is_empty() {
            eprintln!(
                "changed but read only at start-up (restart to apply): {}",
                r.restart_needed.join(", ")
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    Err(fail(
        Code::Failure,
        format!(
            "the configuration was not reloaded (the running one is kept): {}",
            r.problems.join("; ")
        ),
    ))
}
