//! Isolation: `session/get` on session B while session A streams a long turn and a
//! client keeps sending `session/configure` to A, against `session/get` on B with A
//! idle. Measured in the same run on the real release daemon and on a baseline
//! server written here whose store is one `tokio::sync::Mutex<HashMap<..>>` for all
//! sessions (see [`baseline`]; once holding the lock while a commit is awaited, once
//! releasing it first). All serve the methods with the protocol's param and result
//! types over jsonrpsee on a Unix socket, each in its own process, and persist to
//! SQLite (WAL, `synchronous = FULL`) through a writer thread with group commit. A
//! control reads B from a second daemon while the load runs on the first: what
//! sharing the machine's CPUs alone costs.
//!
//! Run with `make bench`; `BENCH_SCALE=small` for a quick run.

use sessiond_client::{Client, ConnectOptions};
use sessiond_protocol::params::{NewSessionParams, OverridesPatch};
use sessiond_protocol::{Patch, SessionId};
use sessiond_tests::{wait_for, Daemon};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Characters per streamed chunk, and the pause between chunks (both servers).
const CHUNK_CHARS: usize = 4;
const CHUNK_DELAY_MS: u64 = 1;
/// A prompt long enough that one turn outlasts a measuring block (10,000 chunks).
const PROMPT_CHARS: usize = 40_000;
const BASE_ENV: &str = "ISOLATION_BASELINE_SERVER";
const HOLD_ENV: &str = "ISOLATION_BASELINE_HOLD";

struct Scale {
    rounds: usize,
    gets: usize,
}

fn scale() -> Scale {
    match std::env::var("BENCH_SCALE").as_deref() {
        Ok("small") => Scale {
            rounds: 2,
            gets: 500,
        },
        _ => Scale {
            rounds: 10,
            gets: 3_000,
        },
    }
}

/// One server under test: the two sessions and one connection per load.
struct Target {
    name: &'static str,
    getter: Client,
    turns: Client,
    conf: Client,
    a: SessionId,
    b: SessionId,
    idle: Vec<Duration>,
    busy: Vec<Duration>,
    configures: Vec<Duration>,
    busy_time: Duration,
}

async fn connect(path: &Path) -> Client {
    let opts = ConnectOptions {
        call_timeout: Duration::from_secs(120),
        ..Default::default()
    };
    Client::connect_unix(path, opts).await.expect("connect")
}

impl Target {
    /// A and the loads on `load`; B and the reads on `read` (the same server, except
    /// for the control).
    async fn new(name: &'static str, load: &Path, read: &Path, agent: Option<&str>) -> Target {
        let getter = connect(read).await;
        let turns = connect(load).await;
        let conf = connect(load).await;
        let p = NewSessionParams {
            agent: agent.map(str::to_owned),
            keep_siblings: Some(true),
            ..Default::default()
        };
        let a = turns.new_session(p.clone()).await.expect("new A");
        let b = getter.new_session(p).await.expect("new B");
        Target {
            name,
            getter,
            turns,
            conf,
            a: a.session.session_id,
            b: b.session.session_id,
            idle: Vec::new(),
            busy: Vec::new(),
            configures: Vec::new(),
            busy_time: Duration::ZERO,
        }
    }

    async fn gets(&self, n: usize) -> Vec<Duration> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            self.getter.get_session(&self.b).await.expect("get B");
            out.push(t.elapsed());
        }
        out
    }

    async fn idle_block(&mut self, n: usize) {
        let a = self.turns.get_session(&self.a).await.expect("get A");
        assert!(a.turn.is_none(), "A is idle");
        let lat = self.gets(n).await;
        self.idle.extend(lat);
    }

    /// Waits until A has a running turn, or none.
    async fn wait_turn(&self, running: bool) {
        let (c, a) = (&self.conf, &self.a);
        wait_for("A's turn state", || async move {
            let turn = c.get_session(a).await.ok()?.turn;
            (turn.is_some() == running).then_some(())
        })
        .await;
    }

    /// A streams a turn (restarted if it ends) and takes back-to-back configures
    /// while B is read `n` times; then the loads stop and A's turn is cancelled.
    async fn busy_block(&mut self, n: usize) {
        let text = "abcdefghij".repeat(PROMPT_CHARS / 10);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let turns = self.turns.clone();
        let a = self.a.clone();
        let mut rx = stop_rx.clone();
        let turn_loop = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = rx.changed() => break,
                    r = turns.prompt_wait(&a, text.clone()) => { r.expect("prompt"); }
                }
            }
        });
        self.wait_turn(true).await;
        let (conf, a, stop) = (self.conf.clone(), self.a.clone(), stop_rx.clone());
        let conf_loop = tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0u64;
            while !*stop.borrow() {
                let patch = OverridesPatch {
                    temperature: Patch::Set(if i % 2 == 0 { 0.25 } else { 0.5 }),
                    ..Default::default()
                };
                let t = Instant::now();
                conf.configure(&a, patch).await.expect("configure A");
                lat.push(t.elapsed());
                i += 1;
            }
            lat
        });
        let start = Instant::now();
        let lat = self.gets(n).await;
        self.busy_time += start.elapsed();
        let still = self.conf.get_session(&self.a).await.expect("get A");
        assert!(still.turn.is_some(), "A's turn ran for the whole block");
        let _ = stop_tx.send(true);
        turn_loop.await.expect("turn loop");
        self.configures
            .extend(conf_loop.await.expect("configure loop"));
        self.turns.cancel(&self.a).await.expect("cancel A");
        self.wait_turn(false).await;
        self.busy.extend(lat);
    }
}

struct Lat {
    p50: Duration,
    p99: Duration,
}

fn lat(v: &[Duration]) -> Lat {
    let mut v = v.to_vec();
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    Lat {
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn print(t: &Target) {
    let (i, b, c) = (lat(&t.idle), lat(&t.busy), lat(&t.configures));
    println!(
        "| {:<31} | {:>8.1} | {:>8.1} | {:>8.1} | {:>9.1} | {:>6.2}x | {:>6.2}x | {:>8.0} | {:>7.0} |",
        t.name,
        us(i.p50),
        us(i.p99),
        us(b.p50),
        us(b.p99),
        b.p50.as_secs_f64() / i.p50.as_secs_f64(),
        b.p99.as_secs_f64() / i.p99.as_secs_f64(),
        us(c.p50),
        t.configures.len() as f64 / t.busy_time.as_secs_f64().max(1e-9),
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Some(path) = std::env::var_os(BASE_ENV) {
        let hold = std::env::var(HOLD_ENV).as_deref() == Ok("1");
        rt.block_on(baseline::serve(PathBuf::from(path), hold));
        return;
    }
    let s = scale();
    rt.block_on(async {
        let config = format!(
            "log = \"warn\"\n[agents.slow]\nkind = \"echo\"\nchunk_chars = {CHUNK_CHARS}\nchunk_delay_ms = {CHUNK_DELAY_MS}\n"
        );
        let daemon = Daemon::start_with(&config).await;
        let dir = tempfile::tempdir().unwrap();
        let mut bases = Vec::new();
        for hold in ["1", "0"] {
            let path = dir.path().join(format!("baseline-{hold}.sock"));
            let child = std::process::Command::new(std::env::current_exe().unwrap())
                .env(BASE_ENV, &path)
                .env(HOLD_ENV, hold)
                .spawn()
                .expect("start a baseline server process");
            wait_for("baseline socket", || async {
                tokio::net::UnixStream::connect(&path).await.ok().map(|_| ())
            })
            .await;
            bases.push((child, path));
        }
        let other = Daemon::start_with(&config).await;
        let (main_sock, other_sock) = (daemon.socket(), other.socket());
        let mut targets = [
            Target::new("sessiond", &main_sock, &main_sock, Some("slow")).await,
            Target::new("baseline, lock held over commit", &bases[0].1, &bases[0].1, None).await,
            Target::new("baseline, lock freed for commit", &bases[1].1, &bases[1].1, None).await,
            Target::new("control: B in another sessiond", &main_sock, &other_sock, Some("slow")).await,
        ];
        // Warm-up, untimed.
        for t in targets.iter_mut() {
            t.gets(500).await;
        }

        // Each round measures both conditions on every target, rotating the order.
        let n = targets.len();
        for r in 0..s.rounds {
            for k in 0..n {
                let t = &mut targets[(r + k) % n];
                t.idle_block(s.gets).await;
                t.busy_block(s.gets).await;
            }
        }

        println!(
            "isolation: session/get on B, A idle vs A streaming ({CHUNK_CHARS} chars every {CHUNK_DELAY_MS} ms) with back-to-back session/configure; {} gets per condition",
            s.rounds * s.gets
        );
        println!(
            "| {:<31} | {:>8} | {:>8} | {:>8} | {:>9} | {:>7} | {:>7} | {:>8} | {:>7} |",
            "server", "idle p50", "idle p99", "busy p50", "busy p99", "p50 x", "p99 x", "conf p50", "conf/s"
        );
        println!("|{:-<33}|{:-<10}|{:-<10}|{:-<10}|{:-<11}|{:-<9}|{:-<9}|{:-<10}|{:-<9}|", "", "", "", "", "", "", "", "", "");
        for t in &targets {
            print(t);
        }
        println!("(latencies in µs; p99 x is the target figure: under 1.3x. The control reads B");
        println!(" from a second daemon process while the same load runs on the first: CPU sharing only.)");
        for (mut child, _) in bases {
            let _ = child.kill();
            let _ = child.wait();
        }
    });
}

#[path = "isolation/baseline.rs"]
mod baseline;
