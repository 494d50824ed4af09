//! Many busy sessions: 100 sessions streaming at once (the echo agent, 64-character
//! chunks every 20 ms) while 10 TUIs each watch 10 of them. Measured: the p50/p99 of
//! `session/get` on an idle session against the same with nothing streaming, whether
//! any subscriber was cut off (a `resync`, or a chunk missing), and the daemon's CPU
//! time (`/proc/PID/stat` utime + stime) per delivered chunk.
//!
//! Run with `make bench`, or:
//! `cargo build --release -p sessiond --bin sessiond &&
//!  SESSIOND_BIN=$PWD/target/release/sessiond cargo bench -p sessiond-tests --bench busy`
//! `BENCH_SCALE=small` streams 100 chunks per session instead of 500.

use sessiond_client::protocol::params::NewSessionParams;
use sessiond_client::{Client, Event, EventStream, SessionId};
use sessiond_tests::Daemon;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONFIG: &str = "max_live_sessions = 1000\nlog = \"warn\"\n\
    [agents.stream]\nkind = \"echo\"\nchunk_chars = 64\nchunk_delay_ms = 20\n";
const SESSIONS: usize = 100;
const TUIS: usize = 10;
const PROBES_IDLE: usize = 2_000;

fn chunks_per_session() -> usize {
    match std::env::var("BENCH_SCALE").as_deref() {
        Ok("small") => 100,
        _ => 500,
    }
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the `(comm)`; utime and stime are fields 14 and 15 of the line.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
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

async fn probe(c: &Client, id: &SessionId, n: usize) -> Vec<Duration> {
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
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
    let d = Daemon::start_with(CONFIG).await;
    let owner = d.tui().await;
    let mut ids = Vec::new();
    for _ in 0..SESSIONS {
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

    let quiet = probe(&prober, &idle, PROBES_IDLE).await;

    // 10 TUIs, each on its own connection, each watching 10 of the sessions.
    let mut tuis = Vec::new();
    let mut readers = Vec::new();
    let done = Arc::new(AtomicUsize::new(0));
    for t in 0..TUIS {
        let c = d.tui().await;
        for id in &ids[t * (SESSIONS / TUIS)..(t + 1) * (SESSIONS / TUIS)] {
            let s = c.subscribe(id, None).await.expect("subscribe");
            readers.push(tokio::spawn(watch(s, done.clone())));
        }
        tuis.push(c);
    }
    let text = "x".repeat(64 * chunks);
    let cpu0 = cpu_ticks(d.pid());
    let start = Instant::now();
    // All prompts at once, so the sessions stream side by side.
    let prompts = ids.iter().map(|id| owner.prompt_text(id, text.clone()));
    for r in futures::future::join_all(prompts).await {
        r.expect("prompt");
    }
    // Probe while all of them stream: as many calls as fit before the first turn ends.
    let mut busy = Vec::new();
    while done.load(Ordering::SeqCst) == 0 || busy.is_empty() {
        let t = Instant::now();
        prober.get_session(&idle).await.expect("session/get");
        busy.push(t.elapsed());
    }
    busy.sort();
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
    let cpu = (cpu_ticks(d.pid()) - cpu0) as f64 / ticks_per_sec();

    println!(
        "many busy sessions: {SESSIONS} sessions x {chunks} chunks of 64 characters every 20 ms, \
         {TUIS} TUIs watching {} each; daemon {}",
        SESSIONS / TUIS,
        sessiond_tests::binary().display()
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
        "| 100 sessions streaming | {} | {:.3} | {:.3} |",
        busy.len(),
        pct(&busy, 0.5),
        pct(&busy, 0.99)
    );
    println!(
        "p99 busy / quiet: {:.2}x; chunks delivered {delivered} of {}; subscribers cut off \
         (resync or short): {resyncs} resyncs, {short} short; streaming took {:.2} s; \
         daemon CPU {:.2} s = {:.1} µs per delivered chunk",
        pct(&busy, 0.99) / pct(&quiet, 0.99),
        SESSIONS * chunks,
        elapsed.as_secs_f64(),
        cpu,
        cpu * 1e6 / delivered.max(1) as f64
    );
}
