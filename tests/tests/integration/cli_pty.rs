//! `prompt` on a terminal, through a pseudo-terminal: a request of the agent is
//! asked with numbered options and answered by typing, and Ctrl-C cancels the turn
//! the command started and says so.

use sessiond_tests::{Daemon, WAIT};
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Instant;

const ASKER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/asker.py");

/// A command running on a pseudo-terminal: what it wrote so far, and its keyboard.
struct Pty {
    child: Child,
    master: std::fs::File,
    output: mpsc::Receiver<Vec<u8>>,
    seen: String,
}

impl Pty {
    fn spawn(mut cmd: std::process::Command) -> Pty {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty fills two descriptors that we then own.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty");
        // SAFETY: fresh descriptors from openpty.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
        cmd.stdin(stdio(&slave))
            .stdout(stdio(&slave))
            .stderr(stdio(&slave));
        // SAFETY: setsid and ioctl are async-signal-safe; the terminal on stdin
        // becomes the child's controlling terminal, so Ctrl-C reaches it.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn on the pty");
        drop(slave);
        let master = std::fs::File::from(master);
        let mut reader = master.try_clone().unwrap();
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once the child closed the terminal.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Pty {
            child,
            master,
            output,
            seen: String::new(),
        }
    }

    /// Waits until the terminal shows `needle`.
    fn expect(&mut self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.seen.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => panic!("no {needle:?} on the terminal: {:?}", self.seen),
            }
        }
    }

    fn type_keys(&mut self, keys: &[u8]) {
        self.master.write_all(keys).unwrap();
    }

    /// Waits for the exit; returns the code and everything the terminal showed.
    fn finish(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "still running: {:?}", self.seen);
            if let Ok(bytes) = self
                .output
                .recv_timeout(std::time::Duration::from_millis(20))
            {
                self.seen.push_str(&String::from_utf8_lossy(&bytes));
            }
        };
        while let Ok(bytes) = self
            .output
            // Everything it wrote: the reader ends once the terminal's last user closed it.
            .recv_timeout(WAIT)
        {
            self.seen.push_str(&String::from_utf8_lossy(&bytes));
        }
        (status.code(), self.seen)
    }
}

#[tokio::test]
async fn a_request_is_asked_and_answered_on_the_terminal() {
    let d = Daemon::start_with(&format!(
        "[agents.asker]\nkind = \"command\"\ncommand = [\"python3\", {ASKER:?}]\n"
    ))
    .await;
    let (code, id, err) = sessiond_tests::cli(&d.dirs, &["new", "--agent", "asker"]);
    assert_eq!(code, 0, "{err}");
    let mut cmd = d.dirs.command();
    cmd.args(["prompt", id.trim(), "ask", "1"]);
    let mut pty = Pty::spawn(cmd);
    pty.expect("question 1?");
    pty.expect("2) no");
    pty.expect("choose 1-2");
    pty.type_keys(b"2\r");
    let (code, seen) = pty.finish();
    assert_eq!(code, Some(0), "{seen}");
    // The asker echoes the answer it received.
    assert!(seen.contains("r1=\"no\";"), "{seen}");
}

#[tokio::test]
async fn ctrl_c_cancels_the_turn_and_says_so() {
    let d = Daemon::start_with(
        "[agents.slow]\nkind = \"echo\"\nchunk_chars = 1\nchunk_delay_ms = 20\n",
    )
    .await;
    let (code, id, err) = sessiond_tests::cli(&d.dirs, &["new", "--agent", "slow"]);
    assert_eq!(code, 0, "{err}");
    let id = id.trim().to_owned();
    let mut cmd = d.dirs.command();
    cmd.args(["prompt", &id, &"w".repeat(3000)]);
    let mut pty = Pty::spawn(cmd);
    pty.expect("www");
    pty.type_keys(&[0x03]);
    let (code, seen) = pty.finish();
    assert_eq!(code, Some(7), "{seen}");
    assert!(seen.contains("cancelling turn_"), "{seen}");
    assert!(seen.contains("turn cancelled (client_rpc)"), "{seen}");
    let c = d.client().await;
    let info = c
        .get_session(&sessiond_protocol::SessionId(id))
        .await
        .unwrap();
    assert!(info.turn.is_none());
}

#[tokio::test]
async fn colours_only_on_a_terminal_and_never_with_no_color() {
    let d = Daemon::start().await;
    let (code, _, err) = sessiond_tests::cli(&d.dirs, &["new"]);
    assert_eq!(code, 0, "{err}");
    // Through a pipe: plain text.
    let (_, piped, _) = sessiond_tests::cli(&d.dirs, &["ls"]);
    assert!(
        piped.starts_with("ID") && !piped.contains('\x1b'),
        "{piped:?}"
    );
    // On a terminal: the header in bold.
    let mut cmd = d.dirs.command();
    cmd.arg("ls");
    let (code, seen) = Pty::spawn(cmd).finish();
    assert_eq!(code, Some(0), "{seen}");
    assert!(seen.contains("\x1b[1mID"), "{seen:?}");
    // On a terminal with NO_COLOR: plain again.
    let mut cmd = d.dirs.command();
    cmd.arg("ls").env("NO_COLOR", "1");
    let (code, seen) = Pty::spawn(cmd).finish();
    assert_eq!(code, Some(0), "{seen}");
    assert!(seen.contains("ID") && !seen.contains('\x1b'), "{seen:?}");
}
