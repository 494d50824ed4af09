//! Data at rest, through the real binary: the database files are private, a data
//! directory open to others is made private (and the log says so), one owned by
//! another user is refused, and the CLI does not connect through a socket directory
//! another user owns.

use sessiond_tests::{cli, Daemon, Dirs, WAIT};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Stdio;

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().mode() & 0o777
}

/// Only root can give a directory to another user; these tests run as root in CI.
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[tokio::test]
async fn the_database_files_are_created_private() {
    let d = Daemon::start().await;
    // A write, so that the journal files exist.
    let c = d.tui().await;
    sessiond_tests::new_session(&c, "echo").await;
    let data = d.dirs.data_dir();
    assert_eq!(mode(&data), 0o700);
    for f in ["sessiond.db", "sessiond.db-wal", "sessiond.db-shm"] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
}

#[tokio::test]
async fn a_data_directory_open_to_others_is_made_private_and_the_log_says_so() {
    let dirs = Dirs::new();
    let data = dirs.data_dir();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
    let d = Daemon::start_in(dirs).await.expect("start");
    assert_eq!(mode(&data), 0o700);
    assert!(d.log().contains("made private to this user"), "{}", d.log());
}

#[tokio::test]
async fn a_data_directory_of_another_user_is_refused() {
    assert!(is_root(), "this test needs root to chown a directory");
    let dirs = Dirs::new();
    let data = dirs.data_dir();
    std::fs::create_dir_all(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
    let child = dirs
        .command()
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sessiond");
    // Bounded: a daemon that accepts the directory would serve from it forever.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(WAIT) {
        Ok(out) => out.expect("wait for sessiond"),
        Err(_) => {
            // SAFETY: kill(2) on the child this test started.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("served from a data directory owned by another user");
        }
    };
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("owned by uid 65534"), "{err}");
    assert!(!data.join("sessiond.db").exists());
}

#[tokio::test]
async fn the_cli_does_not_connect_through_a_squatted_socket_directory() {
    assert!(is_root(), "this test needs root to chown a directory");
    let d = Daemon::start().await;
    // Another user's directory, holding a socket that answers (the real daemon's,
    // moved there): the CLI must refuse before it talks to it.
    let squat = d.dirs.path().join("squat");
    std::fs::create_dir(&squat).unwrap();
    std::fs::set_permissions(&squat, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sock = squat.join("sessiond.sock");
    std::fs::hard_link(d.socket(), &sock)
        .or_else(|_| std::os::unix::fs::symlink(d.socket(), &sock))
        .unwrap();
    let (code, _, _) = cli(&d.dirs, &["--socket", sock.to_str().unwrap(), "status"]);
    assert_eq!(code, 0, "the socket works while its directory is trusted");
    std::os::unix::fs::chown(&squat, Some(65534), Some(65534)).unwrap();
    assert_eq!(std::fs::metadata(&squat).unwrap().uid(), 65534);
    let (code, _, err) = cli(&d.dirs, &["--socket", sock.to_str().unwrap(), "status"]);
    assert_ne!(code, 0);
    assert!(err.contains("owned by uid 65534"), "{err}");
}
