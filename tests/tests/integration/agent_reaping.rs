//! Agent processes do not outlive a `kill -9` of the daemon: the program itself dies
//! with it (parent-death signal), and what it left in its process group is killed by
//! the next start (the group is recorded in the database).

use sessiond_tests::{new_session, wait_for, Daemon, Dirs};
use std::path::Path;

/// Whether `pid` still runs (a zombie waiting for its reaper does not).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat[stat.rfind(')').unwrap_or(0) + 2..].chars().next();
            !matches!(state, Some('Z') | Some('X'))
        }
        Err(_) => false,
    }
}

async fn pid_in(path: &Path) -> i32 {
    wait_for("the agent to write its pid", || async {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    })
    .await
}

#[tokio::test]
async fn agent_processes_die_with_the_daemon_and_leftovers_are_reaped_at_start() {
    let dirs = Dirs::new();
    let out = dirs.path().join("pids");
    std::fs::create_dir_all(&out).unwrap();
    let script = format!(
        "sleep 1000 & echo $! > {o}/grandchild.tmp; mv {o}/grandchild.tmp {o}/grandchild; \
         echo $$ > {o}/child.tmp; mv {o}/child.tmp {o}/child; exec sleep 1000",
        o = out.display()
    );
    let config = format!(
        "[agents.hang]\nkind = \"command\"\ncommand = [\"/bin/sh\", \"-c\", {}]\n",
        serde_json::to_string(&script).unwrap()
    );
    std::fs::write(dirs.config_path(), config).unwrap();
    let mut d = Daemon::start_in(dirs).await.expect("start");
    let c = d.tui().await;
    let id = new_session(&c, "hang").await;
    c.prompt_text(&id, "go").await.expect("prompt");
    let child = pid_in(&out.join("child")).await;
    let grandchild = pid_in(&out.join("grandchild")).await;
    assert!(alive(child) && alive(grandchild));
    drop(c);

    d.kill9();
    // The program dies with the daemon.
    wait_for("the agent program to die with the daemon", || async {
        (!alive(child)).then_some(())
    })
    .await;
    // Its background child escaped the parent-death signal...
    assert!(
        alive(grandchild),
        "the grandchild should outlive the signal"
    );

    // ...and is killed by the next start, which found its group in the database.
    let dirs = std::mem::replace(&mut d.dirs, Dirs::new());
    let d = Daemon::start_in(dirs).await.expect("restart");
    wait_for("the leftover to be reaped", || async {
        (!alive(grandchild)).then_some(())
    })
    .await;
    assert!(
        d.log().contains("killed agent processes left behind"),
        "{}",
        d.log()
    );
}
