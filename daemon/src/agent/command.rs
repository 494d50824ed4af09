//! The `command` agent: runs a program once per turn and speaks the JSON line
//! protocol of PROTOCOL.md section 9 over its stdin and stdout. The program runs in
//! its own process group; cancel is SIGTERM to the group, then SIGKILL after the
//! grace period, and no process of the turn outlives the turn.

use super::sse::excerpt;
use super::{Agent, HistoryMessage, TurnInput, TurnIo};
use crate::agent::emit::Emitter;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sessiond_protocol::{Overrides, RequestId, RequestKind, SessionId, TurnId, UploadEntry, Usage};
use std::collections::{BTreeMap, VecDeque};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};

/// A line the program writes longer than this fails the turn.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;
/// How much of the program's stderr is kept for error messages.
const STDERR_TAIL_BYTES: usize = 4096;
const STDERR_TAIL_LINES: usize = 20;
/// After the program exits, how long its remaining output may take to arrive.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);
/// How long to wait for the last of stderr before building an error message.
const STDERR_SETTLE: Duration = Duration::from_millis(500);
/// Bound on reaping a process that was sent SIGKILL.
const REAP_AFTER_KILL: Duration = Duration::from_secs(5);

/// Runs `command = [program, args...]` per turn.
pub struct CommandAgent {
    settings: Arc<Settings>,
}

struct Settings {
    program: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    grace: Duration,
}

impl CommandAgent {
    /// Checks the configuration; the program itself is looked up at each turn.
    pub fn new(cfg: &sessiond_config::CommandAgent) -> Result<CommandAgent, String> {
        let Some((program, args)) = cfg.command.split_first() else {
            return Err("command must name a program".to_owned());
        };
        if program.trim().is_empty() {
            return Err("command must name a program".to_owned());
        }
        if cfg.command.iter().any(|a| a.contains('\0')) {
            return Err("command must not contain NUL characters".to_owned());
        }
        if cfg
            .env
            .iter()
            .any(|(k, v)| k.is_empty() || k.contains(['=', '\0']) || v.contains('\0'))
        {
            return Err("env has an invalid variable name or value".to_owned());
        }
        Ok(CommandAgent {
            settings: Arc::new(Settings {
                program: program.clone(),
                args: args.to_vec(),
                env: cfg.env.clone(),
                grace: Duration::from_millis(cfg.cancel_grace_ms),
            }),
        })
    }
}

impl Agent for CommandAgent {
    fn kind(&self) -> &'static str {
        "command"
    }

    fn run(&self, input: TurnInput, io: TurnIo) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(run_turn(self.settings.clone(), input, io))
    }
}

/// The first line written to the program's stdin.
#[derive(Serialize)]
struct TurnLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    session_id: &'a SessionId,
    turn_id: &'a TurnId,
    text: &'a str,
    attachments: &'a [UploadEntry],
    history: &'a [HistoryMessage],
    overrides: &'a Overrides,
}

/// An answer to one of the program's requests.
#[derive(Serialize)]
struct ResponseLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    request_id: &'a RequestId,
    response: &'a serde_json::Value,
}

/// One line the program writes to stdout.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum AgentLine {
    Chunk {
        text: String,
    },
    Thought {
        text: String,
    },
    ToolCall {
        tool_call_id: String,
        name: String,
        #[serde(default)]
        input: serde_json::Value,
    },
    ToolResult {
        tool_call_id: String,
        #[serde(default)]
        output: serde_json::Value,
        #[serde(default)]
        is_error: bool,
    },
    Request {
        request_id: String,
        kind: RequestKind,
        #[serde(default)]
        prompt: String,
        #[serde(default)]
        options: serde_json::Value,
    },
    Usage {
        #[serde(default)]
        input_tokens: u64,
        #[serde(default)]
        output_tokens: u64,
    },
    Done,
    Error {
        #[serde(default)]
        message: String,
    },
}

/// Why the reading loop stopped.
enum Ending {
    Cancelled,
    /// `done` (Ok) or `error` (Err) was read.
    Reported(Result<(), String>),
    /// A line that breaks the protocol, or output that cannot be read.
    Invalid(String),
    /// stdout ended (or the program exited) without `done`.
    Eof,
}

/// The program's process group; anything left in it is killed when this is dropped.
struct Group {
    pgid: libc::pid_t,
    live: bool,
    /// Dropped after [`Group`]'s own drop killed what was left of the group.
    _record: super::process::Record,
}

impl Group {
    fn signal(&self, sig: libc::c_int) {
        // Never signal group 0 (our own) or 1 (everything).
        if self.live && self.pgid > 1 {
            // SAFETY: kill(2) has no memory effects; a negative pid names a process group.
            unsafe {
                libc::kill(-self.pgid, sig);
            }
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
    }
}

/// Aborts the turn's helper tasks when the turn ends, however it ends.
struct Tasks {
    stdin: JoinHandle<()>,
    stdout: JoinHandle<()>,
    stderr: JoinHandle<()>,
}

impl Drop for Tasks {
    fn drop(&mut self) {
        self.stdin.abort();
        self.stdout.abort();
        self.stderr.abort();
    }
}

async fn run_turn(s: Arc<Settings>, input: TurnInput, io: TurnIo) -> Result<(), String> {
    let TurnIo {
        emit,
        mut responses,
        cancel,
    } = io;
    if cancel.is_cancelled() {
        return Ok(());
    }
    let mut cmd = Command::new(&s.program);
    cmd.args(&s.args)
        .envs(&s.env)
        .env("SESSIOND_SESSION_ID", input.session_id.as_str())
        .env("SESSIOND_TURN_ID", input.turn_id.as_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cwd) = &input.cwd {
        cmd.current_dir(cwd);
    }
    let super::process::Spawned {
        mut child,
        pgid,
        record,
    } = super::process::spawn(cmd)
        .await
        .map_err(|e| format!("cannot start the agent program {:?}: {e}", s.program))?;
    let mut group = Group {
        pgid,
        live: true,
        _record: record,
    };
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err("the agent program's standard streams are not available".to_owned());
    };

    let tail = Arc::new(Mutex::new(Tail::default()));
    let (line_tx, mut lines) = mpsc::channel(64);
    let (write_tx, write_rx) = mpsc::unbounded_channel();
    let turn_line = TurnLine {
        kind: "turn",
        session_id: &input.session_id,
        turn_id: &input.turn_id,
        text: &input.text,
        attachments: &input.attachments,
        history: &input.history,
        overrides: &input.overrides,
    };
    let _ = write_tx.send(json_line(&turn_line)?);
    let mut tasks = Tasks {
        stdin: tokio::spawn(write_stdin(stdin, write_rx)),
        stdout: tokio::spawn(read_stdout(stdout, line_tx)),
        stderr: tokio::spawn(read_stderr(stderr, tail.clone())),
    };

    let mut exited = false;
    let mut drain_until: Option<Instant> = None;
    let mut responses_open = true;
    let ending = loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break Ending::Cancelled,
            line = lines.recv() => match line {
                None => break Ending::Eof,
                Some(Err(msg)) => break Ending::Invalid(msg),
                Some(Ok(bytes)) => {
                    if let Some(ending) = handle_line(&emit, &bytes) {
                        break ending;
                    }
                }
            },
            _ = child.wait(), if !exited => {
                // The turn ends with its program: whatever it left behind goes now,
                // which also lets stdout reach its end.
                exited = true;
                group.signal(libc::SIGKILL);
                drain_until = Some(Instant::now() + DRAIN_AFTER_EXIT);
            },
            _ = sleep_until(drain_until), if drain_until.is_some() => break Ending::Eof,
            r = responses.recv(), if responses_open => match r {
                Some(r) => {
                    let line = ResponseLine { kind: "response", request_id: &r.request_id, response: &r.response };
                    let _ = write_tx.send(json_line(&line)?);
                }
                None => responses_open = false,
            },
        }
    };

    // The turn is over: the program sees the end of its stdin.
    tasks.stdin.abort();
    drop(write_tx);
    let status = match &ending {
        Ending::Cancelled | Ending::Invalid(_) => stop(&mut child, &group, s.grace, true).await,
        Ending::Reported(_) | Ending::Eof => stop(&mut child, &group, s.grace, false).await,
    };
    // Whatever is left of the group (background children) goes with the turn.
    group.signal(libc::SIGKILL);
    group.live = false;

    match ending {
        Ending::Cancelled => Ok(()),
        Ending::Reported(r) => r,
        Ending::Invalid(msg) => Err(format!("{msg}{}", stderr_suffix(&mut tasks, &tail).await)),
        Ending::Eof => Err(format!(
            "the agent program exited without finishing the turn ({status}){}",
            stderr_suffix(&mut tasks, &tail).await
        )),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn json_line<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    let mut line = serde_json::to_vec(value)
        .map_err(|e| format!("cannot encode a line for the agent program: {e}"))?;
    line.push(b'\n');
    Ok(line)
}

/// Publishes one line of the program's output; `Some` ends the reading loop.
fn handle_line(emit: &Emitter, bytes: &[u8]) -> Option<Ending> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let line = match serde_json::from_slice::<AgentLine>(bytes) {
        Ok(line) => line,
        Err(e) => {
            return Some(Ending::Invalid(format!(
                "agent wrote an invalid line: {} ({e})",
                excerpt(&String::from_utf8_lossy(bytes), 200)
            )))
        }
    };
    match line {
        AgentLine::Chunk { text } => emit.chunk(text),
        AgentLine::Thought { text } => {
            if !text.is_empty() {
                emit.thought(text);
            }
        }
        AgentLine::ToolCall {
            tool_call_id,
            name,
            input,
        } => emit.tool_call(tool_call_id, name, input),
        AgentLine::ToolResult {
            tool_call_id,
            output,
            is_error,
        } => emit.tool_result(tool_call_id, output, is_error),
        AgentLine::Request {
            request_id,
            kind,
            prompt,
            options,
        } => emit.request(RequestId::from(request_id), kind, prompt, options),
        AgentLine::Usage {
            input_tokens,
            output_tokens,
        } => emit.usage(Usage {
            input_tokens,
            output_tokens,
        }),
        AgentLine::Done => return Some(Ending::Reported(Ok(()))),
        AgentLine::Error { message } => {
            let message = message.trim();
            let message = if message.is_empty() {
                "the agent program reported an error".to_owned()
            } else {
                message.to_owned()
            };
            return Some(Ending::Reported(Err(message)));
        }
    }
    None
}

/// Ends the program: with `term` (cancel, protocol breach) SIGTERM goes to the
/// group first; without (the program finished, its stdin is closed) it may exit on
/// its own. Either way SIGKILL follows after the grace period.
async fn stop(child: &mut Child, group: &Group, grace: Duration, term: bool) -> String {
    if term {
        group.signal(libc::SIGTERM);
    }
    if let Ok(status) = timeout(grace, child.wait()).await {
        return describe_status(status);
    }
    group.signal(libc::SIGKILL);
    describe_status(
        timeout(REAP_AFTER_KILL, child.wait())
            .await
            .unwrap_or(Err(timed_out())),
    )
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "it did not exit")
}

fn describe_status(status: std::io::Result<std::process::ExitStatus>) -> String {
    match status {
        Ok(status) => status.to_string(),
        Err(e) => format!("status unknown: {e}"),
    }
}

/// The last lines of stderr, for an error message (empty when there were none).
async fn stderr_suffix(tasks: &mut Tasks, tail: &Mutex<Tail>) -> String {
    // The group is gone, so stderr ends at once unless something escaped the group.
    let _ = timeout(STDERR_SETTLE, &mut tasks.stderr).await;
    let text = tail.lock().unwrap_or_else(|p| p.into_inner()).render();
    if text.is_empty() {
        String::new()
    } else {
        format!("; stderr: {text}")
    }
}

async fn write_stdin(mut stdin: ChildStdin, mut rx: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(line) = rx.recv().await {
        if stdin.write_all(&line).await.is_err() || stdin.flush().await.is_err() {
            return;
        }
    }
}

async fn read_stdout(stdout: ChildStdout, tx: mpsc::Sender<Result<Vec<u8>, String>>) {
    let mut reader = BufReader::new(stdout);
    let mut buf = Vec::new();
    loop {
        match read_line_bounded(&mut reader, &mut buf, MAX_LINE_BYTES).await {
            Ok(Some(line)) => {
                if tx.send(Ok(line)).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    }
}

/// Reads one line (without its `\n`, and without a `\r` before it) of at most `max`
/// bytes; `None` at the end of the stream. A last line without `\n` still counts.
pub async fn read_line_bounded<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<Option<Vec<u8>>, String> {
    loop {
        let available = reader
            .fill_buf()
            .await
            .map_err(|e| format!("cannot read the agent program's output: {e}"))?;
        if available.is_empty() {
            return Ok((!buf.is_empty()).then(|| std::mem::take(buf)));
        }
        let (take, found) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (i, true),
            None => (available.len(), false),
        };
        if buf.len() + take > max {
            return Err(format!("agent wrote a line longer than {max} bytes"));
        }
        buf.extend_from_slice(&available[..take]);
        reader.consume(if found { take + 1 } else { take });
        if found {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(Some(std::mem::take(buf)));
        }
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

/// The last [`STDERR_TAIL_BYTES`] of a stream.
#[derive(Default)]
pub struct Tail {
    bytes: VecDeque<u8>,
    cut: bool,
}

impl Tail {
    pub fn push(&mut self, data: &[u8]) {
        let data = if data.len() > STDERR_TAIL_BYTES {
            self.cut = true;
            &data[data.len() - STDERR_TAIL_BYTES..]
        } else {
            data
        };
        self.bytes.extend(data);
        while self.bytes.len() > STDERR_TAIL_BYTES {
            self.bytes.pop_front();
            self.cut = true;
        }
    }

    /// The last [`STDERR_TAIL_LINES`] complete lines, trimmed.
    pub fn render(&self) -> String {
        let bytes: Vec<u8> = self.bytes.iter().copied().collect();
        let text = String::from_utf8_lossy(&bytes);
        let mut lines: Vec<&str> = text.lines().collect();
        if self.cut && lines.len() > 1 {
            // The first line was cut by the bound.
            lines.remove(0);
        }
        while lines.last().is_some_and(|l| l.trim().is_empty()) {
            lines.pop();
        }
        let start = lines.len().saturating_sub(STDERR_TAIL_LINES);
        lines[start..].join("\n").trim().to_owned()
    }
}
