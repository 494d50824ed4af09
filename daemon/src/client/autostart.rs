//! Starting the daemon in the background when a client command finds nothing on the
//! socket: `sessiond serve` detached from the terminal (its own session, stdin and
//! stdout closed, cwd `/`), logging to `$XDG_STATE_HOME/sessiond/sessiond.log`.
//!
//! Starters take an exclusive lock next to the socket, so two commands racing to
//! start it end with one daemon: the second finds the first's daemon answering.

use super::cli::exit::{fail, Code};
use super::connect::{config_file, connect_existing};
use sessiond_client::Client;
use sessiond_config::Config;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a starter waits for the new daemon to answer.
const START_WAIT: Duration = Duration::from_secs(30);

/// Where a daemon started in the background logs.
pub fn log_path() -> PathBuf {
    super::profile::state_dir().join("sessiond.log")
}

/// Starts the daemon (unless a concurrent starter already did) and connects.
pub async fn start_and_connect(cfg: &Config) -> anyhow::Result<(Client, bool)> {
    let socket = cfg.socket_path();
    let dir = socket
        .parent()
        .ok_or_else(|| fail(Code::Unreachable, "the socket path has no directory"))?
        .to_path_buf();
    create_private_dir(&dir)?;
    let lock_path = suffixed(&socket, ".start");
    let lock = tokio::task::spawn_blocking(move || lock_exclusive(&lock_path))
        .await
        .map_err(|e| fail(Code::Unreachable, format!("start lock: {e}")))??;
    // Another starter may have finished while this one waited for the lock.
    if let Ok(c) = connect_existing(cfg).await {
        return Ok((c, false));
    }
    let log = log_path();
    let offset = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let mut child = spawn(&socket, &log)?;
    let deadline = Instant::now() + START_WAIT;
    loop {
        if let Ok(c) = connect_existing(cfg).await {
            drop(lock);
            return Ok((c, true));
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Our daemon is gone. If another holds the socket's lock it is starting
            // and will answer; otherwise the start failed.
            if !socket_lock_held(&socket) {
                let tail = log_since(&log, offset);
                return Err(fail(
                    Code::Unreachable,
                    format!(
                        "cannot start sessiond ({status}): {}",
                        if tail.is_empty() {
                            format!("see {}", log.display())
                        } else {
                            tail
                        }
                    ),
                ));
            }
        }
        if Instant::now() > deadline {
            return Err(fail(
                Code::Unreachable,
                format!(
                    "sessiond did not answer on {} within {}s (see {})",
                    socket.display(),
                    START_WAIT.as_secs(),
                    log.display()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn spawn(socket: &Path, log: &Path) -> anyhow::Result<std::process::Child> {
    let exe = std::env::current_exe().map_err(|e| {
        fail(
            Code::Unreachable,
            format!("cannot find the sessiond binary: {e}"),
        )
    })?;
    if let Some(dir) = log.parent() {
        create_private_dir(dir)?;
    }
    let stderr = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)
        .map_err(|e| {
            fail(
                Code::Unreachable,
                format!("cannot open {}: {e}", log.display()),
            )
        })?;
    let mut cmd = Command::new(exe);
    cmd.arg("serve")
        .arg("--socket")
        .arg(socket)
        .arg("--log-file")
        .arg(log);
    if let Some(cfg) = config_file() {
        cmd.arg("--config").arg(cfg);
    }
    if let Some(c) = std::env::var_os("SESSIOND_CONFIG") {
        let c = PathBuf::from(c);
        if c.is_relative() {
            cmd.env("SESSIOND_CONFIG", std::path::absolute(&c).unwrap_or(c));
        }
    }
    cmd.current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    // SAFETY: setsid is async-signal-safe; it detaches the child from our terminal
    // (a new session without a controlling terminal), so closing it sends no SIGHUP.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    cmd.spawn()
        .map_err(|e| fail(Code::Unreachable, format!("cannot start sessiond: {e}")))
}

/// Whether a daemon holds the per-socket lock (`SOCKET.lock`, see the transport).
fn socket_lock_held(socket: &Path) -> bool {
    let Ok(f) = fs::OpenOptions::new()
        .read(true)
        .open(suffixed(socket, ".lock"))
    else {
        return false;
    };
    // SAFETY: flock on a descriptor we own; released when `f` drops.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    rc != 0
}

fn lock_exclusive(path: &Path) -> anyhow::Result<fs::File> {
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            fail(
                Code::Unreachable,
                format!("cannot open {}: {e}", path.display()),
            )
        })?;
    // SAFETY: flock on a descriptor we own; held until the file drops.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(fail(
            Code::Unreachable,
            format!(
                "cannot lock {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            ),
        ));
    }
    Ok(f)
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            fail(
                Code::Unreachable,
                format!("cannot create {}: {e}", dir.display()),
            )
        })
}

fn suffixed(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The last lines the log got since `offset`, on one line.
fn log_since(log: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = fs::File::open(log) {
        let _ = f.seek(SeekFrom::Start(offset));
        let _ = f.take(64 * 1024).read_to_string(&mut text);
    }
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let start = lines.len().saturating_sub(3);
    lines[start..].join(" / ")
}
