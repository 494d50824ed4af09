//! Starting agent programs so that none outlives the daemon: each runs in its own
//! process group with a parent-death signal (SIGKILL when the daemon dies, even by
//! `kill -9`), and each group is recorded in the database until it is gone, so that
//! the next start kills whatever a crash left behind (grandchildren escape the
//! parent-death signal, not the record). Every process-spawning agent goes through
//! [`spawn`].
//!
//! The parent-death signal fires when the *thread* that forked the child ends, not
//! the process; so every child is forked by one long-lived thread that lives as long
//! as the daemon, with its own small runtime that drives the children's pipes and exits.

use rusqlite::{params, Connection};
use std::io;
use std::path::Path;
use std::sync::{mpsc as std_mpsc, Mutex, OnceLock};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

/// The environment variable that marks every process of a group (inherited by its
/// children): the start-up sweep kills only processes that carry the recorded tag.
pub const TAG_ENV: &str = "SESSIOND_AGENT_TAG";

/// A started program; its group stays recorded until this is dropped (drop it only
/// after the group was killed).
pub struct Spawned {
    pub child: Child,
    /// The program's process group (its pid).
    pub pgid: libc::pid_t,
    pub record: Record,
}

/// The database record of one process group; removed on drop.
pub struct Record {
    pgid: libc::pid_t,
    recorded: bool,
}

impl Drop for Record {
    fn drop(&mut self) {
        if self.recorded {
            registry_send(Op::Forget(self.pgid));
        }
    }
}

/// Starts `cmd` as the leader of a new process group, killed with the daemon.
pub async fn spawn(mut cmd: Command) -> io::Result<Spawned> {
    let tag = crate::util::random_id("", 16);
    cmd.env(TAG_ENV, &tag).process_group(0).kill_on_drop(true);
    // SAFETY: getpid has no preconditions.
    let daemon = unsafe { libc::getpid() };
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
    // functions (prctl, getppid); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The daemon died between fork and prctl: do not run orphaned.
            if libc::getppid() != daemon {
                return Err(io::Error::other("the daemon is gone"));
            }
            Ok(())
        });
    }
    let (reply, rx) = oneshot::channel();
    spawner()
        .send(Job { cmd, reply })
        .map_err(|_| io::Error::other("the process spawner is gone"))?;
    let child = rx
        .await
        .map_err(|_| io::Error::other("the process spawner is gone"))??;
    let Some(pgid) = child.id().and_then(|p| libc::pid_t::try_from(p).ok()) else {
        return Err(io::Error::other("the program has no process id"));
    };
    let recorded = record(pgid, tag).await;
    Ok(Spawned {
        child,
        pgid,
        record: Record { pgid, recorded },
    })
}

struct Job {
    cmd: Command,
    reply: oneshot::Sender<io::Result<Child>>,
}

/// The long-lived thread that forks every agent program.
fn spawner() -> &'static mpsc::UnboundedSender<Job> {
    static SPAWNER: OnceLock<mpsc::UnboundedSender<Job>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let started = std::thread::Builder::new()
            .name("sessiond-spawner".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start the process spawner");
                        return;
                    }
                };
                rt.block_on(async move {
                    while let Some(mut job) = rx.recv().await {
                        let _ = job.reply.send(job.cmd.spawn());
                    }
                });
            });
        if let Err(e) = started {
            tracing::error!(error = %e, "cannot start the process spawner thread");
        }
        tx
    })
}

enum Op {
    Open(std::path::PathBuf, std_mpsc::Sender<io::Result<usize>>),
    Record(libc::pid_t, String, oneshot::Sender<bool>),
    Forget(libc::pid_t),
}

/// The thread that owns the registry's database connection (writes are short and
/// rare: one per agent program started or ended).
fn registry() -> &'static Mutex<std_mpsc::Sender<Op>> {
    static REGISTRY: OnceLock<Mutex<std_mpsc::Sender<Op>>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let (tx, rx) = std_mpsc::channel::<Op>();
        let _ = std::thread::Builder::new()
            .name("sessiond-procs".into())
            .spawn(move || registry_loop(rx));
        Mutex::new(tx)
    })
}

fn registry_send(op: Op) {
    let tx = registry().lock().unwrap_or_else(|p| p.into_inner());
    let _ = tx.send(op);
}

fn registry_loop(rx: std_mpsc::Receiver<Op>) {
    let mut conn: Option<Connection> = None;
    for op in rx {
        match op {
            Op::Open(path, done) => {
                let r = open_and_reap(&path);
                let _ = done.send(r.as_ref().map(|(_, n)| *n).map_err(clone_err));
                conn = r.ok().map(|(c, _)| c);
            }
            Op::Record(pgid, tag, done) => {
                let ok = conn.as_ref().is_some_and(|c| {
                    c.execute(
                        "INSERT OR REPLACE INTO agent_processes (pgid, tag, started_at) \
                         VALUES (?1, ?2, ?3)",
                        params![pgid, tag, crate::util::now_rfc3339()],
                    )
                    .map_err(|e| tracing::warn!(error = %e, pgid, "cannot record an agent process"))
                    .is_ok()
                });
                let _ = done.send(ok);
            }
            Op::Forget(pgid) => {
                if let Some(c) = &conn {
                    if let Err(e) =
                        c.execute("DELETE FROM agent_processes WHERE pgid = ?1", params![pgid])
                    {
                        tracing::warn!(error = %e, pgid, "cannot forget an agent process");
                    }
                }
            }
        }
    }
}

fn clone_err(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}

async fn record(pgid: libc::pid_t, tag: String) -> bool {
    let (tx, rx) = oneshot::channel();
    registry_send(Op::Record(pgid, tag, tx));
    rx.await.unwrap_or(false)
}

/// Opens the registry in the database at `db_path` (from now on every program
/// started is recorded there) and kills the process groups a previous daemon left
/// behind; returns how many processes were killed.
pub fn open_registry(db_path: &Path) -> io::Result<usize> {
    let (tx, rx) = std_mpsc::channel();
    registry_send(Op::Open(db_path.to_path_buf(), tx));
    rx.recv()
        .map_err(|_| io::Error::other("the process registry is gone"))?
}

/// The registry's table (created when missing).
pub const REGISTRY_TABLE: &str = "CREATE TABLE IF NOT EXISTS agent_processes (
    pgid INTEGER PRIMARY KEY,
    tag TEXT NOT NULL,
    started_at TEXT NOT NULL
)";

fn open_and_reap(path: &Path) -> io::Result<(Connection, usize)> {
    let db = |e: rusqlite::Error| io::Error::other(format!("process registry: {e}"));
    let conn = Connection::open(path).map_err(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(db)?;
    // Additive: a table of its own, created when missing (a fresh database has it
    // from the start, see `persist::fresh`); older builds ignore it.
    conn.execute_batch(REGISTRY_TABLE).map_err(db)?;
    let left: Vec<(libc::pid_t, String)> = {
        let mut stmt = conn
            .prepare("SELECT pgid, tag FROM agent_processes")
            .map_err(db)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)?
    };
    let mut killed = 0;
    for (pgid, tag) in &left {
        killed += kill_tagged_group(*pgid, tag);
    }
    // Nothing left behind: no write (no commit racing the daemon's first writes).
    if !left.is_empty() {
        conn.execute("DELETE FROM agent_processes", [])
            .map_err(db)?;
    }
    Ok((conn, killed))
}

/// Kills every process of group `pgid` that carries `tag` in its environment (a
/// group id reused by an unrelated program is left alone); returns how many.
pub fn kill_tagged_group(pgid: libc::pid_t, tag: &str) -> usize {
    if pgid <= 1 {
        return 0;
    }
    let marker = format!("{TAG_ENV}={tag}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut killed = 0;
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: getpgid has no memory effects.
        if unsafe { libc::getpgid(pid) } != pgid {
            continue;
        }
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if environ
            .split(|b| *b == 0)
            .any(|var| var == marker.as_bytes())
        {
            // SAFETY: kill(2) on a process verified to be ours.
            if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                killed += 1;
            }
        }
    }
    killed
}
