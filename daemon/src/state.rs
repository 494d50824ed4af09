//! The daemon's shared state: configuration, store, identity, connected TUIs, and
//! the shutdown signal. One per process, shared by every connection.

use crate::identity::Identity;
use crate::store::Store;
use dashmap::DashMap;
use sessiond_config::Config;
use sessiond_protocol::params::TuiInfo;
use sessiond_protocol::TuiId;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// How a connection reached the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Unix,
    Ws,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Unix => "unix",
            Transport::Ws => "ws",
        }
    }
}

/// Per-connection context, put into every request's extensions.
#[derive(Debug)]
pub struct ConnCtx {
    pub conn_id: u64,
    pub transport: Transport,
    /// `uid:<n> pid:<n>` for the Unix socket, `ip:port` for TCP.
    pub peer: String,
    pub connected_at: String,
    /// Set once by `initialize`.
    pub tui: OnceLock<TuiId>,
}

impl ConnCtx {
    pub fn new(conn_id: u64, transport: Transport, peer: String) -> ConnCtx {
        ConnCtx {
            conn_id,
            transport,
            peer,
            connected_at: crate::util::now_rfc3339(),
            tui: OnceLock::new(),
        }
    }

    pub fn caller(&self) -> crate::store::Caller {
        crate::store::Caller {
            tui: self.tui.get().cloned(),
            local: self.transport == Transport::Unix,
        }
    }
}

/// Shared daemon state.
pub struct Daemon {
    pub cfg: Arc<Config>,
    pub store: Arc<Store>,
    pub identity: Identity,
    pub started: Instant,
    pub socket: PathBuf,
    pub data_dir: PathBuf,
    /// The bound TCP WebSocket address, once listening.
    pub ws_listen: Mutex<Option<String>>,
    /// Connected TUIs by connection id.
    pub tuis: DashMap<u64, TuiInfo>,
    pub connections: AtomicU64,
    next_conn_id: AtomicU64,
    /// Cancelled to stop the daemon gracefully.
    pub shutdown: CancellationToken,
    /// How long a graceful stop lets running turns finish before cancelling them.
    pub shutdown_grace: Mutex<std::time::Duration>,
}

impl Daemon {
    pub fn new(
        cfg: Arc<Config>,
        store: Arc<Store>,
        identity: Identity,
        socket: PathBuf,
        data_dir: PathBuf,
    ) -> Arc<Daemon> {
        Arc::new(Daemon {
            cfg,
            store,
            identity,
            started: Instant::now(),
            socket,
            data_dir,
            ws_listen: Mutex::new(None),
            tuis: DashMap::new(),
            connections: AtomicU64::new(0),
            next_conn_id: AtomicU64::new(1),
            shutdown: CancellationToken::new(),
            shutdown_grace: Mutex::new(std::time::Duration::ZERO),
        })
    }

    /// A new connection's context (counted until [`Daemon::disconnected`]).
    pub fn connected(&self, transport: Transport, peer: String) -> Arc<ConnCtx> {
        self.connections.fetch_add(1, Ordering::Relaxed);
        let id = self.next_conn_id.fetch_add(1, Ordering::Relaxed);
        Arc::new(ConnCtx::new(id, transport, peer))
    }

    /// A connection closed: its TUI entry goes, its sessions stay.
    pub fn disconnected(&self, ctx: &ConnCtx) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
        self.tuis.remove(&ctx.conn_id);
    }

    /// Starts a graceful stop; running turns get `grace` to finish first.
    pub fn request_shutdown(&self, grace: std::time::Duration) {
        if let Ok(mut g) = self.shutdown_grace.lock() {
            *g = grace;
        }
        // New prompts are refused from now on, also during the grace period.
        self.store.drain();
        self.shutdown.cancel();
    }

    pub fn ws_listen(&self) -> Option<String> {
        self.ws_listen.lock().ok().and_then(|g| g.clone())
    }
}
