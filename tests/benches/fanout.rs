//! Fan-out: one turn streaming 100,000 chunks (the echo agent, one character per
//! chunk) to 1, 10 and 100 subscribers, each on its own connection (the SDK over the
//! Unix socket). Measured: deliveries per second and the time until the last
//! subscriber has the last chunk, then the same with one more subscriber that
//! subscribes on a raw connection and never reads again. A fresh daemon per run, so
//! its peak RSS (`VmHWM`) belongs to that run.
//!
//! Run with `make bench`, or:
//! `CARGO_TARGET_DIR=target/rel cargo build --release -p sessiond --bin sessiond &&
//!  SESSIOND_BIN=$PWD/target/rel/release/sessiond CARGO_TARGET_DIR=target/rel cargo bench -p sessiond-tests --bench fanout`
//! `BENCH_SCALE=small` runs 10,000 chunks, one round. Full scale: the median of three
//! rounds, one round for 100 subscribers.

use sessiond_client::protocol::params::NewSessionParams;
use sessiond_client::{Event, EventStream};
use sessiond_tests::raw_ws::RawWs;
use sessiond_tests::Daemon;
use std::time::{Duration, Instant};

/// `subscriber_buffer` above the turn's chunk count: a reader that is slower than
/// the agent (which has no delay) queues up instead of being cut off, so every
/// reader receives every chunk and runs compare like for like. The stalled
/// subscriber's queue is bounded by the same figure.
const CONFIG: &str = "subscriber_buffer = 131072\n[agents.fan]\nkind = \"echo\"\nchunk_chars = 1\n";
const SUBSCRIBERS: [usize; 3] = [1, 10, 100];

struct Scale {
    chunks: usize,
    rounds: usize,
}

fn scale() -> Scale {
    match std::env::var("BENCH_SCALE").as_deref() {
        Ok("small") => Scale {
            chunks: 10_000,
            rounds: 1,
        },
        _ => Scale {
            chunks: 100_000,
            rounds: 3,
        },
    }
}

/// What one subscriber saw of the turn.
struct Seen {
    chunks: usize,
    resyncs: usize,
    /// When it had the turn's last chunk.
    last_chunk: Instant,
}

/// Reads until `turn_complete`.
async fn follow(mut events: EventStream) -> Seen {
    let mut seen = Seen {
        chunks: 0,
        resyncs: 0,
        last_chunk: Instant::now(),
    };
    while let Some(ev) = events.next_event().await {
        match ev.expect("event").event {
            Event::AgentMessageChunk { .. } => {
                seen.chunks += 1;
                seen.last_chunk = Instant::now();
            }
            Event::Resync { .. } => seen.resyncs += 1,
            Event::TurnComplete { .. } => return seen,
            _ => {}
        }
    }
    panic!("the stream ended before turn_complete");
}

struct Run {
    elapsed: Duration,
    min_chunks: usize,
    total_chunks: usize,
    resyncs: usize,
    peak_rss_kib: u64,
}

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

async fn run(subscribers: usize, stalled: bool, prompt: &str) -> Run {
    let d = Daemon::start_with(CONFIG).await;
    let owner = d.tui().await;
    let id = owner
        .new_session(NewSessionParams {
            agent: Some("fan".into()),
            ..Default::default()
        })
        .await
        .expect("session/new")
        .session
        .session_id;
    let mut clients = Vec::new();
    let mut streams = Vec::new();
    for _ in 0..subscribers {
        let c = d.client().await;
        streams.push(c.subscribe(&id, None).await.expect("subscribe"));
        clients.push(c);
    }
    // Subscribes, then never reads: its socket buffers fill and it falls behind.
    let mut stall = None;
    if stalled {
        let mut ws = RawWs::connect(&d.socket()).await.expect("raw connect");
        ws.subscribe(id.as_str(), None)
            .await
            .expect("raw subscribe");
        stall = Some(ws);
    }
    let readers: Vec<_> = streams
        .into_iter()
        .map(|s| tokio::spawn(follow(s)))
        .collect();
    let start = Instant::now();
    owner.prompt_text(&id, prompt).await.expect("prompt");
    let mut last = start;
    let mut min_chunks = usize::MAX;
    let mut resyncs = 0;
    let mut total_chunks = 0;
    for r in readers {
        let seen = r.await.expect("reader");
        last = last.max(seen.last_chunk);
        min_chunks = min_chunks.min(seen.chunks);
        total_chunks += seen.chunks;
        resyncs += seen.resyncs;
    }
    let peak_rss_kib = vm_hwm_kib(d.pid());
    drop(stall);
    Run {
        elapsed: last - start,
        min_chunks,
        total_chunks,
        resyncs,
        peak_rss_kib,
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let scale = scale();
    let prompt: String = "x".repeat(scale.chunks);
    println!(
        "fan-out of one turn of {} chunks; median of {} round(s) (1 for 100 subscribers); daemon {}",
        scale.chunks,
        scale.rounds,
        sessiond_tests::binary().display()
    );
    println!(
        "| subscribers | stalled | deliveries/s | last subscriber has the last chunk | fewest chunks received | resyncs | daemon peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|");
    for n in SUBSCRIBERS {
        for stalled in [false, true] {
            let mut runs = Vec::new();
            // 100 subscribers take long enough that one round is steady.
            let rounds = if n >= 100 { 1 } else { scale.rounds };
            for _ in 0..rounds {
                runs.push(run(n, stalled, &prompt).await);
            }
            runs.sort_by_key(|r| r.elapsed);
            let mid = &runs[runs.len() / 2];
            let peak = runs.iter().map(|r| r.peak_rss_kib).max().unwrap_or(0);
            // Chunks actually received (a subscriber that fell out of the replay
            // window skips some, after a `resync`).
            let deliveries = mid.total_chunks as f64 / mid.elapsed.as_secs_f64();
            println!(
                "| {n} | {} | {:.0} | {:.3} s | {} | {} | {:.1} MiB |",
                if stalled { "+1" } else { "no" },
                deliveries,
                mid.elapsed.as_secs_f64(),
                mid.min_chunks,
                mid.resyncs,
                peak as f64 / 1024.0
            );
        }
    }
}
