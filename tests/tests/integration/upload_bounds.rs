//! Uploads against the real daemon where the input lies: a path whose size says
//! nothing of how much it holds (`/proc/self/pagemap`), names that carry control
//! characters, a path that is a FIFO.

use sessiond_protocol::error::codes;
use sessiond_tests::{new_session, Daemon, Dirs, WAIT};
use std::os::unix::process::CommandExt;

/// The daemon's address space is capped so that reading a file without bound fails
/// fast (the daemon dies) instead of eating the machine's memory.
const ADDRESS_SPACE: u64 = 4 << 30;

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[tokio::test]
async fn a_path_that_reports_no_size_is_read_up_to_the_cap_only() {
    let dirs = Dirs::new();
    std::fs::write(dirs.config_path(), "max_upload_bytes = 1048576\n").unwrap();
    let d = Daemon::start_in_with(dirs, |cmd| {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: ADDRESS_SPACE as libc::rlim_t,
                    rlim_max: ADDRESS_SPACE as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    })
    .await
    .expect("daemon starts");
    let c = d.tui().await;
    let id = new_session(&c, "echo").await;
    // Size 0 by stat; gigabytes when read (8 bytes per page of the address space).
    let r = tokio::time::timeout(WAIT, c.upload_path(&id, "pagemap", "/proc/self/pagemap"))
        .await
        .expect("the upload is answered");
    let err = r.expect_err("over the cap");
    assert_eq!(err.code(), Some(codes::UPLOAD_TOO_LARGE), "{err}");
    // The daemon is alive and did not read far past the cap.
    c.status().await.expect("still serving");
    let peak = peak_rss_kib(d.pid());
    assert!(peak < 512 * 1024, "peak rss {peak} KiB");
}

#[tokio::test]
async fn upload_names_with_control_characters_are_refused() {
    let d = Daemon::start().await;
    let c = d.tui().await;
    let id = new_session(&c, "echo").await;
    for name in [
        "a\nb",
        "evil]\n[attached file: x",
        "tab\there",
        "cr\r",
        "del\u{7f}",
        "c1\u{85}",
    ] {
        let err = c.upload_bytes(&id, name, None, b"x").await.unwrap_err();
        assert_eq!(err.code(), Some(codes::INVALID_PARAMS), "{name:?}");
    }
    assert!(c.uploads(&id).await.unwrap().uploads.is_empty());
    // An ordinary name with spaces and non-ASCII letters is fine.
    c.upload_bytes(&id, "rapport été.txt", None, b"x")
        .await
        .expect("a plain name");
}

#[tokio::test]
async fn a_fifo_path_is_refused_without_blocking_and_the_daemon_still_stops() {
    let mut d = Daemon::start().await;
    let c = d.tui().await;
    let id = new_session(&c, "echo").await;
    let fifo = d.dirs.path().join("pipe");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let r = tokio::time::timeout(WAIT, c.upload_path(&id, "pipe", fifo.to_str().unwrap()))
        .await
        .expect("the upload is answered");
    assert_eq!(r.unwrap_err().code(), Some(codes::INVALID_PARAMS));
    assert!(d.sigterm().success());
}
