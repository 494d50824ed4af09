//! Peer credentials of a Unix socket connection (SO_PEERCRED).

use tokio::net::UnixStream;

/// Who is on the other end of a Unix socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub pid: Option<i32>,
}

impl Peer {
    pub fn of(stream: &UnixStream) -> std::io::Result<Peer> {
        let cred = stream.peer_cred()?;
        Ok(Peer {
            uid: cred.uid(),
            pid: cred.pid(),
        })
    }

    /// Same uid as the daemon, or root.
    pub fn is_allowed(&self) -> bool {
        let me = current_uid();
        self.uid == me || self.uid == 0
    }

    pub fn describe(&self) -> String {
        match self.pid {
            Some(pid) => format!("uid:{} pid:{}", self.uid, pid),
            None => format!("uid:{}", self.uid),
        }
    }
}

/// The daemon's effective uid.
pub fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}
