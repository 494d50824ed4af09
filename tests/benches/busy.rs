//! Many busy sessions: 100 sessions streaming at once (the echo agent, 64-character
//! chunks every 20 ms) while 10 TUIs each watch 10 of them. Measured: the p50/p99 of
//! `session/get` on an idle session against the same with nothing streaming, whether
//! any subscriber was cut off (a `resync`, or a chunk missing), and the daemon's CPU
//! time (`/proc/PID/stat` utime + stime) per delivered chunk.
//!
//! Run with `make bench`, or:
//! `cargo build --release -p sessiond --bin sessiond &&
//!  SESSIOND_BIN=$PWD/target/release/sessiond cargo bench -p sessiond-tests --bench busy`
//! `BENCH_SCALE=small` streams 100 chunks per session instead of 500. For profiling,
//! `BUSY_SESSIONS`, `BUSY_TUIS` and `BUSY_CHUNKS` shrink the load, and with
//! `BUSY_CALLGRIND=1` (the daemon started under `valgrind --tool=callgrind` through a
//! wrapper given as `SESSIOND_BIN`) the counters are zeroed just before the prompts and
//! dumped once every chunk was delivered, so the dump holds the streaming alone.
//! `BUSY_PROBE_EVERY_US` paces the `session/get` probe (default 0: back to back).

use sessiond_client::protocol::params::NewSessionParams;
use sessiond_client::{Client, Event, EventStream, SessionId};
use sessiond_tests::Daemon;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONFIG: &str = "max_live_sessions = 1000\nlog = \"warn\"\n\
    [agents.stream]\nkind = \"echo\"\nchunk_chars = 64\nchunk_delay_ms = 20\n";
const PROBES_IDLE: usize = 2_000;

fn env_usize(key: &str) -> Option<usize> {
    std::env::var(key).ok().and_then(|v| v.parse().ok())
}

fn chunks_per_session() -> usize {
    env_usize("BUSY_CHUNKS").unwrap_or(match std::env::var("BENCH_SCALE").as_deref() {
        Ok("small") => 100,
        _ => 500,
    })
}

/// Runs `callgrind_control ARG PID` when `BUSY_CALLGRIND` is set.
fn callgrind(arg: &str, pid: u32) {
    if std::env::var_os("BUSY_CALLGRIND").is_none() {
        return;
    }
    let st = std::process::Command::new("callgrind_control")
        .arg(arg)
        .arg(pid.to_string())
        .status();
    println!("callgrind_control {arg} {pid}: {st:?}");
}

/// utime and stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the `(comm)`; utime and stime are fields 14 and 15 of the line.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (get(11), get(12))
}

fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

struct Watched {
    chunks: usize,
    resyncs: usize,
    completed: bool,
}

/// Reads one subscription until `turn_complete` (or the stream ends), counting
/// finished turns in `done`.
async fn watch(mut events: EventStream, done: Arc<AtomicUsize>) -> Watched {
    let mut w = Watched {
        chunks: 0,
        resyncs: 0,
        completed: false,
    };
    while let Some(ev) = events.next_event().await {
        match ev.expect("event").event {
            Event::AgentMessageChunk { .. } => w.chunks += 1,
            Event::Resync { .. } => w.resyncs += 1,
            Event::TurnComplete { .. } => {
                w.completed = true;
                done.fetch_add(1, Ordering::SeqCst);
                break;
            }
            _ => {}
        }
    }
    w
}

fn pct(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Starts one `session/get` per `every` (back to back when zero), the way a TUI
/// asks now and then rather than in a closed loop that would itself load the
/// daemon, until `n` calls were made or `stop` says so.
async fn probe(
    c: &Client,
    id: &SessionId,
    every: Duration,
    n: usize,
    stop: impl Fn() -> bool,
) -> Vec<Duration> {
    let mut lat = Vec::with_capacity(n.min(100_000));
    let mut tick = tokio::time::interval(every.max(Duration::from_micros(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while lat.len() < n && (lat.is_empty() || !stop()) {
        if !every.is_zero() {
            tick.tick().await;
        }
        let t = Instant::now();
        c.get_session(id).await.expect("session/get");
        lat.push(t.elapsed());
    }
    lat.sort();
    lat
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let chunks = chunks_per_session();
    let sessions = env_usize("BUSY_SESSIONS").unwrap_or(100).max(1);
    let tuis = env_usize("BUSY_TUIS").unwrap_or(10).clamp(1, sessions);
    let d = Daemon::start_with(CONFIG).await;
    let owner = d.tui().await;
    let mut ids = Vec::new();
    for _ in 0..sessions {
        let r = owner
            .new_session(NewSessionParams {
                agent: Some("stream".into()),
                keep_siblings: Some(true),
                ..Default::default()
            })
            .await
            .expect("session/new");
        ids.push(r.session.session_id);
    }
    let idle = owner
        .new_session(NewSessionParams {
            keep_siblings: Some(true),
            ..Default::default()
        })
        .await
        .expect("session/new")
        .session
        .session_id;
    let prober = d.client().await;

    let every = Duration::from_micros(env_usize("BUSY_PROBE_EVERY_US").unwrap_or(0) as u64);
    let q0 = cpu_ticks(d.pid());
    let quiet = probe(&prober, &idle, every, PROBES_IDLE, || false).await;
    let q1 = cpu_ticks(d.pid());
    let quiet_cpu = (q1.0 + q1.1 - q0.0 - q0.1) as f64 / ticks_per_sec();

    // 10 TUIs, each on its own connection, each watching 10 of the sessions.
    let mut clients = Vec::new();
    let mut readers = Vec::new();
    let done = Arc::new(AtomicUsize::new(0));
    let per_tui = sessions / tuis;
    for t in 0..tuis {
        let c = d.tui().await;
        for id in &ids[t * per_tui..(t + 1) * per_tui] {
            let s = c.subscribe(id, None).await.expect("subscribe");
            readers.push(tokio::spawn(watch(s, done.clone())));
        }
        clients.push(c);
    }
    let text = "x".repeat(64 * chunks);
    // Sessions past `tuis * per_tui` stream unwatched.
    let watched = tuis * per_tui;
    callgrind("-z", d.pid());
    let cpu0 = cpu_ticks(d.pid());
    let start = Instant::now();
    // All prompts at once, so the sessions stream side by side.
    let prompts = ids.iter().map(|id| owner.prompt_text(id, text.clone()));
    for r in futures::future::join_all(prompts).await {
        r.expect("prompt");
    }
    // Probe while all of them stream, until the first turn ends (a single call under
    // callgrind, so that its counts are the streaming's).
    let profiling = std::env::var_os("BUSY_CALLGRIND").is_some();
    let busy = probe(&prober, &idle, every, usize::MAX, || {
        profiling || done.load(Ordering::SeqCst) > 0
    })
    .await;
    let mut delivered = 0usize;
    let mut resyncs = 0usize;
    let mut short = 0usize;
    for r in readers {
        let w = r.await.expect("reader");
        delivered += w.chunks;
        resyncs += w.resyncs;
        if !w.completed || w.chunks != chunks {
            short += 1;
        }
    }
    let elapsed = start.elapsed();
    let cpu1 = cpu_ticks(d.pid());
    let user = (cpu1.0 - cpu0.0) as f64 / ticks_per_sec();
    let sys = (cpu1.1 - cpu0.1) as f64 / ticks_per_sec();
    let cpu = user + sys;
    callgrind("-d", d.pid());

    println!(
        "many busy sessions: {sessions} sessions x {chunks} chunks of 64 characters every 20 ms, \
         {tuis} TUIs watching {per_tui} each; daemon {}",
        sessiond_tests::binary().display()
    );
    println!(
        "session/get on an idle session, one call every {} µs (0: back to back)",
        every.as_micros()
    );
    println!("| session/get on an idle session | calls | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|");
    println!(
        "| nothing streaming | {} | {:.3} | {:.3} |",
        quiet.len(),
        pct(&quiet, 0.5),
        pct(&quiet, 0.99)
    );
    println!(
        "| {sessions} sessions streaming | {} | {:.3} | {:.3} |",
        busy.len(),
        pct(&busy, 0.5),
        pct(&busy, 0.99)
    );
    // The probe's own share of the daemon's CPU while streaming, at its cost per call
    // with nothing streaming (it is a closed loop when back to back).
    let per_get = quiet_cpu / quiet.len().max(1) as f64;
    let net = (cpu - per_get * busy.len() as f64).max(0.0);
    println!(
        "daemon CPU while only the probe ran: {:.1} µs per session/get; while streaming, \
         net of the {} probe calls at that cost: {net:.2} s = {:.1} µs per delivered chunk",
        per_get * 1e6,
        busy.len(),
        net * 1e6 / delivered.max(1) as f64
    );
    println!(
        "p99 busy / quiet: {:.2}x (p50 {:.2}x); chunks delivered {delivered} of {}; subscribers cut off \
         (resync or short): {resyncs} resyncs, {short} short; streaming took {:.2} s; \
         daemon CPU {:.2} s (user {user:.2} s, system {sys:.2} s) = {:.1} µs per delivered chunk",
        pct(&busy, 0.99) / pct(&quiet, 0.99),
        pct(&busy, 0.5) / pct(&quiet, 0.5),
        watched * chunks,
        elapsed.as_secs_f64(),
        cpu,
        cpu * 1e6 / delivered.max(1) as f64
    );
}
