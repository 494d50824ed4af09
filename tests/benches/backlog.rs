//! Storage backlog of a fast agent: one session streams a reply of many tiny chunks
//! (the echo agent with no delay, one character per chunk) while another client
//! creates sessions (each `session/new` waits for its commit). Reports the daemon's
//! RSS over the turn (sampled with `admin/stats`) and the latency of the other
//! client's durable writes, against an idle baseline.
//!
//! Run with `SESSIOND_BIN=... cargo bench -p sessiond-tests --bench backlog`.
//! `BENCH_SCALE=small` streams 200,000 chunks instead of 2,000,000.

use sessiond_protocol::params::{NewSessionParams, PromptParams, PromptResult};
use sessiond_tests::Daemon;
use std::time::{Duration, Instant};

const CONFIG: &str = "max_live_sessions = 100000\nmax_turn_secs = 0\n\
[agents.fast]\nkind = \"echo\"\nchunk_chars = 1\nchunk_delay_ms = 0\n";

fn chunks() -> usize {
    match std::env::var("BENCH_SCALE").as_deref() {
        Ok("small") => 200_000,
        _ => 2_000_000,
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

async fn creates(c: &sessiond_client::Client, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        c.new_session(NewSessionParams {
            keep_siblings: Some(true),
            ..Default::default()
        })
        .await
        .expect("session/new");
        out.push(t.elapsed());
    }
    out.sort();
    out
}

fn report(what: &str, lat: &[Duration]) {
    println!(
        "{what:<34} n={:<5} p50={:>8.2?} p99={:>8.2?} max={:>8.2?}",
        lat.len(),
        pct(lat, 0.5),
        pct(lat, 0.99),
        lat.last().copied().unwrap_or_default()
    );
}

#[tokio::main]
async fn main() {
    let d = Daemon::start_with(CONFIG).await;
    let admin = d.client().await;
    let other = d.client().await;
    let streamer = d.client().await;
    let base_rss = admin.admin_stats().await.unwrap().rss_bytes;
    report("session/new, idle daemon", &creates(&other, 200).await);

    let id = streamer
        .new_session(NewSessionParams {
            agent: Some("fast".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .session
        .session_id;
    let n = chunks();
    let started = Instant::now();
    let turn = tokio::spawn(async move {
        let r = streamer
            .prompt(PromptParams {
                session_id: id,
                text: "z".repeat(n),
                attachments: None,
                interrupt: None,
                wait: Some(true),
            })
            .await
            .expect("prompt");
        match r {
            PromptResult::Finished(v) => v.content.len(),
            PromptResult::Accepted(_) => 0,
        }
    });
    let mut peak = base_rss;
    let mut lat = Vec::new();
    while !turn.is_finished() {
        let t = Instant::now();
        other
            .new_session(NewSessionParams {
                keep_siblings: Some(true),
                ..Default::default()
            })
            .await
            .expect("session/new");
        lat.push(t.elapsed());
        peak = peak.max(admin.admin_stats().await.unwrap().rss_bytes);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let len = turn.await.unwrap();
    let took = started.elapsed();
    lat.sort();
    let after = admin.admin_stats().await.unwrap().rss_bytes;
    report("session/new, while a turn streams", &lat);
    println!(
        "turn: {len} chunks in {took:.2?}; rss base {} MiB, peak {} MiB, after {} MiB",
        base_rss >> 20,
        peak >> 20,
        after >> 20
    );
}
