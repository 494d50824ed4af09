//! systemd integration: socket activation (`LISTEN_FDS`: the daemon serves the
//! socket it was given and neither unlinks nor replaces it) and `Type=notify`
//! (`READY=1` once serving, `STOPPING=1` when a graceful stop begins). Without
//! systemd both are no-ops.

use anyhow::{bail, Context};
use std::fs;
use std::io::{Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// The Unix socket systemd passed (`LISTEN_FDS`, first descriptor), if any.
pub fn activated_listener() -> anyhow::Result<Option<UnixListener>> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Ok(None);
    }
    let listener = fds
        .take_unix_listener(0)
        .context("the socket passed by systemd (LISTEN_FDS) is not a unix stream socket")?;
    // Agent processes inherit LISTEN_PID with the daemon's pid, not theirs: they
    // ignore the variables (changing the environment of a threaded process is not safe).
    Ok(listener)
}

/// The path an activated listener is bound to.
pub fn listener_path(l: &UnixListener) -> Option<PathBuf> {
    l.local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(Path::to_path_buf))
}

/// The one-daemon lock of an activated socket: held for the daemon's life, removed
/// on drop; the socket itself belongs to systemd and is left alone.
pub struct ActivatedLock {
    path: PathBuf,
    _file: fs::File,
}

impl Drop for ActivatedLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Takes `SOCKET.lock` (the same lock a daemon that binds the socket takes).
pub fn claim_lock(socket: &Path) -> anyhow::Result<ActivatedLock> {
    let mut p = socket.as_os_str().to_owned();
    p.push(".lock");
    let path = PathBuf::from(p);
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot open lock file {}", path.display()))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        bail!("another sessiond is already serving {}", socket.display());
    }
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "{}", std::process::id())?;
    Ok(ActivatedLock { path, _file: file })
}

/// Tells systemd the daemon serves (`Type=notify`).
pub fn notify_ready() {
    if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %e, "cannot notify systemd (READY=1)");
    }
}

/// Tells systemd a graceful stop began.
pub fn notify_stopping() {
    if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]) {
        tracing::warn!(error = %e, "cannot notify systemd (STOPPING=1)");
    }
}
