//! Many busy sessions: 100 sessions streaming at once (the echo agent, 64-character
//! chunks every 20 ms) while 10 TUIs each watch 10 of them. Measured: the p50/p99 of
//! `session/get` on an idle session against the same with nothing streaming, whether
//! any subscriber was cut off (a `resync`, or a chunk missing), and the daemon's CPU
//! time (`/proc/PID/stat` utime + stime) per delivered chunk. The sessions stream
//! twice: round 1 with nothing else running gives the CPU per chunk; round 2, with
//! the probe calling `session/get` back to back (a closed loop that costs the daemon
//! CPU of its own), gives the latency.
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
    let quiet = probe(&prober, &idle, every, PROBES_IDLE, || false).await;

    let per_tui = sessions / tuis;
    let text = "x".repeat(64 * chunks);
    let profiling = std::env::var_os("BUSY_CALLGRIND").is_some();
    // Round 1, nothing but the streaming: the daemon's CPU per delivered chunk.
    callgrind("-z", d.pid());
    let cpu_round = stream(&d, &owner, &ids, tuis, per_tui, &text, None).await;
    callgrind("-d", d.pid());
    // Round 2, the same while the probe runs, until the first turn ends (not under
    // callgrind, whose counts are round 1's).
    let lat_round = match profiling {
        true => None,
        false => Some(
            stream(
                &d,
                &owner,
                &ids,
                tuis,
                per_tui,
                &text,
                Some((&prober, &idle, every)),
            )
            .await,
        ),
    };
    let busy = lat_round
        .as_ref()
        .map(|r| r.probes.clone())
        .unwrap_or_default();
    println!(
        "many busy sessions: {sessions} sessions x {chunks} chunks of 64 characters every 20 ms, \
         {tuis} TUIs watching {per_tui} each; daemon {}",
        sessiond_tests::binary().display()
    );
    if busy.is_empty() {
        println!(
            "{}",
            cpu_round.line("streaming only", chunks * tuis * per_tui)
        );
        return;
    }
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
    println!(
        "p99 busy / quiet: {:.2}x (p50 {:.2}x)",
        pct(&busy, 0.99) / pct(&quiet, 0.99),
        pct(&busy, 0.5) / pct(&quiet, 0.5),
    );
    let expected = chunks * tuis * per_tui;
    println!("{}", cpu_round.line("round 1, streaming only", expected));
    if let Some(r) = &lat_round {
        println!("{}", r.line("round 2, with the probe", expected));
    }
}

/// One round of every session streaming its turn to fresh TUI connections.
struct Round {
    delivered: usize,
    resyncs: usize,
    short: usize,
    elapsed: Duration,
    user: f64,
    sys: f64,
    probes: Vec<Duration>,
}

impl Round {
    fn line(&self, what: &str, expected: usize) -> String {
        let cpu = self.user + self.sys;
        format!(
            "{what}: chunks delivered {} of {expected}; subscribers cut off (resync or short): \
             {} resyncs, {} short; streaming took {:.2} s; daemon CPU {cpu:.2} s (user {:.2} s, \
             system {:.2} s) = {:.1} µs per delivered chunk",
            self.delivered,
            self.resyncs,
            self.short,
            self.elapsed.as_secs_f64(),
            self.user,
            self.sys,
            cpu * 1e6 / self.delivered.max(1) as f64
        )
    }
}

/// `tuis` TUIs, each on its own connection, each watching `per_tui` of the sessions
/// (the rest stream unwatched); every session is prompted at once with `text`. With
/// a probe, `session/get` is timed on the idle session until the first turn ends.
async fn stream(
    d: &Daemon,
    owner: &Client,
    ids: &[SessionId],
    tuis: usize,
    per_tui: usize,
    text: &str,
    probing: Option<(&Client, &SessionId, Duration)>,
) -> Round {
    let mut clients = Vec::new();
    let mut readers = Vec::new();
    let done = Arc::new(AtomicUsize::new(0));
    for t in 0..tuis {
        let c = d.tui().await;
        for id in &ids[t * per_tui..(t + 1) * per_tui] {
            let s = c.subscribe(id, None).await.expect("subscribe");
            readers.push(tokio::spawn(watch(s, done.clone())));
        }
        clients.push(c);
    }
    let chunks = text.len() / 64;
    let cpu0 = cpu_ticks(d.pid());
    let start = Instant::now();
    // All prompts at once, so the sessions stream side by side.
    let prompts = ids.iter().map(|id| owner.prompt_text(id, text.to_owned()));
    for r in futures::future::join_all(prompts).await {
        r.expect("prompt");
    }
    let probes = match probing {
        Some((prober, idle, every)) => {
            probe(prober, idle, every, usize::MAX, || {
                done.load(Ordering::SeqCst) > 0
            })
            .await
        }
        None => Vec::new(),
    };
    let mut r = Round {
        delivered: 0,
        resyncs: 0,
        short: 0,
        elapsed: Duration::ZERO,
        user: 0.0,
        sys: 0.0,
        probes,
    };
    for h in readers {
        let w = h.await.expect("reader");
        r.delivered += w.chunks;
        r.resyncs += w.resyncs;
        if !w.completed || w.chunks != chunks {
            r.short += 1;
        }
    }
    r.elapsed = start.elapsed();
    let cpu1 = cpu_ticks(d.pid());
    r.user = (cpu1.0 - cpu0.0) as f64 / ticks_per_sec();
    r.sys = (cpu1.1 - cpu0.1) as f64 / ticks_per_sec();
    // Every turn has ended for the watched sessions; wait for the unwatched too.
    for id in ids {
        while owner
            .get_session(id)
            .await
            .expect("session/get")
            .turn
            .is_some()
        {
            tokio::task::yield_now().await;
        }
    }
    drop(clients);
    r
}
