//! Preparing the Unix socket path: a private directory, one daemon per socket (an
//! exclusive lock file naming the running pid), stale sockets replaced, 0600 socket.

use super::peer::current_uid;
use anyhow::{bail, Context};
use std::fs;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Holds the per-socket lock for the daemon's lifetime; removes socket and lock on drop.
pub struct SocketGuard {
    socket: PathBuf,
    lock_path: PathBuf,
    _lock: fs::File,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.socket);
        let _ = fs::remove_file(&self.lock_path);
    }
}

/// Creates the socket directory (0700) or checks an existing one: it must be owned
/// by this uid and not accessible by group or others.
pub fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create socket directory {}", dir.display()))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    let meta = fs::metadata(dir).with_context(|| format!("cannot stat {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    if meta.uid() != current_uid() {
        bail!(
            "socket directory {} is owned by uid {}, not by this user (uid {})",
            dir.display(),
            meta.uid(),
            current_uid()
        );
    }
    if meta.mode() & 0o077 != 0 {
        bail!(
            "socket directory {} is accessible by group or others (mode {:o}); it must be 0700",
            dir.display(),
            meta.mode() & 0o777
        );
    }
    Ok(())
}

/// Takes the one-daemon-per-socket lock and clears a stale socket.
pub fn claim(socket: &Path) -> anyhow::Result<SocketGuard> {
    let dir = socket.parent().context("socket path has no directory")?;
    ensure_private_dir(dir)?;
    let lock_path = lock_path_of(socket);
    let mut lock = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        // A symlink planted at the lock path is not followed.
        .custom_flags(libc::O_NOFOLLOW)
        .open(&lock_path)
        .with_context(|| format!("cannot open lock file {}", lock_path.display()))?;
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let mut pid = String::new();
        let _ = lock.read_to_string(&mut pid);
        let pid = pid.trim();
        let pid = if pid.is_empty() { "unknown" } else { pid };
        bail!(
            "another sessiond (pid {pid}) is already serving {}",
            socket.display()
        );
    }
    lock.set_len(0)?;
    lock.rewind()?;
    // The pid is for error messages only (the flock is the lock, and it dies with
    // the process), so it is not fsynced: a stale or empty file after a power loss
    // only makes the message say "unknown".
    write!(lock, "{}", std::process::id())?;
    // We hold the lock, so a socket file left here belongs to a daemon that died.
    if socket.exists() {
        tracing::info!(socket = %socket.display(), "replacing a stale socket");
        fs::remove_file(socket)
            .with_context(|| format!("cannot remove stale socket {}", socket.display()))?;
    }
    Ok(SocketGuard {
        socket: socket.to_path_buf(),
        lock_path,
        _lock: lock,
    })
}

fn lock_path_of(socket: &Path) -> PathBuf {
    let mut s = socket.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// Binds the listener with a 0600 socket (no window where it is wider).
pub fn bind(socket: &Path) -> anyhow::Result<tokio::net::UnixListener> {
    // SAFETY: umask only changes this process's file creation mask.
    let old = unsafe { libc::umask(0o177) };
    let res = tokio::net::UnixListener::bind(socket);
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    let listener = res.with_context(|| format!("cannot bind {}", socket.display()))?;
    fs::set_permissions(socket, fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_an_open_directory() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
        let err = ensure_private_dir(&open).unwrap_err().to_string();
        assert!(err.contains("accessible by group or others"), "{err}");
        let private = dir.path().join("new/nested");
        ensure_private_dir(&private).unwrap();
        assert_eq!(fs::metadata(&private).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn a_symlink_at_the_lock_path_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let sock_dir = dir.path().join("s");
        ensure_private_dir(&sock_dir).unwrap();
        let sock = sock_dir.join("d.sock");
        let victim = dir.path().join("victim");
        fs::write(&victim, b"keep me").unwrap();
        std::os::unix::fs::symlink(&victim, lock_path_of(&sock)).unwrap();
        assert!(claim(&sock).is_err());
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
    }

    #[test]
    fn second_claim_names_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let sock_dir = dir.path().join("s");
        let sock = sock_dir.join("d.sock");
        let _g = claim(&sock).unwrap();
        // flock locks are per open file description, so a second open conflicts.
        let err = claim(&sock)
            .err()
            .expect("second claim refused")
            .to_string();
        assert!(err.contains(&std::process::id().to_string()), "{err}");
    }
}
