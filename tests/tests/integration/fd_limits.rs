//! The daemon under a low open-file limit (set with setrlimit before it starts): TCP
//! peers that never present a token cannot lock Unix clients out, and running out of
//! file descriptors neither spins the CPU nor floods the log.

use sessiond_tests::{Daemon, Dirs, WAIT};
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

/// The limit the daemon runs with (soft and hard, so it cannot raise it).
const NOFILE: u64 = 256;

async fn low_limit_daemon(config: &str) -> Daemon {
    let dirs = Dirs::new();
    std::fs::write(dirs.config_path(), config).unwrap();
    Daemon::start_in_with(dirs, |cmd| {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: NOFILE as libc::rlim_t,
                    rlim_max: NOFILE as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    })
    .await
    .expect("daemon starts")
}

/// CPU time (user + system, in clock ticks) the process has used so far.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // Fields after the command name (which may hold spaces) start after ") ".
    let rest = &stat[stat.rfind(')').expect("comm end") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn log_len(d: &Daemon) -> u64 {
    std::fs::metadata(d.dirs.log_path())
        .map(|m| m.len())
        .unwrap_or(0)
}

/// How long the quiet period lasts in which CPU and log growth are measured.
const WINDOW: Duration = Duration::from_secs(4);
/// A spinning accept loop burns a whole core (about 100 ticks a second); an idle one
/// next to nothing. The bound is loose so that a loaded machine cannot fail it.
const MAX_TICKS: u64 = 100;
const MAX_LOG_GROWTH: u64 = 32 * 1024;

async fn assert_quiet(d: &Daemon, what: &str) {
    let (t0, l0) = (cpu_ticks(d.pid()), log_len(d));
    let start = Instant::now();
    while start.elapsed() < WINDOW {
        // Not synchronising: measuring over a period of wall time.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (t1, l1) = (cpu_ticks(d.pid()), log_len(d));
    assert!(
        t1 - t0 < MAX_TICKS,
        "{what}: the daemon used {} ticks of CPU in {WINDOW:?}",
        t1 - t0
    );
    assert!(
        l1 - l0 < MAX_LOG_GROWTH,
        "{what}: the log grew by {} bytes in {WINDOW:?}",
        l1 - l0
    );
}

#[tokio::test]
async fn idle_tcp_peers_cannot_lock_unix_clients_out() {
    // Peers that never upgrade are kept for the whole hour the config allows: only
    // the caps on TCP connections, not the timeout, can keep descriptors free.
    let d = low_limit_daemon("[ws]\nlisten = \"127.0.0.1:0\"\nupgrade_timeout_secs = 3600\n").await;
    let addr = d.client().await.status().await.unwrap().ws_listen.unwrap();
    // Twice the daemon's file limit in TCP peers that never send a byte.
    let mut idle = Vec::new();
    for _ in 0..2 * NOFILE {
        if let Ok(s) = tokio::net::TcpStream::connect(&addr).await {
            idle.push(s);
        }
    }
    assert!(idle.len() as u64 > NOFILE, "only {} connected", idle.len());
    // Every one of them reached the daemon's accept loop (or was refused by it).
    sessiond_tests::wait_for("the tcp backlog to drain", || async {
        let status = d.http_raw(r#"{"jsonrpc":"2.0","id":1,"method":"daemon/status"}"#);
        match tokio::time::timeout(WAIT, status).await {
            Ok(Ok((200, body))) if body.contains("\"result\"") => Some(()),
            _ => None,
        }
    })
    .await;
    assert!(open_fds(d.pid()) < NOFILE as usize, "fds near the limit");
    // Still answered, repeatedly, with the peers connected.
    for _ in 0..20 {
        let (status, body) = d
            .http_raw(r#"{"jsonrpc":"2.0","id":2,"method":"daemon/status"}"#)
            .await
            .expect("unix client answered");
        assert_eq!(status, 200, "{body}");
    }
    assert_quiet(&d, "with idle tcp peers").await;
    drop(idle);
}

#[tokio::test]
async fn running_out_of_descriptors_neither_spins_nor_floods_the_log_and_recovers() {
    let d = low_limit_daemon("").await;
    // Idle Unix clients until the daemon has no descriptor left to accept with.
    let mut idle = Vec::new();
    for _ in 0..NOFILE + 64 {
        if let Ok(s) = tokio::net::UnixStream::connect(d.socket()).await {
            idle.push(s);
        }
    }
    sessiond_tests::wait_for("the daemon to reach its file limit", || async {
        (open_fds(d.pid()) + 2 >= NOFILE as usize).then_some(())
    })
    .await;
    assert_quiet(&d, "out of descriptors").await;
    drop(idle);
    // Once the clients are gone it serves again, by itself.
    sessiond_tests::wait_for("a unix client to be answered", || async {
        let r = d.http_raw(r#"{"jsonrpc":"2.0","id":3,"method":"daemon/status"}"#);
        match tokio::time::timeout(Duration::from_secs(5), r).await {
            Ok(Ok((200, _))) => Some(()),
            _ => None,
        }
    })
    .await;
}
