//! `sessiond acp` driven by an independent ACP client: `acpx` from npm, installed on
//! first use into `target/acpx` and kept there. Skipped, with a message, only when it
//! cannot be installed (no npm, or no network).

use sessiond_protocol::params::ListParams;
use sessiond_tests::Daemon;
use std::path::PathBuf;
use std::process::Command;

const PACKAGE: &str = "acpx@0.19.1";

/// The `acpx` executable, installing it when missing.
fn acpx() -> Result<PathBuf, String> {
    let dir = sessiond_tests::install_once(
        "acpx",
        "node_modules/.bin/acpx",
        "npm",
        &["install", "--no-audit", "--no-fund", "--prefix"],
        PACKAGE,
    )?;
    Ok(dir.join("node_modules/.bin/acpx"))
}

#[tokio::test]
async fn acpx_creates_and_prompts_a_sessiond_session() {
    let acpx = match acpx() {
        Ok(bin) => bin,
        Err(why) => {
            eprintln!("skipped: the acpx client cannot be installed: {why}");
            return;
        }
    };
    let d = Daemon::start().await;
    let project = d.dirs.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    // acpx runs `sessiond acp` with its own environment: give it the daemon tree's.
    let template = d.dirs.command();
    let mut cmd = Command::new(&acpx);
    cmd.env_clear();
    for (k, v) in template.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let agent = format!("{} acp", sessiond_tests::binary().display());
    let out = tokio::task::spawn_blocking(move || {
        cmd.current_dir(&project)
            .args(["--agent", &agent, "--format", "json", "--approve-all"])
            .args(["--timeout", "60", "exec", "hello from acpx"])
            .output()
    })
    .await
    .unwrap()
    .expect("run acpx");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "acpx failed ({}): {stdout} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(r#""sessionUpdate":"agent_message_chunk","content":{"type":"text","text":"hello from acpx"}"#),
        "{stdout}"
    );
    assert!(stdout.contains(r#""stopReason":"end_turn""#), "{stdout}");

    // The session lives on in the daemon, with the prompt and the answer.
    let c = d.client().await;
    let listed = c
        .admin_sessions(ListParams::default())
        .await
        .expect("admin/sessions");
    let s = listed
        .sessions
        .iter()
        .find(|s| s.cwd.as_deref().is_some_and(|c| c.ends_with("project")))
        .unwrap_or_else(|| panic!("the acpx session: {listed:?}"));
    assert_eq!(s.message_count, 2);
    assert_eq!(s.title.as_deref(), Some("hello from acpx"));
}
