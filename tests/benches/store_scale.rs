//! Store scale: the real release daemon holding 1,000 and then 100,000 live idle
//! sessions (durable in SQLite, created by 64 TUI connections with 256 calls in
//! flight so the writer's group commit batches them).
//!
//! Measured at each size:
//! - daemon memory (`/proc/<pid>/status` VmRSS and RssAnon), and per session the
//!   growth between the two sizes divided by the sessions added;
//! - `session/new` latency: sequential calls with `keep_siblings: true` from a probe
//!   TUI (closed again afterwards, so the size stays put);
//! - sibling eviction: a TUI owning 10 idle chat sessions calls `session/new`
//!   (chat, siblings not kept), which evicts all 10; timed per call.
//!
//! Run with `make bench`; `BENCH_SCALE=small` for a quick run (1,000 and 10,000).

use futures::stream::{FuturesUnordered, StreamExt};
use sessiond_client::{Client, ConnectOptions};
use sessiond_protocol::params::NewSessionParams;
use sessiond_protocol::{Mode, SessionId};
use sessiond_tests::Daemon;
use std::time::{Duration, Instant};

const FILL_CLIENTS: usize = 64;
const FILL_IN_FLIGHT: usize = 256;
const SIBLINGS: usize = 10;

struct Scale {
    small: usize,
    large: usize,
    new_probes: usize,
    evict_rounds: usize,
}

fn scale() -> Scale {
    match std::env::var("BENCH_SCALE").as_deref() {
        Ok("small") => Scale {
            small: 1_000,
            large: 10_000,
            new_probes: 200,
            evict_rounds: 40,
        },
        _ => Scale {
            small: 1_000,
            large: 100_000,
            new_probes: 1_000,
            evict_rounds: 200,
        },
    }
}

/// p50 and p99 of a sample, plus the mean.
struct Lat {
    p50: Duration,
    p99: Duration,
    mean: Duration,
    n: usize,
}

fn lat(mut v: Vec<Duration>) -> Lat {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    let sum: Duration = v.iter().sum();
    Lat {
        p50: at(0.50),
        p99: at(0.99),
        mean: sum / v.len() as u32,
        n: v.len(),
    }
}

/// Memory of the daemon process, in bytes.
#[derive(Clone, Copy)]
struct Mem {
    rss: u64,
    anon: u64,
}

fn mem(pid: u32) -> Mem {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    };
    Mem {
        rss: field("VmRSS:"),
        anon: field("RssAnon:"),
    }
}

fn keep() -> NewSessionParams {
    NewSessionParams {
        mode: Some(Mode::Chat),
        keep_siblings: Some(true),
        ..Default::default()
    }
}

async fn live(c: &Client) -> usize {
    c.status().await.expect("status").sessions_live as usize
}

async fn tui(d: &Daemon) -> Client {
    let opts = ConnectOptions {
        call_timeout: Duration::from_secs(120),
        ..Default::default()
    };
    let c = Client::connect_unix(d.socket(), opts)
        .await
        .expect("connect");
    c.initialize("bench-store-scale", None)
        .await
        .expect("initialize");
    c
}

/// Creates sessions (kept, chat) round-robin over the fill clients until `target`
/// are live. Returns how many were created and how long it took.
async fn fill(clients: &[Client], target: usize) -> (usize, Duration) {
    let need = target.saturating_sub(live(&clients[0]).await);
    let start = Instant::now();
    let mut inflight = FuturesUnordered::new();
    let mut sent = 0;
    while sent < need || !inflight.is_empty() {
        while sent < need && inflight.len() < FILL_IN_FLIGHT {
            let c = clients[sent % clients.len()].clone();
            inflight.push(async move { c.new_session(keep()).await.expect("session/new") });
            sent += 1;
        }
        inflight.next().await;
    }
    (need, start.elapsed())
}

/// `n` sequential `session/new` (siblings kept) from one TUI; closed again afterwards.
async fn new_latency(probe: &Client, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    let mut ids: Vec<SessionId> = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = probe.new_session(keep()).await.expect("session/new");
        out.push(t.elapsed());
        ids.push(r.session.session_id);
    }
    for id in ids {
        probe.close_session(&id).await.expect("session/close");
    }
    out
}

/// `rounds` times: top the TUI up to 10 idle chat sessions (untimed), then time the
/// `session/new` that evicts all 10. The new session is the first of the next ten.
async fn eviction(owner: &Client, rounds: usize, owned: &mut usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        while *owned < SIBLINGS {
            owner.new_session(keep()).await.expect("session/new");
            *owned += 1;
        }
        let p = NewSessionParams {
            mode: Some(Mode::Chat),
            keep_siblings: Some(false),
            ..Default::default()
        };
        let t = Instant::now();
        let r = owner.new_session(p).await.expect("session/new evicting");
        out.push(t.elapsed());
        assert_eq!(r.evicted.len(), SIBLINGS, "every idle sibling is evicted");
        *owned = 1;
    }
    out
}

/// One daemon under test with its connections.
struct Rig {
    d: Daemon,
    fillers: Vec<Client>,
    probe: Client,
    evictor: Client,
    /// Idle chat sessions the evictor owns.
    owned: usize,
    new: Vec<Duration>,
    evict: Vec<Duration>,
}

impl Rig {
    async fn start(max_live: usize) -> Rig {
        let config = format!("max_live_sessions = {max_live}\nlog = \"warn\"\n");
        let d = Daemon::start_with(&config).await;
        let mut fillers = Vec::with_capacity(FILL_CLIENTS);
        for _ in 0..FILL_CLIENTS {
            fillers.push(tui(&d).await);
        }
        let probe = tui(&d).await;
        let evictor = tui(&d).await;
        Rig {
            d,
            fillers,
            probe,
            evictor,
            owned: 0,
            new: Vec::new(),
            evict: Vec::new(),
        }
    }

    /// Fills to `live` sessions, then one untimed round of each probe.
    async fn prepare(&mut self, live: usize) -> (usize, Duration) {
        let filled = fill(&self.fillers, live).await;
        new_latency(&self.probe, 100).await;
        eviction(&self.evictor, 10, &mut self.owned).await;
        filled
    }

    async fn block(&mut self, news: usize, rounds: usize) {
        self.new.extend(new_latency(&self.probe, news).await);
        self.evict
            .extend(eviction(&self.evictor, rounds, &mut self.owned).await);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn row(name: &str, small: &Lat, large: &Lat) {
    println!(
        "| {name:<38} | {:>7.3} | {:>7.3} | {:>7.3} | {:>7.3} | {:>5.2}x | {:>5.2}x |",
        ms(small.p50),
        ms(small.p99),
        ms(large.p50),
        ms(large.p99),
        large.p50.as_secs_f64() / small.p50.as_secs_f64(),
        large.p99.as_secs_f64() / small.p99.as_secs_f64(),
    );
}

fn mib(b: u64) -> f64 {
    b as f64 / 1048576.0
}

/// Blocks the probes are split into; the two daemons take turns block by block.
const BLOCKS: usize = 10;

fn main() {
    let s = scale();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let max_live = s.large * 2;
        let mut small = Rig::start(max_live).await;
        let mut large = Rig::start(max_live).await;

        small.prepare(s.small).await;
        large.prepare(s.small).await;
        let live_before = live(&large.probe).await;
        let mem_before = mem(large.d.pid());
        let (created, took) = large.prepare(s.large).await;
        let live_after = live(&large.probe).await;
        let mem_after = mem(large.d.pid());

        // The daemons take turns, block by block, so machine noise hits both alike.
        for b in 0..BLOCKS {
            let (news, rounds) = (s.new_probes / BLOCKS, s.evict_rounds / BLOCKS);
            if b % 2 == 0 {
                small.block(news, rounds).await;
                large.block(news, rounds).await;
            } else {
                large.block(news, rounds).await;
                small.block(news, rounds).await;
            }
        }
        let small_live = live(&small.probe).await;
        let large_live = live(&large.probe).await;

        println!("store scale: real daemon, {small_live} vs {large_live} live idle sessions (two daemons, same run)");
        println!(
            "fill: {created} sessions created in {:.1} s ({:.0}/s), {FILL_CLIENTS} TUIs, {FILL_IN_FLIGHT} in flight",
            took.as_secs_f64(),
            created as f64 / took.as_secs_f64()
        );
        let added = (live_after - live_before) as f64;
        let per = |a: u64, b: u64| (b as f64 - a as f64) / added;
        println!(
            "memory of the large daemon at {live_before} -> {live_after} sessions: VmRSS {:.1} -> {:.1} MiB, RssAnon {:.1} -> {:.1} MiB",
            mib(mem_before.rss),
            mib(mem_after.rss),
            mib(mem_before.anon),
            mib(mem_after.anon),
        );
        println!(
            "memory per idle session: VmRSS {:.0} B, RssAnon {:.0} B (target < 2048 B)",
            per(mem_before.rss, mem_after.rss),
            per(mem_before.anon, mem_after.anon),
        );
        println!();
        let (sn, ln) = (lat(small.new), lat(large.new));
        let (se, le) = (lat(small.evict), lat(large.evict));
        println!(
            "| {:<38} | {:>7} | {:>7} | {:>7} | {:>7} | {:>6} | {:>6} |",
            "call (ms)",
            format!("{}k p50", small_live / 1000),
            "p99",
            format!("{}k p50", large_live / 1000),
            "p99",
            "p50 x",
            "p99 x"
        );
        println!("|{:-<40}|{:-<9}|{:-<9}|{:-<9}|{:-<9}|{:-<8}|{:-<8}|", "", "", "", "", "", "", "");
        row(&format!("session/new, siblings kept (n={})", sn.n), &sn, &ln);
        row(&format!("session/new evicting {SIBLINGS} (n={})", se.n), &se, &le);
        println!();
        println!(
            "means (ms): new {:.3} vs {:.3}, evicting new {:.3} vs {:.3}",
            ms(sn.mean),
            ms(ln.mean),
            ms(se.mean),
            ms(le.mean)
        );
        println!(
            "eviction cost ratio large/small: p50 {:.2}x, p99 {:.2}x (target < 1.5x)",
            le.p50.as_secs_f64() / se.p50.as_secs_f64(),
            le.p99.as_secs_f64() / se.p99.as_secs_f64(),
        );
    });
}
