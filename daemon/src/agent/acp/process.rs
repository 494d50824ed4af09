//! The ACP agent's process: started in its own process group with a parent-death
//! signal, its stderr tail kept for error messages, the whole group ended on drop.
//! Spawning itself goes through the daemon's shared spawner (`agent/process.rs`).

use crate::agent::command::Tail;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

/// How long to wait for the end of stderr before building an error message.
const STDERR_SETTLE: Duration = Duration::from_millis(1000);

/// What to run.
pub struct Spec<'a> {
    pub program: &'a str,
    pub args: &'a [String],
    pub env: &'a BTreeMap<String, String>,
    pub cwd: Option<&'a str>,
    pub session_id: &'a str,
}

/// A running agent process and its group; the group gets SIGKILL when dropped.
pub struct AgentProcess {
    child: Child,
    pgid: libc::pid_t,
    tail: Arc<Mutex<Tail>>,
    /// The stderr reader; it ends when every holder of the pipe has exited.
    stderr: Option<tokio::task::JoinHandle<()>>,
    /// The group's database record, removed when the process is dropped.
    _record: crate::agent::process::Record,
}

/// The standard streams of a started process.
pub struct Streams {
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
}

/// Starts the program through the daemon's spawner ([`crate::agent::process`]): a
/// new process group (pgid = its pid), SIGKILL as its parent-death signal,
/// `kill_on_drop`, and the group recorded so a later start reaps what a crash left.
pub async fn spawn_in_own_group(spec: &Spec<'_>) -> Result<(AgentProcess, Streams), String> {
    let mut cmd = Command::new(spec.program);
    cmd.args(spec.args)
        .envs(spec.env)
        .env("SESSIOND_SESSION_ID", spec.session_id)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cwd) = spec.cwd {
        cmd.current_dir(cwd);
    }
    let spawned = crate::agent::process::spawn(cmd)
        .await
        .map_err(|e| format!("cannot start the acp agent {:?}: {e}", spec.program))?;
    let (mut child, pgid, record) = (spawned.child, spawned.pgid, spawned.record);
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err("the acp agent's standard streams are not available".to_owned());
    };
    let tail = Arc::new(Mutex::new(Tail::default()));
    let stderr = Some(tokio::spawn(read_stderr(stderr, tail.clone())));
    Ok((
        AgentProcess {
            child,
            pgid,
            tail,
            stderr,
            _record: record,
        },
        Streams { stdin, stdout },
    ))
}

impl AgentProcess {
    fn signal(&self, sig: libc::c_int) {
        // Never signal group 0 (our own) or 1 (everything).
        if self.pgid > 1 {
            // SAFETY: kill(2) has no memory effects; a negative pid names a process group.
            unsafe {
                libc::kill(-self.pgid, sig);
            }
        }
    }

    /// True once the process has exited (it died between turns, say).
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the process to exit and describes how it did.
    pub async fn wait(&mut self) -> String {
        match self.child.wait().await {
            Ok(status) => status.to_string(),
            Err(e) => format!("status unknown: {e}"),
        }
    }

    /// Ends the whole group now and reaps the process (bounded).
    pub async fn kill(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }

    /// The last lines the agent wrote to stderr, as a `; stderr: ...` suffix (empty
    /// when there were none). Waits (bounded) for the process to exit and the stream
    /// to end.
    pub async fn stderr_suffix(&mut self) -> String {
        let _ = tokio::time::timeout(STDERR_SETTLE, self.child.wait()).await;
        if let Some(reader) = self.stderr.as_mut() {
            if tokio::time::timeout(STDERR_SETTLE, reader).await.is_ok() {
                self.stderr = None;
            }
        }
        let text = self.tail.lock().unwrap_or_else(|p| p.into_inner()).render();
        if text.is_empty() {
            String::new()
        } else {
            format!("; stderr: {text}")
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Some(reader) = &self.stderr {
            reader.abort();
        }
        self.signal(libc::SIGKILL);
    }
}

async fn read_stderr(mut stderr: ChildStderr, tail: Arc<Mutex<Tail>>) {
    let mut chunk = vec![0u8; 8192];
    loop {
        match stderr.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => tail
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(&chunk[..n]),
        }
    }
}
