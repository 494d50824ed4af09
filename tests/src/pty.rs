//! Runs the real `sessiond attach` in a real pseudo-terminal and reads its screen
//! through a terminal emulator (vt100), so tests type keys and wait for what a person
//! would see. Waits are bounded by [`crate::WAIT`]; nothing sleeps to synchronise.

use crate::{binary, Dirs, WAIT};
use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtySize};
use std::io::{Read, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The emulated screen, updated by a reader thread.
struct Screen {
    parser: Mutex<vt100::Parser>,
    changed: Condvar,
}

/// A `sessiond attach` (or any `sessiond` command) running in a pseudo-terminal.
pub struct Tui {
    child: Box<dyn Child + Send + Sync>,
    writer: Box<dyn Write + Send>,
    _master: Box<dyn MasterPty + Send>,
    screen: Arc<Screen>,
}

impl Tui {
    /// `sessiond ARGS` in a 30 x 120 terminal with the daemon tree's environment.
    pub fn spawn(dirs: &Dirs, args: &[&str]) -> Tui {
        Self::spawn_sized(dirs, args, 30, 120)
    }

    pub fn spawn_sized(dirs: &Dirs, args: &[&str], rows: u16, cols: u16) -> Tui {
        Self::spawn_env(dirs, args, rows, cols, &[])
    }

    /// Like [`Tui::spawn_sized`], with extra environment variables.
    pub fn spawn_env(
        dirs: &Dirs,
        args: &[&str],
        rows: u16,
        cols: u16,
        env: &[(&str, &str)],
    ) -> Tui {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pty");
        let mut cmd = CommandBuilder::new(binary());
        cmd.args(args);
        cmd.env_clear();
        let std_cmd = dirs.command();
        for (k, v) in std_cmd.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        cmd.env("TERM", "xterm-256color");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.cwd(dirs.path());
        let child = pair.slave.spawn_command(cmd).expect("spawn sessiond");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("pty reader");
        let writer = pair.master.take_writer().expect("pty writer");
        let screen = Arc::new(Screen {
            parser: Mutex::new(vt100::Parser::new(rows, cols, 0)),
            changed: Condvar::new(),
        });
        let s = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        s.parser
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .process(&buf[..n]);
                        s.changed.notify_all();
                    }
                }
            }
            s.changed.notify_all();
        });
        Tui {
            child,
            writer,
            _master: pair.master,
            screen,
        }
    }

    /// Types `keys` (raw bytes: "\r" Enter, "\x1b" Esc, "\x04" Ctrl-D, "\x03" Ctrl-C).
    pub fn send(&mut self, keys: &str) {
        self.writer
            .write_all(keys.as_bytes())
            .expect("write to pty");
        self.writer.flush().expect("flush pty");
    }

    /// The screen's rows, trailing blanks trimmed.
    pub fn rows(&self) -> Vec<String> {
        let p = self.screen.parser.lock().unwrap_or_else(|p| p.into_inner());
        let (_, cols) = p.screen().size();
        p.screen()
            .rows(0, cols)
            .map(|r| r.trim_end().to_owned())
            .collect()
    }

    /// Whether the first cell of the first row that starts with `prefix` has a
    /// foreground colour other than the terminal's default.
    pub fn row_is_coloured(&self, prefix: &str) -> Option<bool> {
        let p = self.screen.parser.lock().unwrap_or_else(|p| p.into_inner());
        let (rows, cols) = p.screen().size();
        let row = p
            .screen()
            .rows(0, cols)
            .position(|r| r.starts_with(prefix))? as u16;
        debug_assert!(row < rows);
        let cell = p.screen().cell(row, 0)?;
        Some(cell.fgcolor() != vt100::Color::Default)
    }

    /// The screen as text, one row per line.
    pub fn text(&self) -> String {
        self.rows().join("\n")
    }

    /// Waits until `pred` holds on the screen's rows; fails the test (printing the
    /// screen) after [`WAIT`].
    pub fn wait_until(&self, what: &str, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut guard = self.screen.parser.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let rows: Vec<String> = {
                let (_, cols) = guard.screen().size();
                guard
                    .screen()
                    .rows(0, cols)
                    .map(|r| r.trim_end().to_owned())
                    .collect()
            };
            if pred(&rows) {
                return rows;
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "timed out waiting for {what}; the screen:\n{}",
                rows.join("\n")
            );
            let wait = (deadline - now).min(Duration::from_millis(500));
            guard = self
                .screen
                .changed
                .wait_timeout(guard, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Waits until the screen shows `text` somewhere.
    pub fn wait_for(&self, text: &str) -> Vec<String> {
        self.wait_until(&format!("{text:?}"), |rows| {
            rows.iter().any(|r| r.contains(text))
        })
    }

    /// Waits for the process to exit; its exit code.
    pub fn wait_exit(&mut self) -> u32 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.exit_code();
            }
            assert!(
                Instant::now() < deadline,
                "sessiond attach did not exit; the screen:\n{}",
                self.text()
            );
            // The pty offers no exit notification: poll the child with a short period.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
