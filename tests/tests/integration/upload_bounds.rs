//! Uploads against the real daemon where the input lies: a path whose size says
//! nothing of how much it holds (`/proc/self/pagemap`), names that carry control
//! characters, a path that is a FIFO, a path swapped between a file and a FIFO.

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

/// Swaps the names `a` and `b` in one step (`renameat2(RENAME_EXCHANGE)`).
fn exchange(a: &std::ffi::CStr, b: &std::ffi::CStr) {
    // SAFETY: two valid C strings, relative to no directory descriptor.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    assert_eq!(r, 0, "renameat2: {}", std::io::Error::last_os_error());
}

/// The path flips between a regular file and a FIFO while uploads read it. Each one
/// must be answered (the file's bytes, or "not a regular file"), and the daemon must
/// still stop. An upload that looked at the path and then opened it blocking would
/// sooner or later see the file, open the FIFO and never return; `read_path` opens
/// once, without blocking, and looks at what it opened. Whether a given upload sees
/// the file or the FIFO is up to the race; that every one is answered is not.
#[tokio::test]
async fn a_path_swapped_between_a_file_and_a_fifo_never_blocks_an_upload() {
    let mut d = Daemon::start().await;
    let c = d.tui().await;
    let id = new_session(&c, "echo").await;
    let dir = d.dirs.path().to_path_buf();
    let (target, other) = (dir.join("swapped"), dir.join("other"));
    std::fs::write(&target, b"regular bytes").unwrap();
    let cstr = |p: &std::path::Path| std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    let (target_c, other_c) = (cstr(&target), cstr(&other));
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(other_c.as_ptr(), 0o600) }, 0);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && swaps < 100_000_000 {
                exchange(&target_c, &other_c);
                swaps += 1;
            }
            swaps
        })
    };
    let (mut files, mut refused) = (0, 0);
    for i in 0..200 {
        let upload = c.upload_path(&id, format!("swap{i}"), &target);
        match tokio::time::timeout(WAIT, upload).await {
            Ok(Ok(entry)) => {
                assert_eq!(entry.size_bytes, 13, "upload {i}: {entry:?}");
                files += 1;
            }
            Ok(Err(e)) => {
                assert_eq!(e.code(), Some(codes::INVALID_PARAMS), "upload {i}: {e}");
                refused += 1;
            }
            Err(_) => panic!("upload {i} was never answered ({files} files, {refused} refused)"),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(swaps > 0);
    assert_eq!(files + refused, 200);
    assert!(d.sigterm().success(), "the daemon stops");
}
