//! Round trip of one call over the Unix socket: `daemon/status` on the real daemon
//! against a bare jsonrpsee server serving one trivial method on the same kind of
//! socket, with the same client, sequentially and with 64 calls in flight.
//!
//! Run with `make bench` (it sets SESSIOND_BIN to the release binary).

use futures::stream::{FuturesUnordered, StreamExt};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::rpc_params;
use sessiond_client::{Client, ConnectOptions};
use sessiond_tests::Daemon;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SEQUENTIAL: usize = 20_000;
const CONCURRENT: usize = 60_000;
const IN_FLIGHT: usize = 64;
const WARMUP: usize = 2_000;

struct Figures {
    p50: Duration,
    p99: Duration,
    per_sec: f64,
}

fn figures(mut lat: Vec<Duration>, total: Duration) -> Figures {
    lat.sort();
    let at = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize];
    Figures {
        p50: at(0.50),
        p99: at(0.99),
        per_sec: lat.len() as f64 / total.as_secs_f64(),
    }
}

async fn call(c: &Client) {
    let _: serde_json::Value = c
        .raw()
        .request("daemon/status", rpc_params![])
        .await
        .expect("call");
}

async fn sequential(c: &Client, n: usize) -> Figures {
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        call(c).await;
        lat.push(t.elapsed());
    }
    figures(lat, start.elapsed())
}

async fn concurrent(c: &Client, n: usize) -> Figures {
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    let mut inflight = FuturesUnordered::new();
    let mut sent = 0;
    while sent < n || !inflight.is_empty() {
        while sent < n && inflight.len() < IN_FLIGHT {
            let c = c.clone();
            inflight.push(async move {
                let t = Instant::now();
                call(&c).await;
                t.elapsed()
            });
            sent += 1;
        }
        if let Some(d) = inflight.next().await {
            lat.push(d);
        }
    }
    figures(lat, start.elapsed())
}

/// A bare jsonrpsee server with one trivial method, served per connection on a
/// Unix socket exactly like the daemon serves (WebSocket upgrade over hyper). It runs
/// in its own process, like the daemon, so both sides pay the same scheduling costs.
fn bare_server(path: &Path) -> jsonrpsee::server::ServerHandle {
    let mut module = jsonrpsee::RpcModule::new(());
    module
        .register_method("daemon/status", |_, _, _| serde_json::json!({"ok": true}))
        .unwrap();
    sessiond_tests::serve_bare_unix(path, module.into())
}

fn print_row(name: &str, f: &Figures) {
    println!(
        "| {name:<34} | {:>8.1} | {:>8.1} | {:>10.0} |",
        f.p50.as_secs_f64() * 1e6,
        f.p99.as_secs_f64() * 1e6,
        f.per_sec
    );
}

const BARE_ENV: &str = "ROUNDTRIP_BARE_SERVER";

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Some(path) = std::env::var_os(BARE_ENV) {
        rt.block_on(async {
            let handle = bare_server(Path::new(&path));
            handle.stopped().await;
        });
        return;
    }
    rt.block_on(async {
        let daemon = Daemon::start().await;
        let dir = tempfile::tempdir().unwrap();
        let bare_path: PathBuf = dir.path().join("bare.sock");
        let mut bare = std::process::Command::new(std::env::current_exe().unwrap())
            .env(BARE_ENV, &bare_path)
            .spawn()
            .expect("start the bare server process");
        sessiond_tests::wait_for("bare server socket", || async {
            tokio::net::UnixStream::connect(&bare_path).await.ok().map(|_| ())
        })
        .await;

        let d = Client::connect_unix(daemon.socket(), ConnectOptions::default()).await.unwrap();
        let b = Client::connect_unix(&bare_path, ConnectOptions::default()).await.unwrap();
        sequential(&d, WARMUP).await;
        sequential(&b, WARMUP).await;

        // Interleave the runs so machine noise hits both alike.
        let bs = sequential(&b, SEQUENTIAL).await;
        let ds = sequential(&d, SEQUENTIAL).await;
        let bc = concurrent(&b, CONCURRENT).await;
        let dc = concurrent(&d, CONCURRENT).await;

        println!("round trip over the Unix socket (WebSocket), same client, same run");
        println!("| {:<34} | {:>8} | {:>8} | {:>10} |", "server, load", "p50 µs", "p99 µs", "calls/s");
        println!("|{:-<36}|{:-<10}|{:-<10}|{:-<12}|", "", "", "", "");
        print_row("bare jsonrpsee, sequential", &bs);
        print_row("sessiond daemon/status, sequential", &ds);
        print_row("bare jsonrpsee, 64 in flight", &bc);
        print_row("sessiond daemon/status, 64 in flight", &dc);
        println!();
        println!(
            "ratio daemon/bare: sequential p50 {:.2}x, p99 {:.2}x, throughput {:.2}x; 64 in flight p50 {:.2}x, p99 {:.2}x, throughput {:.2}x",
            ds.p50.as_secs_f64() / bs.p50.as_secs_f64(),
            ds.p99.as_secs_f64() / bs.p99.as_secs_f64(),
            bs.per_sec / ds.per_sec,
            dc.p50.as_secs_f64() / bc.p50.as_secs_f64(),
            dc.p99.as_secs_f64() / bc.p99.as_secs_f64(),
            bc.per_sec / dc.per_sec,
        );
        let _ = bare.kill();
        let _ = bare.wait();
    });
}
