//! Before the SDK talks to a Unix socket it checks that the daemon there is this
//! user's: the socket's directory must be owned by this user (or root) and writable
//! by no one else, so that no other user can have put the socket there (a
//! `/tmp/sessiond-$UID` squatted by another user is refused before connecting); and
//! the process on the other end must run as this user or root (SO_PEERCRED).

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// This process's effective uid.
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn refused(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, msg)
}

/// Checks the directory that holds `socket`.
pub fn check_socket_dir(socket: &Path) -> io::Result<()> {
    let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    let meta = std::fs::metadata(dir)?;
    if meta.uid() != euid() && meta.uid() != 0 {
        return Err(refused(format!(
            "socket directory {} is owned by uid {}, not by this user (uid {}); not connecting",
            dir.display(),
            meta.uid(),
            euid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(refused(format!(
            "socket directory {} is writable by other users (mode {:o}); not connecting",
            dir.display(),
            meta.mode() & 0o777
        )));
    }
    Ok(())
}

/// Checks who serves the connected socket.
pub fn check_peer(stream: &tokio::net::UnixStream) -> io::Result<()> {
    let uid = stream.peer_cred()?.uid();
    if uid != euid() && uid != 0 {
        return Err(refused(format!(
            "the process behind the socket runs as uid {uid}, not as this user; not connecting"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_a_private_directory_of_this_user_is_trusted() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("s");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        check_socket_dir(&dir.join("x.sock")).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        check_socket_dir(&dir.join("x.sock")).unwrap();
        for mode in [0o775, 0o757, 0o1777] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = check_socket_dir(&dir.join("x.sock")).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
            assert!(e.to_string().contains("writable by other users"), "{e}");
        }
        // Only root can give a directory to another user.
        if euid() == 0 {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
            std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
            let e = check_socket_dir(&dir.join("x.sock")).unwrap_err();
            assert!(e.to_string().contains("owned by uid 65534"), "{e}");
        }
    }
}
