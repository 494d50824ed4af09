//! Running the daemon from the command line: client commands start it when nothing
//! answers (one daemon when two race), `start`/`stop` are idempotent, the started
//! daemon is detached and logs to a file, SIGHUP and `reload` reload the
//! configuration (an invalid file is refused and the daemon keeps serving).

use sessiond_tests::{cli, Daemon, Dirs, WAIT};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A tree whose commands may start the daemon; stops what they started when dropped.
struct AutoStart {
    dirs: Dirs,
}

impl AutoStart {
    fn new() -> AutoStart {
        AutoStart { dirs: Dirs::new() }
    }

    fn command(&self) -> Command {
        let mut c = self.dirs.command();
        c.env_remove("SESSIOND_NO_START");
        c
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.command().args(args).output().expect("run sessiond");
        split(out)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dirs.path().join(".local/state/sessiond/sessiond.log"))
            .unwrap_or_default()
    }

    /// The pid in the daemon's socket lock file, if one holds it.
    fn lock_pid(&self) -> Option<i32> {
        let mut p = self.dirs.socket().into_os_string();
        p.push(".lock");
        std::fs::read_to_string(p).ok()?.trim().parse().ok()
    }
}

impl Drop for AutoStart {
    fn drop(&mut self) {
        if let Some(pid) = self.lock_pid() {
            // SAFETY: a daemon this test started; SIGKILL leaves nothing behind to clean.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

fn split(out: Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn alive(pid: i32) -> bool {
    // A zombie (exited, parent not reaped yet) counts as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn status_pid(dirs: &Dirs) -> i32 {
    let (code, out, err) = cli(dirs, &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let st: serde_json::Value = serde_json::from_str(&out).unwrap();
    st["pid"].as_i64().unwrap() as i32
}

#[test]
fn ls_starts_the_daemon_and_two_racing_commands_end_with_one() {
    let t = AutoStart::new();
    // Nothing runs: both commands find no daemon and race to start one.
    let a = t
        .command()
        .arg("ls")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let b = t
        .command()
        .arg("ls")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (ca, _, ea) = split(a.wait_with_output().unwrap());
    let (cb, _, eb) = split(b.wait_with_output().unwrap());
    assert_eq!((ca, cb), (0, 0), "{ea} {eb}");
    let pid = status_pid(&t.dirs);
    assert_eq!(t.lock_pid(), Some(pid));
    // One daemon was started, and it logs to the state directory.
    let log = t.log();
    assert_eq!(log.matches("sessiond serving").count(), 1, "{log}");
    assert!(!log.contains("already serving"), "{log}");
    // Detached: its own session, no controlling terminal.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    assert_eq!(fields[3], pid.to_string(), "session id: {stat}");
    assert_eq!(fields[4], "0", "tty: {stat}");
    // The next command uses it.
    let (code, out, err) = t.run(&["new"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("ses_"));
    assert_eq!(status_pid(&t.dirs), pid);
    let (code, _, err) = t.run(&["stop"]);
    assert_eq!(code, 0, "{err}");
    assert!(!alive(pid));
}

#[test]
fn no_start_keeps_commands_from_starting_a_daemon() {
    let t = AutoStart::new();
    let (code, _, err) = t.run(&["--no-start", "ls"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no daemon answers on"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let out = t
        .command()
        .env("SESSIOND_NO_START", "1")
        .arg("new")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(!t.dirs.socket().exists());
    assert_eq!(t.lock_pid(), None);
}

#[test]
fn start_and_stop_are_idempotent() {
    let t = AutoStart::new();
    let (code, out, err) = t.run(&["start"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let first: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(first["started"], true);
    assert_eq!(
        first["socket"].as_str().unwrap(),
        t.dirs.socket().to_str().unwrap()
    );
    let pid = first["pid"].as_i64().unwrap() as i32;
    let (code, out, _) = t.run(&["start"]);
    assert_eq!(code, 0);
    let second: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(second["started"], false);
    assert_eq!(second["pid"], first["pid"]);

    let (code, _, err) = t.run(&["stop"]);
    assert_eq!(code, 0, "{err}");
    // `stop` returns once the daemon is gone.
    assert!(!alive(pid), "pid {pid} still runs after stop returned");
    assert!(!t.dirs.socket().exists());
    let (code, _, err) = t.run(&["stop"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("not running"), "{err}");
}

#[tokio::test]
async fn stop_with_grace_lets_the_running_turn_finish() {
    let d = Daemon::start_with(
        "[agents.slow]\nkind = \"echo\"\nchunk_chars = 1\nchunk_delay_ms = 20\n",
    )
    .await;
    let (_, id, err) = cli(&d.dirs, &["new", "--agent", "slow"]);
    let id = id.trim().to_owned();
    assert!(id.starts_with("ses_"), "{err}");
    let prompt = d
        .dirs
        .command()
        .args(["prompt", &id, "one two three four five"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let c = d.client().await;
    let sid = sessiond_protocol::SessionId(id.clone());
    sessiond_tests::wait_for("turn to run", || async {
        c.get_session(&sid).await.unwrap().turn.map(|_| ())
    })
    .await;
    drop(c);
    let (code, _, err) = cli(&d.dirs, &["stop", "--grace", "60"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = split(prompt.wait_with_output().unwrap());
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim_end(), "one two three four five");
}

fn write_config(d: &Daemon, text: &str) {
    std::fs::write(d.dirs.config_path(), text).unwrap();
}

fn wait_log(d: &Daemon, needle: &str, count: usize) {
    let deadline = Instant::now() + WAIT;
    while d.log().matches(needle).count() < count {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log: {}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn sighup_reloads_a_valid_file_and_keeps_serving_on_an_invalid_one() {
    let d = Daemon::start_with("[agents.first]\nkind = \"echo\"\n").await;
    let (code, _, err) = cli(&d.dirs, &["new", "--agent", "second"]);
    assert_ne!(code, 0);
    assert!(err.contains("AGENT_UNAVAILABLE"), "{err}");

    write_config(
        &d,
        "[agents.first]\nkind = \"echo\"\n[agents.second]\nkind = \"echo\"\n",
    );
    d.signal(libc::SIGHUP);
    wait_log(&d, "configuration reloaded", 1);
    let (code, _, err) = cli(&d.dirs, &["new", "--agent", "second"]);
    assert_eq!(code, 0, "{err}");

    // An invalid file: refused with its problems logged, the old agents kept.
    write_config(
        &d,
        "max_live_sessions = 0\n[agents.third]\nkind = \"echo\"\n",
    );
    d.signal(libc::SIGHUP);
    wait_log(&d, "configuration refused", 1);
    assert!(d.log().contains("max_live_sessions"), "{}", d.log());
    let (code, _, err) = cli(&d.dirs, &["new", "--agent", "second"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = cli(&d.dirs, &["new", "--agent", "third"]);
    assert_ne!(code, 0);
    assert_eq!(status_pid(&d.dirs), d.pid() as i32);

    // The same through `sessiond reload`.
    let (code, _, err) = cli(&d.dirs, &["reload"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("not reloaded") && err.contains("max_live_sessions"),
        "{err}"
    );
    write_config(&d, "[agents.third]\nkind = \"echo\"\n");
    let (code, out, err) = cli(&d.dirs, &["reload"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("agents"), "{out}");
    let (code, _, err) = cli(&d.dirs, &["new", "--agent", "third"]);
    assert_eq!(code, 0, "{err}");
}

#[tokio::test]
async fn a_broken_config_file_does_not_keep_commands_from_a_running_daemon() {
    let d = Daemon::start().await;
    write_config(&d, "max_live_sessions = \"many\"\n");
    for args in [&["status"][..], &["ls"]] {
        let (code, _, err) = cli(&d.dirs, args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(err.contains("ignoring the configuration file"), "{err}");
    }
    let (code, _, err) = cli(&d.dirs, &["stop"]);
    assert_eq!(code, 0, "{err}");
}

#[tokio::test]
async fn a_reload_changes_the_limits_and_names_what_needs_a_restart() {
    let d = Daemon::start_with("max_live_sessions = 1\n").await;
    let (code, _, err) = cli(&d.dirs, &["new"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(&d.dirs, &["new", "--keep-siblings"]);
    assert_ne!(code, 0);
    assert!(err.contains("SESSION_LIMIT_REACHED"), "{err}");

    write_config(&d, "max_live_sessions = 2\nevent_window = 100\n");
    let (code, out, err) = cli(&d.dirs, &["reload"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("max_live_sessions"), "{out}");
    assert!(
        err.contains("restart") && err.contains("event_window"),
        "{err}"
    );
    let (code, _, err) = cli(&d.dirs, &["new", "--keep-siblings"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(&d.dirs, &["new", "--keep-siblings"]);
    assert!(code != 0 && err.contains("SESSION_LIMIT_REACHED"), "{err}");
}
