//! The command line against a running daemon: status, new, ls, prompt, cancel,
//! kill, config show|check; errors are one line on stderr with a non-zero exit.

use sessiond_tests::{cli, Daemon, Dirs};

#[tokio::test]
async fn client_commands_work_against_a_daemon() {
    let d = Daemon::start_with(
        "[agents.slow]\nkind = \"echo\"\nchunk_chars = 1\nchunk_delay_ms = 20\n",
    )
    .await;
    let (code, out, err) = cli(&d.dirs, &["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("pid {}", d.pid())), "{out}");
    let (code, out, _) = cli(&d.dirs, &["status", "--json"]);
    assert_eq!(code, 0);
    let st: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(st["pid"], d.pid());

    let (code, id, err) = cli(&d.dirs, &["new"]);
    assert_eq!(code, 0, "{err}");
    let id = id.trim().to_owned();
    assert!(id.starts_with("ses_"));
    let (code, out, _) = cli(
        &d.dirs,
        &["new", "--mode", "code", "--agent", "slow", "--json"],
    );
    assert_eq!(code, 0);
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["session"]["mode"], "code");
    let slow_id = created["session"]["session_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (code, out, err) = cli(&d.dirs, &["prompt", &id, "hello", "from", "the", "cli"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim_end(), "hello from the cli");

    let (code, out, _) = cli(&d.dirs, &["ls"]);
    assert_eq!(code, 0);
    // Short ids: the first 12 characters tell these two apart.
    assert!(
        out.contains(&id[..12]) && out.contains(&slow_id[..12]),
        "{out}"
    );
    let (code, out, _) = cli(&d.dirs, &["ls", "--all", "--json"]);
    assert_eq!(code, 0);
    let listed: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(listed.len(), 2);

    let (code, out, _) = cli(&d.dirs, &["cancel", &id]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "nothing to cancel");

    // A long prompt streamed by one CLI process, cancelled by another.
    let streaming = d
        .dirs
        .command()
        .args(["prompt", &slow_id, &"w".repeat(2000)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let c = d.client().await;
    let sid = sessiond_protocol::SessionId(slow_id.clone());
    sessiond_tests::wait_for("turn to run", || async {
        c.get_session(&sid).await.unwrap().turn.map(|_| ())
    })
    .await;
    let (code, out, _) = cli(&d.dirs, &["cancel", &slow_id]);
    assert_eq!(code, 0);
    assert!(out.starts_with("cancelled turn_"), "{out}");
    let out = tokio::task::spawn_blocking(move || streaming.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("turn cancelled (client_rpc)"), "{err}");

    let (code, out, _) = cli(&d.dirs, &["kill", &id]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "killed");
    let (code, _, err) = cli(&d.dirs, &["prompt", &id, "again"]);
    assert_ne!(code, 0);
    assert!(err.contains("SESSION_TERMINATED"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[tokio::test]
async fn client_commands_without_a_daemon_fail_with_one_line() {
    let dirs = Dirs::new();
    let (code, _, err) = cli(&dirs, &["status"]);
    assert_ne!(code, 0);
    assert!(err.contains("no daemon answers on"), "{err}");
    assert_eq!(code, 3, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn config_show_and_check() {
    let dirs = Dirs::new();
    std::fs::write(
        dirs.config_path(),
        "max_live_sessions = 7\n[agents.gpt]\nkind = \"echo\"\n",
    )
    .unwrap();
    let (code, out, err) = cli(&dirs, &["config", "show"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("max_live_sessions = 7"), "{out}");
    let (code, out, _) = cli(&dirs, &["config", "check"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("ok:"));
    std::fs::write(dirs.config_path(), "max_live_sessions = 0\ncolour = 1\n").unwrap();
    let (code, _, err) = cli(&dirs, &["config", "check"]);
    assert_ne!(code, 0);
    // An unknown key and a bad value: both, in one run, each with its line.
    assert!(
        err.contains("config.toml:2: unknown field `colour`"),
        "{err}"
    );
    assert!(err.contains("config.toml:1: max_live_sessions"), "{err}");
    std::fs::write(
        dirs.config_path(),
        "max_live_sessions = 0\nmax_upload_bytes = 0\n",
    )
    .unwrap();
    let (code, _, err) = cli(&dirs, &["config", "check"]);
    assert_ne!(code, 0);
    // Every problem in one run, each with the line of its key.
    assert!(
        err.contains("config.toml:1: max_live_sessions")
            && err.contains("config.toml:2: max_upload_bytes"),
        "{err}"
    );
}
