//! Test harness: starts the real `sessiond` binary on temporary XDG directories and
//! gives tests real clients (the SDK over the Unix socket, raw HTTP on the socket).

pub mod acp_support;
pub mod pty;
pub mod raw_ws;

use anyhow::{bail, Context};
use serde_json::Value;
use sessiond_client::{Client, ConnectOptions};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a test waits for a condition before failing.
pub const WAIT: Duration = Duration::from_secs(20);

/// Every kind of id JSON-RPC allows, as JSON text: the numbers jsonrpsee cannot carry
/// (negative, fractional, exponent, 2^64 and above) beside the ones it can. Each must
/// come back in its reply as written (PROTOCOL.md 11.4), over HTTP and WebSocket.
pub const ODD_AND_PLAIN_IDS: [&str; 10] = [
    "-1",
    "-0",
    "1.5",
    "1e3",
    "2E-2",
    "18446744073709551616",
    "123456789012345678901234567890",
    "7",
    "\"s\"",
    "null",
];

/// The `sessiond` binary under test: `$SESSIOND_BIN`, else next to the test executable.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SESSIOND_BIN") {
        return PathBuf::from(p);
    }
    let bin = binaries_dir().join("sessiond");
    assert!(
        bin.exists(),
        "{} not found: build it first (`cargo build -p sessiond` or `make test`)",
        bin.display()
    );
    bin
}

/// Where the workspace's binaries are: beside `$SESSIOND_BIN` when it is set (a build
/// whose intermediate files live elsewhere, `build.build-dir`), else the profile
/// directory above the test executable (`target/<profile>/deps/<test>`).
pub fn binaries_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SESSIOND_BIN")
        .map(PathBuf::from)
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        return dir;
    }
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// A tool a test needs from a package registry, installed once into
/// `target/<name>` (outside the repository, kept between runs): runs
/// `program args... <dir> package` unless `<dir>/<installed>` already exists, and
/// returns the directory. The error says why, for the test to report a skip.
pub fn install_once(
    name: &str,
    installed: &str,
    program: &str,
    args: &[&str],
    package: &str,
) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let target = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .ok_or("no target directory")?;
    let dir = target.join(name);
    if dir.join(installed).exists() {
        return Ok(dir);
    }
    let out = Command::new(program)
        .args(args)
        .arg(&dir)
        .arg(package)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if !out.status.success() || !dir.join(installed).exists() {
        return Err(format!(
            "{program} install of {package} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(dir)
}

/// A directory tree for one daemon: runtime dir, data dir, config.
pub struct Dirs {
    pub root: tempfile::TempDir,
}

impl Dirs {
    pub fn new() -> Dirs {
        // `SESSIOND_TEST_KEEP=1` keeps every test's directory (config, data, the
        // daemon's log) for a look after a failure.
        let root = tempfile::Builder::new()
            .prefix("sessiond-test-")
            .disable_cleanup(std::env::var_os("SESSIOND_TEST_KEEP").is_some())
            .tempdir()
            .expect("tempdir");
        let run = root.path().join("run");
        fs::create_dir_all(&run).unwrap();
        fs::set_permissions(&run, fs::Permissions::from_mode(0o700)).unwrap();
        Dirs { root }
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    pub fn socket(&self) -> PathBuf {
        self.path().join("run/sessiond/sessiond.sock")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.path().join("data/sessiond")
    }

    /// The daemon's SQLite database file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir().join("sessiond.db")
    }

    pub fn config_path(&self) -> PathBuf {
        self.path().join("config.toml")
    }

    pub fn log_path(&self) -> PathBuf {
        self.path().join("daemon.log")
    }

    /// A `sessiond` command with this tree's environment.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(binary());
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("XDG_RUNTIME_DIR", self.path().join("run"))
            .env("XDG_DATA_HOME", self.path().join("data"))
            .env("XDG_CONFIG_HOME", self.path().join("cfg"))
            .env("SESSIOND_LOG", "info")
            // Tests start their daemons themselves; the auto-start tests remove this.
            .env("SESSIOND_NO_START", "1");
        if self.config_path().exists() {
            cmd.env("SESSIOND_CONFIG", self.config_path());
        }
        cmd
    }
}

impl Default for Dirs {
    fn default() -> Self {
        Self::new()
    }
}

/// A running daemon; killed when dropped.
pub struct Daemon {
    pub dirs: Dirs,
    child: Option<Child>,
}

impl Daemon {
    /// Starts a daemon with the built-in defaults.
    pub async fn start() -> Daemon {
        Self::start_with("").await
    }

    /// Starts a daemon with `config` as its TOML configuration.
    pub async fn start_with(config: &str) -> Daemon {
        let dirs = Dirs::new();
        fs::write(dirs.config_path(), config).unwrap();
        Self::start_in(dirs).await.expect("daemon starts")
    }

    /// Starts a daemon on an existing tree (a restart keeps its data).
    pub async fn start_in(dirs: Dirs) -> anyhow::Result<Daemon> {
        Self::start_in_with(dirs, |_| {}).await
    }

    /// Starts a daemon on an existing tree with its command adjusted by `tweak` first
    /// (resource limits, environment).
    pub async fn start_in_with(
        dirs: Dirs,
        tweak: impl FnOnce(&mut Command),
    ) -> anyhow::Result<Daemon> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dirs.log_path())?;
        let mut cmd = dirs.command();
        tweak(&mut cmd);
        let child = cmd
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawn sessiond")?;
        let mut d = Daemon {
            dirs,
            child: Some(child),
        };
        d.wait_ready().await?;
        Ok(d)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("sessiond exited early ({status}): {}", self.log());
            }
            if self
                .http_raw(r#"{"jsonrpc":"2.0","id":0,"method":"daemon/status"}"#)
                .await
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "sessiond did not accept connections in time: {}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.dirs.socket()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dirs.log_path()).unwrap_or_default()
    }

    /// An anonymous SDK client.
    pub async fn client(&self) -> Client {
        Client::connect_unix(self.socket(), ConnectOptions::default())
            .await
            .expect("connect")
    }

    /// An SDK client that initialized as a new TUI.
    pub async fn tui(&self) -> Client {
        let c = self.client().await;
        c.initialize("test-tui", None).await.expect("initialize");
        c
    }

    /// Sends one raw HTTP POST on the Unix socket; returns status code and body.
    pub async fn http_raw(&self, body: &str) -> anyhow::Result<(u16, String)> {
        http_post(&self.socket(), body).await
    }

    /// Sends one JSON-RPC body over raw HTTP and parses the JSON reply.
    pub async fn http(&self, body: &str) -> Value {
        let (status, text) = self.http_raw(body).await.expect("http post");
        assert_eq!(status, 200, "http status for {body}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad json {text:?}: {e}"))
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn sigterm(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait_exit()
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(self.pid() as i32, sig) };
    }

    /// Waits (bounded) for the daemon to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(st) = child.try_wait().expect("wait") {
                self.child = None;
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not exit: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `kill -9` and reap.
    pub fn kill9(&mut self) {
        self.signal(libc::SIGKILL);
        self.wait_exit();
    }

    /// Stops (SIGTERM) and starts again on the same directories.
    pub async fn restart(mut self) -> Daemon {
        if self.child.is_some() {
            let st = self.sigterm();
            assert!(st.success(), "sigterm exit {st}");
        }
        let dirs = self.take_dirs();
        Daemon::start_in(dirs).await.expect("restart")
    }

    /// `kill -9`, then starts again on the same directories.
    pub async fn crash_and_restart(mut self) -> Daemon {
        self.kill9();
        let dirs = self.take_dirs();
        Daemon::start_in(dirs).await.expect("restart after kill -9")
    }

    fn take_dirs(&mut self) -> Dirs {
        std::mem::replace(
            &mut self.dirs,
            Dirs {
                root: tempfile::tempdir().expect("tempdir"),
            },
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One HTTP/1.1 POST to `/` over a Unix socket, `Connection: close`.
pub async fn http_post(socket: &Path, body: &str) -> anyhow::Result<(u16, String)> {
    let mut s = tokio::net::UnixStream::connect(socket).await?;
    let req = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        body
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .context("http response timed out")??;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").context("no http header end")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Every event from seq 0 (replayed), up to and including the first matching `until`.
pub async fn replay_until(
    c: &Client,
    id: &sessiond_protocol::SessionId,
    what: &str,
    until: impl Fn(&sessiond_protocol::EventEnvelope) -> bool,
) -> Vec<sessiond_protocol::EventEnvelope> {
    let mut events = c.subscribe(id, Some(0)).await.expect("subscribe");
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = tokio::time::timeout(left, events.next_event())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}; got {out:?}"))
            .unwrap_or_else(|| panic!("stream ended before {what}"))
            .expect("event");
        let done = until(&ev);
        out.push(ev);
        if done {
            return out;
        }
    }
}

/// Whether `e` is the `turn_complete` of `turn`.
pub fn is_turn_complete(
    e: &sessiond_protocol::EventEnvelope,
    turn: &sessiond_protocol::TurnId,
) -> bool {
    matches!(&e.event, sessiond_protocol::Event::TurnComplete { verdict } if &verdict.turn_id == turn)
}

/// Waits until `f` returns `Some`, polling; fails the test after [`WAIT`].
pub async fn wait_for<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs a `sessiond` CLI command against a daemon's tree; returns (code, stdout, stderr).
pub fn cli(dirs: &Dirs, args: &[&str]) -> (i32, String, String) {
    let out = dirs.command().args(args).output().expect("run sessiond");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Creates a session of `agent` without evicting siblings; returns its id.
pub async fn new_session(c: &Client, agent: &str) -> sessiond_protocol::SessionId {
    c.new_session(sessiond_protocol::params::NewSessionParams {
        agent: Some(agent.into()),
        keep_siblings: Some(true),
        ..Default::default()
    })
    .await
    .expect("session/new")
    .session
    .session_id
}

/// How many sessions are stored (`admin/sessions`, first page).
pub async fn admin_count(c: &Client) -> usize {
    c.admin_sessions(sessiond_protocol::params::ListParams::default())
        .await
        .expect("admin/sessions")
        .sessions
        .len()
}

/// `session/prompt` params for `text`, interrupting the running turn or not.
pub fn prompt_params(
    id: &sessiond_protocol::SessionId,
    text: &str,
    interrupt: bool,
) -> sessiond_protocol::params::PromptParams {
    sessiond_protocol::params::PromptParams {
        session_id: id.clone(),
        text: text.into(),
        attachments: None,
        interrupt: Some(interrupt),
        wait: None,
    }
}

/// Reads one HTTP/1.1 request with a `Content-Length` body from a stream a test
/// server accepted; returns its head and its body, or `None` when the peer closed.
pub async fn read_http_request<S>(sock: &mut S) -> Option<(String, Vec<u8>)>
where
    S: tokio::io::AsyncRead + Unpin,
{
    let mut buf = Vec::new();
    let mut piece = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = sock.read(&mut piece).await.ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&piece[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    })?;
    while buf.len() < head_end + length {
        let n = sock.read(&mut piece).await.ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&piece[..n]);
    }
    Some((head, buf[head_end..head_end + length].to_vec()))
}

/// Serves `methods` on a Unix socket at `path` the way the daemon does (hyper, with
/// the WebSocket upgrade, one tower service per connection) but with nothing of the
/// daemon around it: the benchmarks' comparison servers. Stops with the handle.
pub fn serve_bare_unix(
    path: &Path,
    methods: jsonrpsee::Methods,
) -> jsonrpsee::server::ServerHandle {
    let listener = tokio::net::UnixListener::bind(path).expect("bind the bare server");
    let (stop_handle, server_handle) = jsonrpsee::server::stop_channel();
    tokio::spawn(async move {
        let builder = jsonrpsee::server::Server::builder().to_service_builder();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            let svc = builder.clone().build(methods.clone(), stop_handle.clone());
            let stopped = stop_handle.clone().shutdown();
            tokio::spawn(async move {
                let svc = tower::service_fn(move |req| {
                    let mut svc = svc.clone();
                    async move {
                        tower::Service::call(&mut svc, req)
                            .await
                            .map_err(|e| anyhow::anyhow!("{e}"))
                    }
                });
                let _ = jsonrpsee::server::serve_with_graceful_shutdown(stream, svc, stopped).await;
            });
        }
    });
    server_handle
}
