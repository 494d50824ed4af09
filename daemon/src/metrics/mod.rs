//! Prometheus metrics of the daemon (text format, prometheus-client), and the
//! `/metrics`, `/healthz` and `/readyz` answers served on the Unix socket only.
//!
//! Counters that the code moves (events, cut-offs, resyncs, RPC and commit
//! latencies, turn durations) live here; gauges and the cancel counts are read from
//! the daemon's state at scrape time.

use crate::state::Daemon;
use dashmap::DashMap;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use sessiond_protocol::{Event, TurnId};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabel {
    cause: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    stop_reason: String,
}

struct Metrics {
    registry: Registry,
    sessions_live: Gauge,
    sessions_total: Gauge,
    turns_running: Gauge,
    turns_queued: Gauge,
    connections: Gauge,
    tuis: Gauge,
    subscribers: Gauge,
    rss_bytes: Gauge,
    cancels: Family<CauseLabel, Counter>,
    turn_seconds: Family<ReasonLabel, Histogram>,
    rpc_seconds: Family<MethodLabel, Histogram>,
    events_published: Counter,
    subscribers_cut_off: Counter,
    resyncs: Counter,
    commit_seconds: Histogram,
    /// When each running turn started (from its `turn_started` event).
    turn_started: DashMap<TurnId, Instant>,
    /// Serialises scrapes (the cancel counters catch up under it).
    scrape: Mutex<()>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Metrics {
        let mut r = Registry::with_prefix("sessiond");
        let gauge = |r: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            r.register(name, help, g.clone());
            g
        };
        let sessions_live = gauge(&mut r, "sessions_live", "Sessions loaded in memory");
        let sessions_total = gauge(&mut r, "sessions", "Sessions stored (live or not)");
        let turns_running = gauge(&mut r, "turns_running", "Turns running now");
        let turns_queued = gauge(&mut r, "turns_queued", "Turns waiting behind a running one");
        let connections = gauge(&mut r, "connections", "Open client connections");
        let tuis = gauge(&mut r, "tuis", "Connections that initialized as a TUI");
        let subscribers = gauge(&mut r, "subscribers", "Open event subscriptions");
        let rss_bytes = gauge(&mut r, "resident_memory_bytes", "Resident set size");
        let cancels = Family::<CauseLabel, Counter>::default();
        r.register("turn_cancels", "Cancelled turns by cause", cancels.clone());
        let turn_seconds = Family::<ReasonLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.01, 4.0, 10))
        });
        r.register(
            "turn_duration_seconds",
            "Turn durations by stop reason",
            turn_seconds.clone(),
        );
        let rpc_seconds = Family::<MethodLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 4.0, 10))
        });
        r.register(
            "rpc_duration_seconds",
            "JSON-RPC call latency by method",
            rpc_seconds.clone(),
        );
        let events_published = Counter::default();
        r.register(
            "events_published",
            "Session events published",
            events_published.clone(),
        );
        let subscribers_cut_off = Counter::default();
        r.register(
            "subscribers_cut_off",
            "Subscribers cut off for falling behind",
            subscribers_cut_off.clone(),
        );
        let resyncs = Counter::default();
        r.register(
            "resyncs",
            "Resync events sent to subscribers",
            resyncs.clone(),
        );
        let commit_seconds = Histogram::new(exponential_buckets(0.0001, 4.0, 10));
        r.register(
            "db_commit_duration_seconds",
            "Database commit latency (one group commit)",
            commit_seconds.clone(),
        );
        Metrics {
            registry: r,
            sessions_live,
            sessions_total,
            turns_running,
            turns_queued,
            connections,
            tuis,
            subscribers,
            rss_bytes,
            cancels,
            turn_seconds,
            rpc_seconds,
            events_published,
            subscribers_cut_off,
            resyncs,
            commit_seconds,
            turn_started: DashMap::new(),
            scrape: Mutex::new(()),
        }
    }
}

/// An event was published on a session's hub.
pub fn event_published(e: &Event) {
    let m = &*METRICS;
    m.events_published.inc();
    match e {
        Event::TurnStarted { turn_id, .. } => {
            m.turn_started.insert(turn_id.clone(), Instant::now());
        }
        Event::TurnComplete { verdict } => {
            if let Some((_, t)) = m.turn_started.remove(&verdict.turn_id) {
                m.turn_seconds
                    .get_or_create(&ReasonLabel {
                        stop_reason: verdict.stop_reason.as_str().to_owned(),
                    })
                    .observe(t.elapsed().as_secs_f64());
            }
        }
        _ => {}
    }
}

/// A subscriber was cut off for falling behind.
pub fn subscriber_cut_off() {
    METRICS.subscribers_cut_off.inc();
}

/// A `resync` was sent to a subscriber.
pub fn resync() {
    METRICS.resyncs.inc();
}

/// One database group commit took `d`.
pub fn commit(d: Duration) {
    METRICS.commit_seconds.observe(d.as_secs_f64());
}

/// The histogram of each method's calls, resolved once per method on its first call
/// (a call then costs no label allocation and no family lookup). Unknown method
/// names share one label, so a client cannot grow the label set.
static RPC_HISTOGRAMS: LazyLock<HashMap<&'static str, OnceLock<Histogram>>> = LazyLock::new(|| {
    sessiond_protocol::methods::ALL
        .iter()
        .chain(std::iter::once(&"unknown"))
        .map(|m| (*m, OnceLock::new()))
        .collect()
});

/// `method` as a `'static` name of the protocol (or `"unknown"`), without a copy.
pub fn static_method_name(method: &str) -> Option<&'static str> {
    RPC_HISTOGRAMS.get_key_value(method).map(|(name, _)| *name)
}

/// Times one JSON-RPC call: started by [`rpc_timer`], observed by [`RpcTimer::finish`].
pub struct RpcTimer {
    histogram: &'static Histogram,
    start: Instant,
}

/// Starts timing a call of `method`.
pub fn rpc_timer(method: &str) -> RpcTimer {
    let (name, slot) = match RPC_HISTOGRAMS.get_key_value(method) {
        Some((name, slot)) => (*name, slot),
        None => RPC_HISTOGRAMS
            .get_key_value("unknown")
            .map(|(n, s)| (*n, s))
            .expect("the unknown label is in the map"),
    };
    let histogram = slot.get_or_init(|| {
        METRICS
            .rpc_seconds
            .get_or_create(&MethodLabel {
                method: name.to_owned(),
            })
            .clone()
    });
    RpcTimer {
        histogram,
        start: Instant::now(),
    }
}

impl RpcTimer {
    /// The call answered.
    pub fn finish(self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

/// The Prometheus text exposition of every metric.
pub fn render(d: &Daemon) -> String {
    let m = &*METRICS;
    let _scrape = m.scrape.lock().unwrap_or_else(|p| p.into_inner());
    let store = &d.store;
    let (mut running, mut queued, mut subs) = (0i64, 0i64, 0i64);
    for e in store.sessions.iter() {
        running += i64::from(e.turn.is_some());
        queued += e.queue.len() as i64;
        subs += e.hub.subscriber_count() as i64;
    }
    m.sessions_live.set(store.live_count() as i64);
    m.sessions_total.set(store.total_count() as i64);
    m.turns_running.set(running);
    m.turns_queued.set(queued);
    m.subscribers.set(subs);
    m.connections
        .set(d.connections.load(Ordering::Relaxed) as i64);
    m.tuis.set(d.tuis.len() as i64);
    m.rss_bytes.set(crate::util::rss_bytes() as i64);
    for (cause, n) in store.stats.cancels_by_cause() {
        let c = m.cancels.get_or_create(&CauseLabel {
            cause: cause.as_str().to_owned(),
        });
        let have = c.get();
        if n > have {
            c.inc_by(n - have);
        }
    }
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &m.registry).is_err() {
        out = "# cannot encode metrics\n".into();
    }
    out
}

/// The answer to a plain HTTP `GET` of `/metrics`, `/healthz` or `/readyz` on the
/// Unix socket; `None` for every other request (JSON-RPC goes on as before).
pub fn http_answer<B>(
    req: &http::Request<B>,
    d: &Daemon,
) -> Option<http::Response<jsonrpsee::server::HttpBody>> {
    if req.method() != http::Method::GET || req.headers().contains_key(http::header::UPGRADE) {
        return None;
    }
    let (status, content_type, body) = match req.uri().path() {
        "/metrics" => (
            http::StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            render(d),
        ),
        "/healthz" => (
            http::StatusCode::OK,
            "text/plain; charset=utf-8",
            "ok\n".into(),
        ),
        "/readyz" => {
            if d.shutdown.is_cancelled() {
                (
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    "stopping\n".into(),
                )
            } else {
                (
                    http::StatusCode::OK,
                    "text/plain; charset=utf-8",
                    "ready\n".into(),
                )
            }
        }
        _ => return None,
    };
    let mut resp = http::Response::new(jsonrpsee::server::HttpBody::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    Some(resp)
}
