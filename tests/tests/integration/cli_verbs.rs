//! Every verb of the command line through the real binary, sessions named by unique
//! id prefixes; the documented exit codes; prompts from stdin; a closed pipe; the
//! generated completions, man page and OpenRPC document.

use sessiond_tests::{cli, Daemon, Dirs};
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;

const ASKER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/asker.py");

fn ok(d: &Daemon, args: &[&str]) -> String {
    let (code, out, err) = cli(&d.dirs, args);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

fn new_id(d: &Daemon, args: &[&str]) -> String {
    let mut all = vec!["new"];
    all.extend_from_slice(args);
    ok(d, &all).trim().to_owned()
}

/// A prefix of `id` that no other of `others` shares.
fn prefix<'a>(id: &'a str, others: &[&str]) -> &'a str {
    (6..id.len())
        .map(|n| &id[..n])
        .find(|p| others.iter().all(|o| *o == id || !o.starts_with(p)))
        .expect("ids differ")
}

#[tokio::test]
async fn session_verbs_take_prefix_ids() {
    let d = Daemon::start().await;
    let work = d.dirs.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let a = new_id(
        &d,
        &["--title", "first one", "--ttl", "3600", "--mode", "code"],
    );
    // `new` takes the current directory as the session's cwd.
    let out = d
        .dirs
        .command()
        .args(["new", "--json"])
        .current_dir(&work)
        .output()
        .unwrap();
    assert!(out.status.success());
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let b = created["session"]["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        created["session"]["cwd"].as_str().unwrap(),
        work.to_str().unwrap()
    );
    let ids = [a.as_str(), b.as_str()];
    let (pa, pb) = (prefix(&a, &ids), prefix(&b, &ids));

    // ls: a header, aligned columns, every session.
    let out = ok(&d, &["ls"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("TITLE") && lines[0].contains("ACTIVE")
    );
    let col = lines[0].find("AGENT").unwrap();
    assert!(
        lines.iter().skip(1).all(|l| &l[col..col + 4] == "echo"),
        "{out}"
    );
    assert!(
        out.contains("first one") && out.contains("just now"),
        "{out}"
    );
    assert!(lines.iter().skip(1).all(|l| l.contains(" me ")), "{out}");

    // prompt, log, set, upload, close, delete, all by prefix (with and without `ses_`).
    assert_eq!(
        ok(&d, &["prompt", pa, "hello", "there"]).trim_end(),
        "hello there"
    );
    let out = ok(&d, &["log", &pa["ses_".len()..]]);
    assert!(
        out.contains("> hello there") && out.contains("\nhello there"),
        "{out}"
    );
    let out = ok(&d, &["log", pa, "--json"]);
    let roles: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["role"].to_string())
        .collect();
    assert_eq!(roles, ["\"user\"", "\"assistant\""]);

    let out = ok(&d, &["set", pa, "--model", "m1", "--temperature", "0.5"]);
    let o: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (o["model"].as_str(), o["temperature"].as_f64()),
        (Some("m1"), Some(0.5))
    );
    let out = ok(&d, &["set", pa, "--temperature", "none"]);
    let o: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(o["temperature"].is_null() && o["model"] == "m1", "{out}");

    let out = ok(&d, &["rename", pb, "second one"]);
    assert!(out.contains("second one"), "{out}");
    assert!(ok(&d, &["ls"]).contains("second one"));

    let file = d.dirs.path().join("notes.txt");
    std::fs::write(&file, b"some notes").unwrap();
    let out = ok(&d, &["upload", pb, file.to_str().unwrap()]);
    assert!(out.trim().starts_with("sha256:"), "{out}");

    let (code, _, err) = cli(&d.dirs, &["respond", pa, "yes"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("NO_PENDING_REQUEST"), "{err}");

    assert!(ok(&d, &["cancel", pa]).contains("nothing to cancel"));
    assert!(ok(&d, &["close", pa]).starts_with(&format!("closed {a}")));
    let live = ok(&d, &["ls", "--live", "--json"]);
    let live: Vec<serde_json::Value> = serde_json::from_str(&live).unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["session_id"], b.as_str());
    assert!(ok(&d, &["delete", pb]).starts_with(&format!("deleted {b}")));
    assert!(ok(&d, &["kill", pa]).contains("killed"));
    let all: Vec<serde_json::Value> = serde_json::from_str(&ok(&d, &["ls", "--json"])).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["status"], "killed");
}

#[tokio::test]
async fn admin_verbs_print_tables_and_json() {
    let d = Daemon::start_with(
        "[agents.gpt]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9\"\nmodel = \"m\"\n",
    )
    .await;
    new_id(&d, &[]);
    let out = ok(&d, &["stats"]);
    assert!(out.contains("sessions:      1 live, 1 total"), "{out}");
    let st: serde_json::Value = serde_json::from_str(&ok(&d, &["stats", "--json"])).unwrap();
    assert_eq!(st["sessions_total"], 1);
    let out = ok(&d, &["tuis"]);
    assert!(
        out.starts_with("TUI") && out.contains("(this command)"),
        "{out}"
    );
    let tuis: serde_json::Value = serde_json::from_str(&ok(&d, &["tuis", "--json"])).unwrap();
    assert_eq!(tuis["tuis"].as_array().unwrap().len(), 1);
    let out = ok(&d, &["agents"]);
    let echo = out
        .lines()
        .find(|l| l.starts_with("echo"))
        .expect("echo listed");
    assert!(echo.ends_with("yes"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("gpt") && l.contains("openai")),
        "{out}"
    );
    let agents: serde_json::Value = serde_json::from_str(&ok(&d, &["agents", "--json"])).unwrap();
    assert_eq!(agents["agents"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn exit_codes_are_distinct_and_documented() {
    let d = Daemon::start_with(&format!(
        "[agents.broken]\nkind = \"command\"\ncommand = [\"false\"]\n\
         [agents.slow]\nkind = \"echo\"\nchunk_chars = 1\nchunk_delay_ms = 20\n\
         [agents.asker]\nkind = \"command\"\ncommand = [\"python3\", {ASKER:?}]\n"
    ))
    .await;
    let a = new_id(&d, &[]);
    let b = new_id(&d, &["--agent", "broken", "--mode", "code"]);
    // Usage: an unknown flag, an ambiguous prefix (listing the candidates).
    assert_eq!(cli(&d.dirs, &["ls", "--bogus"]).0, 2);
    let (code, _, err) = cli(&d.dirs, &["prompt", "ses_", "x"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("ambiguous") && err.contains(&a) && err.contains(&b),
        "{err}"
    );
    // Not found.
    let (code, _, err) = cli(&d.dirs, &["log", "ses_zzzz"]);
    assert_eq!(code, 4, "{err}");
    // Not owned: another profile is another TUI.
    let (code, _, err) = cli(&d.dirs, &["--profile", "other", "prompt", &a, "hi"]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("SESSION_NOT_OWNED"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Turn failed.
    let (code, _, err) = cli(&d.dirs, &["prompt", &b, "hi"]);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("turn failed"), "{err}");
    // A request without a terminal: the command names the request and `respond`.
    let q = new_id(&d, &["--agent", "asker", "--mode", "code"]);
    let out = d
        .dirs
        .command()
        .args(["prompt", &q, "ask", "1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("r1") && err.contains(&format!("sessiond respond {q} r1")),
        "{err}"
    );
    let (code, out, err) = cli(&d.dirs, &["respond", &q[..12], "r1", "yes"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0 pending"), "{out}");
    // Turn cancelled (here by another command's `cancel`).
    let s = new_id(&d, &["--agent", "slow", "--keep-siblings"]);
    let streaming = d
        .dirs
        .command()
        .args(["prompt", &s, &"w".repeat(2000)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let c = d.client().await;
    let sid = sessiond_protocol::SessionId(s.clone());
    sessiond_tests::wait_for("turn to run", || async {
        c.get_session(&sid).await.unwrap().turn.map(|_| ())
    })
    .await;
    assert!(ok(&d, &["cancel", &s]).starts_with("cancelled"));
    let out = streaming.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(err.contains("turn cancelled (client_rpc)"), "{err}");
}

#[tokio::test]
async fn prompt_reads_stdin_and_prints_json_events() {
    let d = Daemon::start().await;
    let id = new_id(&d, &[]);
    for args in [
        vec!["prompt", id.as_str()],
        vec!["prompt", id.as_str(), "-"],
    ] {
        let mut child = d
            .dirs
            .command()
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"line one\nline two\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim_end(),
            "line one\nline two"
        );
        // The stop reason and usage go to stderr, not into the answer.
        assert!(String::from_utf8_lossy(&out.stderr).contains("end_turn"));
    }
    let out = ok(&d, &["prompt", &id, "--json", "a b"]);
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("one json object a line"))
        .collect();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["event"]["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"agent_message_chunk"), "{types:?}");
    assert_eq!(types.last(), Some(&"turn_complete"));
}

#[tokio::test]
async fn ls_into_a_closed_pipe_ends_quietly() {
    let d = Daemon::start().await;
    for _ in 0..3 {
        new_id(&d, &["--keep-siblings"]);
    }
    // The reading end is closed before the command writes: every write is EPIPE.
    let mut fds = [0; 2];
    // SAFETY: pipe fills two descriptors we then own.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors are fresh and owned here.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(r);
    let out = d
        .dirs
        .command()
        .arg("ls")
        .stdout(Stdio::from(w))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn completions_man_page_and_schema_are_generated() {
    let dirs = Dirs::new();
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = cli(&dirs, &["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains("sessiond"), "{shell}");
        for verb in ["prompt", "respond", "completions"] {
            assert!(out.contains(verb), "{shell} lacks {verb}");
        }
    }
    let (code, out, _) = cli(&dirs, &["man"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(".TH sessiond") && out.contains("prompt"),
        "{out}"
    );
    let (code, out, _) = cli(&dirs, &["schema"]);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(doc["methods"].as_array().unwrap().len() >= 20);
    let (code, out, _) = cli(&dirs, &["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("sessiond "), "{out}");
}

/// `sessiond_subscribers` from `GET /metrics` on the socket.
async fn subscribers(d: &Daemon) -> Option<u64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::UnixStream::connect(d.socket()).await.ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).await.ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("sessiond_subscribers "))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn log_follow_streams_until_the_session_closes() {
    let d = Daemon::start().await;
    let id = new_id(&d, &[]);
    ok(&d, &["prompt", &id, "before"]);
    let follow = d
        .dirs
        .command()
        .args(["log", "--follow", &id[..12]])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The follower has subscribed once the daemon counts one subscriber.
    sessiond_tests::wait_for("the follower to subscribe", || async {
        subscribers(&d).await.filter(|n| *n >= 1).map(|_| ())
    })
    .await;
    ok(&d, &["prompt", &id, "after"]);
    ok(&d, &["close", &id]);
    let out = follow.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.matches("> before").count(), 1, "{text}");
    assert_eq!(text.matches("> after").count(), 1, "{text}");
    assert!(
        text.contains("\nafter") && text.contains("[session closed: closed]"),
        "{text}"
    );
}
