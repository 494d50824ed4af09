//! The data directory on a small filesystem (a 4 MiB tmpfs) that fills up: writes
//! get a clear error, reads keep working, nothing acknowledged is lost, and once
//! space is freed the daemon writes again by itself, without a restart.
//!
//! Mounting needs root (CAP_SYS_ADMIN). Where it is not allowed the test says so on
//! its output and returns without checking anything.

use sessiond_protocol::params::ListParams;
use sessiond_tests::{new_session, Daemon, Dirs, WAIT};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for the test; unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size: &str) -> Result<Mount, String> {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the filesystem of `dir` with one file; returns its path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let block = vec![0u8; 64 * 1024];
    loop {
        if f.write_all(&block).is_err() {
            break;
        }
    }
    // The last bytes too, down to one.
    let mut n = 4096;
    while n > 0 {
        if f.write_all(&block[..n]).is_err() {
            n /= 2;
        }
    }
    let _ = f.sync_all();
    path
}

#[tokio::test]
async fn a_full_disk_refuses_writes_clearly_keeps_reads_and_recovers_by_itself() {
    let dirs = Dirs::new();
    // XDG_DATA_HOME of the daemon: the data directory lives on the small filesystem.
    let data_home = dirs.path().join("data");
    let _mount = match Mount::tmpfs(&data_home, "4m") {
        Ok(m) => m,
        Err(e) => {
            println!("SKIPPED: cannot mount a tmpfs for the disk-full test ({e}); it needs root");
            return;
        }
    };
    let d = Daemon::start_in(dirs).await.expect("start");
    let c = d.tui().await;
    let before = new_session(&c, "echo").await;
    c.prompt_wait(&before, "written before the disk filled")
        .await
        .expect("turn");

    let filler = fill(&data_home);

    // Writes fail with a clear error, and the daemon keeps answering.
    let mut refused = 0;
    for i in 0..5 {
        let r = tokio::time::timeout(
            WAIT,
            c.new_session(sessiond_protocol::params::NewSessionParams {
                agent: Some("echo".into()),
                keep_siblings: Some(true),
                title: Some(format!("during {i} {}", "x".repeat(4096))),
                ..Default::default()
            }),
        )
        .await
        .expect("session/new answered while the disk is full");
        if let Err(e) = r {
            refused += 1;
            let msg = e.to_string();
            assert!(
                msg.contains("full") || msg.contains("space") || msg.contains("disk"),
                "not a clear error: {msg}"
            );
        }
    }
    assert!(refused > 0, "no write failed on a full disk");
    let up = tokio::time::timeout(
        WAIT,
        c.upload_bytes(&before, "big.bin", None, &vec![7u8; 512 * 1024]),
    )
    .await
    .expect("upload answered");
    assert!(up.is_err(), "an upload succeeded on a full disk");
    // A prompt on a full disk: refused or run, but answered either way.
    let p = tokio::time::timeout(WAIT, c.prompt_text(&before, "y".repeat(64 * 1024)))
        .await
        .expect("a prompt on a full disk is answered");
    let prompt_refused = p.is_err();

    // Reads keep working, and show what was acknowledged.
    let list = c
        .list_sessions(ListParams {
            owner: Some("any".into()),
            ..Default::default()
        })
        .await
        .expect("list");
    assert!(list.sessions.iter().any(|s| s.session_id == before));
    let msgs = c.messages(&before, None, None).await.expect("messages");
    assert_eq!(msgs.messages.len(), 2);

    // Space comes back: writes work again, on the old session and on new ones.
    std::fs::remove_file(&filler).unwrap();
    let after = sessiond_tests::wait_for("writes work again once space is freed", || async {
        c.new_session(sessiond_protocol::params::NewSessionParams {
            agent: Some("echo".into()),
            keep_siblings: Some(true),
            ..Default::default()
        })
        .await
        .ok()
        .map(|r| r.session.session_id)
    })
    .await;
    let v = tokio::time::timeout(WAIT, c.prompt_wait(&before, "after"))
        .await
        .expect("the old session runs turns again")
        .expect("turn");
    assert_eq!(v.stop_reason, sessiond_protocol::StopReason::EndTurn);
    tokio::time::timeout(WAIT, c.prompt_wait(&after, "new"))
        .await
        .expect("the new session runs turns")
        .expect("turn");

    // Nothing acknowledged was lost, across a restart too.
    drop(c);
    let d = d.crash_and_restart().await;
    let c = d.tui().await;
    let expected = if prompt_refused { 4 } else { 6 };
    let total = c.messages(&before, None, None).await.unwrap().total;
    assert!(total == expected || total == 4, "{total} messages");
    assert_eq!(c.messages(&after, None, None).await.unwrap().total, 2);
}
