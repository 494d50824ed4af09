//! Persistence figures of the real daemon:
//! - durable `session/new` per second with 1 client and with 32 clients (each reply
//!   waits for its commit; group commit shares one fsync among concurrent writers);
//! - restart time, from spawning `sessiond serve` until the socket answers, with
//!   10,000 and 100,000 stored sessions (each a copy of a real session with a turn:
//!   2 messages, 1 turn, its events) — lazy loading keeps it flat;
//! - database size per session and per message.
//!
//! Run with `make bench` or
//! `SESSIOND_BIN=... cargo bench -p sessiond-tests --bench persistence`.
//! `BENCH_SCALE=small` runs a reduced version.

use sessiond_client::{Client, ConnectOptions};
use sessiond_protocol::params::NewSessionParams;
use sessiond_tests::{http_post, Daemon, Dirs};
use std::process::Stdio;
use std::time::{Duration, Instant};

struct Scale {
    creates_one: usize,
    creates_each_of_32: usize,
    restart_sizes: [u64; 2],
    restarts: usize,
    size_sessions: usize,
    size_prompts: usize,
}

fn scale() -> Scale {
    match std::env::var("BENCH_SCALE").as_deref() {
        Ok("small") => Scale {
            creates_one: 200,
            creates_each_of_32: 20,
            restart_sizes: [1_000, 10_000],
            restarts: 2,
            size_sessions: 200,
            size_prompts: 100,
        },
        _ => Scale {
            creates_one: 2_000,
            creates_each_of_32: 300,
            restart_sizes: [10_000, 100_000],
            restarts: 5,
            size_sessions: 2_000,
            size_prompts: 1_000,
        },
    }
}

const CONFIG: &str = "max_live_sessions = 100000\n";

async fn client(d: &Daemon) -> Client {
    Client::connect_unix(d.socket(), ConnectOptions::default())
        .await
        .expect("connect")
}

async fn create(c: &Client) {
    c.new_session(NewSessionParams {
        title: Some("bench".into()),
        ..Default::default()
    })
    .await
    .expect("session/new");
}

/// Durable creates per second with `clients` connections, `each` creates apiece.
async fn creates_per_sec(clients: usize, each: usize) -> f64 {
    let d = Daemon::start_with(CONFIG).await;
    let mut cs = Vec::new();
    for _ in 0..clients {
        cs.push(client(&d).await);
    }
    create(&cs[0]).await; // warm-up
    let start = Instant::now();
    let tasks: Vec<_> = cs
        .into_iter()
        .map(|c| {
            tokio::spawn(async move {
                for _ in 0..each {
                    create(&c).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (clients * each) as f64 / start.elapsed().as_secs_f64()
}

fn db_file(dirs: &Dirs) -> std::path::PathBuf {
    dirs.data_dir().join("sessiond.db")
}

/// Size of the database after a checkpoint (the daemon is stopped).
fn db_bytes(dirs: &Dirs) -> u64 {
    let db = rusqlite::Connection::open(db_file(dirs)).unwrap();
    db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(db);
    std::fs::metadata(db_file(dirs)).unwrap().len()
}

/// A stopped daemon's tree with `n` stored sessions: one real session with a turn,
/// then `n - 1` copies of its rows written directly.
async fn tree_with_sessions(n: u64) -> Dirs {
    let mut d = Daemon::start().await;
    let c = client(&d).await;
    let s = c
        .new_session(NewSessionParams {
            title: Some("template".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .session
        .session_id;
    c.prompt_wait(&s, "a prompt of ordinary length for the template session")
        .await
        .unwrap();
    drop(c);
    assert!(d.sigterm().success());
    let dirs = std::mem::take(&mut d.dirs);
    drop(d);
    let db = rusqlite::Connection::open(db_file(&dirs)).unwrap();
    db.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")
        .unwrap();
    let copies = n - 1;
    let sql = format!(
        "BEGIN;
        CREATE TEMP TABLE k AS WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < {copies}) SELECT i FROM k;
        INSERT INTO sessions (id, agent, mode, title, cwd, owner, status, overrides, ttl_secs,
            created_at, updated_at, last_active_at, message_count, round_count, input_tokens,
            output_tokens, last_seq, seq_reserved)
          SELECT printf('ses_bench%023d', k.i), agent, mode, title, cwd, owner, status, overrides,
            ttl_secs, created_at, updated_at, last_active_at, message_count, round_count,
            input_tokens, output_tokens, last_seq, seq_reserved FROM sessions, k WHERE id = '{s}';
        INSERT INTO messages SELECT printf('ses_bench%023d', k.i), idx, role, content,
            turn_id || '_' || k.i, created_at FROM messages, k WHERE session_id = '{s}';
        INSERT INTO turns SELECT turn_id || '_' || k.i, printf('ses_bench%023d', k.i), generation,
            prompt, started_at, ended_at, stop_reason, cancel_cause, error, input_tokens,
            output_tokens FROM turns, k WHERE session_id = '{s}';
        INSERT INTO events SELECT printf('ses_bench%023d', k.i), seq, body
            FROM events, k WHERE session_id = '{s}';
        COMMIT;
        PRAGMA wal_checkpoint(TRUNCATE);",
        s = s.as_str()
    );
    db.execute_batch(&sql).unwrap();
    let count: u64 = db
        .query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, n);
    dirs
}

/// Time from spawning `sessiond serve` until `daemon/status` answers on the socket.
async fn time_to_serve(dirs: &Dirs) -> Duration {
    let start = Instant::now();
    let mut child = dirs
        .command()
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sessiond");
    let socket = dirs.socket();
    let body = r#"{"jsonrpc":"2.0","id":0,"method":"daemon/status"}"#;
    let took = loop {
        if matches!(http_post(&socket, body).await, Ok((200, _))) {
            break start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "sessiond did not serve"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let sc = scale();
    rt.block_on(async {
        let one = creates_per_sec(1, sc.creates_one).await;
        let many = creates_per_sec(32, sc.creates_each_of_32).await;
        println!("durable session/new, 1 client:   {one:>8.0} /s");
        println!(
            "durable session/new, 32 clients: {many:>8.0} /s ({:.1}x)",
            many / one
        );

        for n in sc.restart_sizes {
            let dirs = tree_with_sessions(n).await;
            let _ = time_to_serve(&dirs).await; // warm the page cache
            let mut runs = Vec::new();
            for _ in 0..sc.restarts {
                runs.push(time_to_serve(&dirs).await);
            }
            let size = std::fs::metadata(db_file(&dirs)).unwrap().len();
            println!(
                "restart until the socket answers, {n:>7} sessions ({:.1} MiB db): median {:.1} ms, max {:.1} ms",
                size as f64 / (1024.0 * 1024.0),
                median(runs.clone()).as_secs_f64() * 1e3,
                runs.iter().max().unwrap().as_secs_f64() * 1e3
            );
        }

        // Size per session: empty sessions created through the daemon.
        let mut d = Daemon::start_with(CONFIG).await;
        let c = client(&d).await;
        let s = c
            .new_session(NewSessionParams::default())
            .await
            .unwrap()
            .session
            .session_id;
        drop(c);
        assert!(d.sigterm().success());
        let dirs = std::mem::take(&mut d.dirs);
        let base = db_bytes(&dirs);
        let d = Daemon::start_in(dirs).await.unwrap();
        let c = client(&d).await;
        for _ in 0..sc.size_sessions {
            create(&c).await;
        }
        drop(c);
        let mut d = d;
        assert!(d.sigterm().success());
        let dirs = std::mem::take(&mut d.dirs);
        let with_sessions = db_bytes(&dirs);
        println!(
            "database size per session (no messages): {:.0} bytes",
            (with_sessions - base) as f64 / sc.size_sessions as f64
        );

        // Size per message: prompts of 100 characters on one session (each turn
        // stores 2 messages, its turn record and its events).
        let d = Daemon::start_in(dirs).await.unwrap();
        let c = client(&d).await;
        let text = "x".repeat(100);
        for _ in 0..sc.size_prompts {
            c.prompt_wait(&s, text.clone()).await.unwrap();
        }
        drop(c);
        let mut d = d;
        assert!(d.sigterm().success());
        let dirs = std::mem::take(&mut d.dirs);
        let with_messages = db_bytes(&dirs);
        println!(
            "database size per message (100 chars, with its share of turn and events): {:.0} bytes",
            (with_messages - with_sessions) as f64 / (2 * sc.size_prompts) as f64
        );
    });
}
