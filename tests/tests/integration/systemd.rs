//! systemd integration through `systemd-socket-activate`: the daemon is started on
//! the first connection, serves the socket it was given (same inode, never unlinked
//! or replaced) and reports `READY=1` and `STOPPING=1` on `NOTIFY_SOCKET`.
//!
//! Needs `systemd-socket-activate` (package `systemd`) on PATH; without it the test
//! says that it skips and passes.

use sessiond_tests::{binary, cli, Dirs, WAIT};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Instant;

fn find_on_path(name: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn recv(notify: &UnixDatagram, want: &str) {
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 512];
    loop {
        assert!(Instant::now() < deadline, "no {want} on NOTIFY_SOCKET");
        if let Ok(n) = notify.recv(&mut buf) {
            if String::from_utf8_lossy(&buf[..n])
                .lines()
                .any(|l| l == want)
            {
                return;
            }
        }
    }
}

/// Kills the activator (and so the daemon it became) if the test fails early.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn socket_activation_serves_the_given_socket_and_notifies() {
    let Some(activate) = find_on_path("systemd-socket-activate") else {
        eprintln!("SKIPPED: systemd-socket-activate is not installed; socket activation untested");
        return;
    };
    let dirs = Dirs::new();
    let sock = dirs.socket();
    let dir = sock.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let notify_path = dirs.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(WAIT)).unwrap();
    let env = |k: &str, v: &std::path::Path| format!("--setenv={k}={}", v.display());
    let sa = Command::new(activate)
        .arg("--listen")
        .arg(&sock)
        .arg(env("XDG_DATA_HOME", &dirs.path().join("data")))
        .arg(env("XDG_RUNTIME_DIR", &dirs.path().join("run")))
        .arg(env("NOTIFY_SOCKET", &notify_path))
        .arg(binary())
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut sa = KillOnDrop(sa);
    let deadline = Instant::now() + WAIT;
    while !sock.exists() {
        assert!(
            Instant::now() < deadline,
            "systemd-socket-activate made no socket"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let inode = std::fs::metadata(&sock).unwrap().ino();

    // The first connection starts the daemon (systemd-socket-activate execs it).
    let (code, out, err) = cli(&dirs, &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let st: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(st["pid"].as_u64(), Some(u64::from(sa.0.id())));
    assert_eq!(st["socket"].as_str(), sock.to_str());
    recv(&notify, "READY=1");
    assert_eq!(
        std::fs::metadata(&sock).unwrap().ino(),
        inode,
        "socket replaced"
    );
    let (code, _, err) = cli(&dirs, &["new"]);
    assert_eq!(code, 0, "{err}");

    let (code, _, err) = cli(&dirs, &["stop"]);
    assert_eq!(code, 0, "{err}");
    recv(&notify, "STOPPING=1");
    let status = sa.0.wait().unwrap();
    assert!(status.success(), "{status}");
    // The socket belongs to systemd: still there, the same one.
    assert_eq!(std::fs::metadata(&sock).unwrap().ino(), inode);
}
