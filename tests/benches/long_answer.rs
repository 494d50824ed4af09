//! A long answer: one turn of 300,000 chunks (the echo agent, one character per
//! chunk, no delay) watched by one subscriber. Measured: the daemon's RSS before the
//! turn, its peak while the turn runs (sampled every 20 ms, and `VmHWM`), and after
//! the turn has ended: 1 s, 5 s and 12 s later (past tokio's 10 s keep-alive of idle
//! blocking threads, so their stacks are not counted).
//!
//! Run with `make bench`, or:
//! `cargo build --release -p sessiond --bin sessiond &&
//!  SESSIOND_BIN=$PWD/target/release/sessiond cargo bench -p sessiond-tests --bench long_answer`
//! `BENCH_SCALE=small` runs 30,000 chunks. `LONG_SUBSCRIBER_BUFFER=N` sets the
//! subscriber buffer (default 400,000; the daemon's own default is 1,024).
//! `LONG_SMAPS=1` also prints, 12 s after the turn, every mapping of the daemon with
//! at least 256 KiB resident (which arena or file holds what stays).

use sessiond_client::protocol::params::NewSessionParams;
use sessiond_client::Event;
use sessiond_tests::Daemon;
use std::time::{Duration, Instant};

/// A subscriber buffer above the chunk count, so the one reader is never cut off
/// and the figure is the daemon's own memory, not a dropped subscriber's.
fn config() -> String {
    let buffer = std::env::var("LONG_SUBSCRIBER_BUFFER").unwrap_or_else(|_| "400000".into());
    format!(
        "log = \"warn\"\nsubscriber_buffer = {buffer}\n\
         [agents.long]\nkind = \"echo\"\nchunk_chars = 1\n"
    )
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Prints each mapping of `pid` with at least `min_kib` resident, with its header line.
fn print_resident_mappings(pid: u32, min_kib: u64) {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut mapping = "";
    for line in smaps.lines() {
        // Header lines start with the address range; field lines with a name and ':'.
        if line
            .split_whitespace()
            .next()
            .is_some_and(|w| w.contains('-'))
        {
            mapping = line;
        } else if let Some(v) = line.strip_prefix("Rss:") {
            let kib: u64 = v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
            if kib >= min_kib {
                println!("{kib:>8} KiB resident  {mapping}");
            }
        }
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let chunks = match std::env::var("BENCH_SCALE").as_deref() {
        Ok("small") => 30_000,
        _ => 300_000,
    };
    let d = Daemon::start_with(&config()).await;
    let pid = d.pid();
    let c = d.tui().await;
    let id = c
        .new_session(NewSessionParams {
            agent: Some("long".into()),
            ..Default::default()
        })
        .await
        .expect("session/new")
        .session
        .session_id;
    let mut events = c.subscribe(&id, None).await.expect("subscribe");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = status_kib(pid, "VmRSS:");
    let anon_before = status_kib(pid, "RssAnon:");
    let hwm_before = status_kib(pid, "VmHWM:");

    // Sample RSS while the turn runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut peak, mut anon) = (0, 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(status_kib(pid, "VmRSS:"));
                anon = anon.max(status_kib(pid, "RssAnon:"));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (peak, anon)
        })
    };
    let start = Instant::now();
    c.prompt_text(&id, "y".repeat(chunks))
        .await
        .expect("prompt");
    let mut got = 0usize;
    let mut resyncs = 0usize;
    while let Some(ev) = events.next_event().await {
        match ev.expect("event").event {
            Event::AgentMessageChunk { .. } => got += 1,
            Event::Resync { .. } => resyncs += 1,
            Event::TurnComplete { .. } => break,
            _ => {}
        }
    }
    let took = start.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (sampled_peak, anon_peak) = sampler.await.expect("sampler");
    let hwm = status_kib(pid, "VmHWM:");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = status_kib(pid, "VmRSS:");
    let anon_after = status_kib(pid, "RssAnon:");
    // Later still: the writer trims once it has been idle, after the stored history
    // has caught up with the turn. Not synchronising: the figures are RSS at fixed
    // times after the turn, which is what "back near the baseline" asks about.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let later = status_kib(pid, "VmRSS:");
    let (anon_later, threads_later) = (status_kib(pid, "RssAnon:"), status_kib(pid, "Threads:"));
    // Past tokio's keep-alive of idle blocking threads (10 s): their stacks are gone.
    // A measurement time, as above, not a wait for an event.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let latest = status_kib(pid, "VmRSS:");
    let (anon_latest, threads_latest) = (status_kib(pid, "RssAnon:"), status_kib(pid, "Threads:"));
    if std::env::var_os("LONG_SMAPS").is_some() {
        print_resident_mappings(pid, 256);
    }

    println!(
        "a long answer: one turn of {chunks} chunks of 1 character, one subscriber; daemon {}",
        sessiond_tests::binary().display()
    );
    println!("| daemon RSS | MiB | growth over the baseline, MiB |");
    println!("|---|---:|---:|");
    println!("| before the turn | {:.1} | - |", mib(before));
    println!(
        "| peak during the turn (sampled every 20 ms) | {:.1} | {:.1} |",
        mib(sampled_peak),
        mib(sampled_peak.saturating_sub(before))
    );
    println!(
        "| VmHWM after the turn (before: {:.1}) | {:.1} | {:.1} |",
        mib(hwm_before),
        mib(hwm),
        mib(hwm.saturating_sub(before))
    );
    println!(
        "| 1 s after the turn | {:.1} | {:.1} |",
        mib(after),
        mib(after.saturating_sub(before))
    );
    println!(
        "| 5 s after the turn | {:.1} | {:.1} |",
        mib(later),
        mib(later.saturating_sub(before))
    );
    println!(
        "| 12 s after the turn | {:.1} | {:.1} |",
        mib(latest),
        mib(latest.saturating_sub(before))
    );
    println!(
        "anonymous 5 s after {:.1} MiB with {threads_later} threads; 12 s after {:.1} MiB with {threads_latest} threads",
        mib(anon_later),
        mib(anon_latest)
    );
    println!(
        "of which anonymous (RssAnon): before {:.1}, peak {:.1} (+{:.1}), 1 s after {:.1} (+{:.1}) MiB",
        mib(anon_before),
        mib(anon_peak),
        mib(anon_peak.saturating_sub(anon_before)),
        mib(anon_after),
        mib(anon_after.saturating_sub(anon_before))
    );
    println!(
        "chunks received {got} of {chunks}, resyncs {resyncs}, turn took {:.2} s",
        took.as_secs_f64()
    );
}
