//! `sessiond serve`: open the database, claim the socket, serve until a signal or
//! `admin/shutdown`, then stop gracefully (turns end with cause `shutdown`, verdicts
//! persisted, subscriptions closed, socket removed).

use crate::agent::Agents;
use crate::identity::Identity;
use crate::persist::Db;
use crate::state::Daemon;
use crate::store::Store;
use crate::transport;
use anyhow::Context;
use sessiond_config::Config;
use std::sync::Arc;
use std::time::Duration;

/// However the stop goes, cancelled turns get this long to end and be recorded.
const STOP_TURNS_BOUND: Duration = Duration::from_secs(30);

/// A daemon that is serving: its state, and a future that ends when it stopped.
pub struct Running {
    pub daemon: Arc<Daemon>,
    pub done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Starts the daemon (returns once the socket accepts connections).
pub async fn start(cfg: Config) -> anyhow::Result<Running> {
    let cfg = Arc::new(cfg);
    match transport::accept::raise_nofile_limit() {
        Ok(n) => tracing::debug!(nofile = n, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open file limit"),
    }
    // Socket activation: serve the socket systemd made; never unlink or replace it.
    let activated = crate::systemd::activated_listener()?;
    let socket = activated
        .as_ref()
        .and_then(crate::systemd::listener_path)
        .unwrap_or_else(|| cfg.socket_path());
    let data_dir = cfg.data_dir_path();
    let guard: Box<dyn Send> = match &activated {
        Some(_) => Box::new(crate::systemd::claim_lock(&socket)?),
        None => Box::new(transport::socket::claim(&socket)?),
    };
    let blobs = data_dir.join("uploads");
    crate::data_dir::prepare(&data_dir, &blobs)?;
    let cleaned = crate::uploads::clean_temp_files(&blobs).unwrap_or(0);
    if cleaned > 0 {
        tracing::info!(cleaned, "removed leftover temporary upload files");
    }
    let (db, recovery) = {
        let data_dir = data_dir.clone();
        let blobs = blobs.clone();
        let durability = cfg.durability;
        tokio::task::spawn_blocking(move || Db::open_with(&data_dir, &blobs, durability))
            .await
            .context("database task failed")?
            .context("cannot open the database")?
    };
    log_recovery(&recovery);
    {
        // Before any write of the daemon: the reaping commits when it found
        // leftovers, and a commit between another connection's read and write in
        // one transaction fails that transaction. A fresh database already has the
        // registry's table, so on a fresh data directory this writes nothing.
        let path = db.path().to_path_buf();
        match tokio::task::spawn_blocking(move || crate::agent::process::open_registry(&path))
            .await
            .context("process registry task failed")?
        {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                killed = n,
                "killed agent processes left behind by the previous daemon"
            ),
            Err(e) => tracing::warn!(error = %e, "agent processes will not be recorded"),
        }
    }
    let total = db.count_sessions().await?;
    let generation = db.max_generation().await?;
    let identity = Identity::load(&data_dir)?;
    let agents = Arc::new(Agents::from_config_with_db(&cfg, Some(db.clone())));
    let store = Store::new(cfg.clone(), db.clone(), agents, blobs, total);
    store.resume_generation(generation);
    let daemon = Daemon::new(
        cfg.clone(),
        store.clone(),
        identity,
        socket.clone(),
        data_dir,
    );

    let tcp = match &cfg.ws.listen {
        Some(listen) => {
            let bound = transport::tcp::bind(&daemon, listen).await?;
            *daemon.ws_listen.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(bound.addr.to_string());
            Some(bound)
        }
        None => None,
    };
    let listener = match activated {
        Some(l) => {
            l.set_nonblocking(true)?;
            tokio::net::UnixListener::from_std(l)?
        }
        None => transport::socket::bind(&socket)?,
    };
    let methods: jsonrpsee::Methods = crate::rpc::module(daemon.clone()).into();
    let (stop_handle, server_handle) = jsonrpsee::server::stop_channel();
    let accept_stop = tokio_util::sync::CancellationToken::new();
    let tcp = tcp.map(|bound| {
        tokio::spawn(transport::tcp::serve(
            bound,
            daemon.clone(),
            methods.clone(),
            stop_handle.clone(),
            accept_stop.clone(),
        ))
    });
    let unix = tokio::spawn(transport::unix::serve(
        listener,
        daemon.clone(),
        methods,
        stop_handle,
        accept_stop.clone(),
    ));
    let sweeper = tokio::spawn(sweep_loop(store.clone(), daemon.shutdown.clone()));
    let retention = crate::store::retention::spawn(store.clone(), daemon.shutdown.clone());
    tracing::info!(socket = %socket.display(), pid = std::process::id(), "sessiond serving");
    crate::systemd::notify_ready();

    let d = daemon.clone();
    let done = tokio::spawn(async move {
        d.shutdown.cancelled().await;
        tracing::info!("stopping");
        crate::systemd::notify_stopping();
        accept_stop.cancel();
        let grace = d.shutdown_grace.lock().map(|g| *g).unwrap_or_default();
        if !grace.is_zero() {
            let _ = tokio::time::timeout(grace, wait_turns_idle(&store)).await;
        }
        if tokio::time::timeout(STOP_TURNS_BOUND, store.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("turns did not stop in time; stopping without them");
        }
        sweeper.abort();
        if let Some(r) = retention {
            r.abort();
        }
        let _ = server_handle.stop();
        let _ = tokio::time::timeout(Duration::from_secs(5), server_handle.stopped()).await;
        let _ = unix.await;
        if let Some(tcp) = tcp {
            let _ = tcp.await;
        }
        drop(guard);
        let db = store.db().clone();
        tokio::task::spawn_blocking(move || db.close()).await.ok();
        tracing::info!("stopped");
        Ok(())
    });
    Ok(Running { daemon, done })
}

/// Runs until SIGTERM, SIGINT or `admin/shutdown`.
pub async fn serve(cfg: Config) -> anyhow::Result<()> {
    // Listen for SIGHUP before the socket answers: from then on it reloads.
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    let running = start(cfg).await?;
    let d = running.daemon.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        d.request_shutdown(Duration::ZERO);
    });
    match hup {
        Ok(hup) => {
            tokio::spawn(reload_on_sighup(running.daemon.clone(), hup));
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reload with `sessiond reload`")
        }
    }
    running.done.await.context("daemon task failed")?
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// SIGHUP reloads the configuration file; it never stops the daemon.
async fn reload_on_sighup(d: Arc<crate::state::Daemon>, mut hup: tokio::signal::unix::Signal) {
    while hup.recv().await.is_some() {
        let d = d.clone();
        let _ = tokio::task::spawn_blocking(move || crate::reload::reload(&d)).await;
    }
}

async fn wait_turns_idle(store: &Store) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        if store.sessions.iter().all(|e| e.is_idle()) {
            return;
        }
    }
}

async fn sweep_loop(store: Arc<Store>, stop: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => store.sweep_expired().await,
        }
    }
}

/// Start-up recovery already repaired the database (see `persist::recover`); say what.
fn log_recovery(recovery: &crate::persist::Recovery) {
    if recovery.seq_gaps > 0 {
        tracing::warn!(
            sessions = recovery.seq_gaps,
            "event seqs reserved by the previous process were skipped (it did not stop cleanly)"
        );
    }
    for (session_id, verdict) in &recovery.interrupted {
        tracing::warn!(session_id = %session_id, turn_id = %verdict.turn_id, "turn interrupted by the previous stop recorded as failed");
    }
}
