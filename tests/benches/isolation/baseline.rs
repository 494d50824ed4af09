//! The baseline: all sessions in one `HashMap` behind one `tokio::sync::Mutex`.
//! Every handler locks the map for its whole operation. Where the daemon promises
//! durability before replying (`session/new`, `session/configure`, the start and the
//! end of a turn) the write is queued under the lock, so the stored order is the
//! order of the changes, and its commit is awaited: with `hold` (the plain way with
//! an async mutex) before the guard is dropped, otherwise after. A streamed chunk
//! locks the map, appends to the session, queues the event for the database
//! without waiting (as the daemon does) and unlocks. `session/get` locks the map and
//! clones the session's info. Methods the bench does not use are not registered.

use jsonrpsee::core::RpcResult;
use jsonrpsee::types::ErrorObjectOwned;
use sessiond_protocol::params::*;
use sessiond_protocol::*;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch, Mutex};

use super::{CHUNK_CHARS, CHUNK_DELAY_MS};

enum Write {
    Session(String, String),
    Event(String, u64, String),
}

struct Job {
    write: Write,
    done: Option<oneshot::Sender<()>>,
}

/// SQLite behind one writer thread that commits whatever is queued in one
/// transaction (group commit), like the daemon's writer.
#[derive(Clone)]
struct Db(std::sync::mpsc::Sender<Job>);

impl Db {
    fn open(path: PathBuf) -> Db {
        let conn = rusqlite::Connection::open(path).expect("open db");
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        conn.execute_batch(
            "CREATE TABLE sessions (id TEXT PRIMARY KEY, body TEXT NOT NULL);
             CREATE TABLE events (session_id TEXT NOT NULL, seq INTEGER NOT NULL,
                 body TEXT NOT NULL, PRIMARY KEY (session_id, seq)) WITHOUT ROWID;",
        )
        .unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::spawn(move || writer(conn, rx));
        Db(tx)
    }

    /// Queues a write; the receiver completes once it is committed.
    fn submit(&self, write: Write) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let _ = self.0.send(Job {
            write,
            done: Some(tx),
        });
        rx
    }

    fn write_detached(&self, write: Write) {
        let _ = self.0.send(Job { write, done: None });
    }
}

fn writer(mut conn: rusqlite::Connection, rx: std::sync::mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter().take(1023));
        let tx = conn.transaction().unwrap();
        for job in &batch {
            match &job.write {
                Write::Session(id, body) => tx
                    .prepare_cached("INSERT OR REPLACE INTO sessions (id, body) VALUES (?1, ?2)")
                    .unwrap()
                    .execute((id, body))
                    .unwrap(),
                Write::Event(id, seq, body) => tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO events (session_id, seq, body) VALUES (?1, ?2, ?3)",
                    )
                    .unwrap()
                    .execute((id, *seq as i64, body))
                    .unwrap(),
            };
        }
        tx.commit().unwrap();
        for job in batch {
            if let Some(done) = job.done {
                let _ = done.send(());
            }
        }
    }
}

struct Session {
    info: SessionInfo,
    seq: u64,
    cancel: Option<watch::Sender<bool>>,
}

struct Store {
    sessions: Mutex<HashMap<SessionId, Session>>,
    db: Db,
    ids: AtomicU64,
    hold: bool,
}

fn err(msg: &str) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32000, msg.to_owned(), None::<()>)
}

/// A fixed-width UTC timestamp with microseconds (seconds since the epoch; the
/// daemon writes RFC 3339 of the same width with chrono).
fn now() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{:016}.{:06}Z", t.as_secs(), t.subsec_micros())
}

impl Store {
    fn row(s: &Session) -> Write {
        Write::Session(
            s.info.session_id.0.clone(),
            serde_json::to_string(&s.info).unwrap(),
        )
    }

    /// Waits for a queued write's commit: with `hold`, before letting go of the
    /// lock (the plain async-mutex way); otherwise after.
    async fn commit<G>(&self, guard: G, done: oneshot::Receiver<()>) {
        if self.hold {
            let _ = done.await;
            drop(guard);
        } else {
            drop(guard);
            let _ = done.await;
        }
    }

    /// Appends an event to the session (the caller holds the lock) and queues it.
    fn publish(&self, s: &mut Session, event: Event) {
        s.seq += 1;
        let env = EventEnvelope {
            session_id: s.info.session_id.clone(),
            seq: s.seq,
            at: now(),
            event,
        };
        let body = serde_json::to_string(&env).unwrap();
        self.db
            .write_detached(Write::Event(env.session_id.0, env.seq, body));
    }

    async fn stream(
        self: Arc<Self>,
        id: SessionId,
        turn_id: TurnId,
        text: String,
        mut cancel: watch::Receiver<bool>,
        verdict: oneshot::Sender<TurnVerdict>,
    ) {
        let chars: Vec<char> = text.chars().collect();
        let mut content = String::new();
        let mut cancelled = false;
        for (i, piece) in chars.chunks(CHUNK_CHARS).enumerate() {
            if i > 0 {
                tokio::select! {
                    _ = cancel.changed() => { cancelled = true; break; }
                    _ = tokio::time::sleep(Duration::from_millis(CHUNK_DELAY_MS)) => {}
                }
            }
            let piece: String = piece.iter().collect();
            let mut map = self.sessions.lock().await;
            let Some(s) = map.get_mut(&id) else { return };
            content.push_str(&piece);
            let event = Event::AgentMessageChunk {
                turn_id: turn_id.clone(),
                text: piece,
            };
            self.publish(s, event);
        }
        let v = TurnVerdict {
            turn_id,
            stop_reason: if cancelled {
                StopReason::Cancelled
            } else {
                StopReason::EndTurn
            },
            cancel_cause: cancelled.then_some(CancelCause::ClientRpc),
            error: None,
            usage: Usage::default(),
            content,
        };
        let mut map = self.sessions.lock().await;
        let Some(s) = map.get_mut(&id) else { return };
        s.info.turn = None;
        s.cancel = None;
        s.info.message_count += 1;
        s.info.round_count += 1;
        s.info.updated_at = now();
        let done = self.db.submit(Self::row(s));
        self.publish(s, Event::TurnComplete { verdict: v.clone() });
        self.commit(map, done).await;
        let _ = verdict.send(v);
    }
}

impl Store {
    async fn create(&self, p: NewSessionParams) -> RpcResult<SessionResult> {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        let t = now();
        let info = SessionInfo {
            session_id: SessionId(format!("ses_{n:032x}")),
            agent: p.agent.unwrap_or_else(|| "echo".into()),
            mode: p.mode.unwrap_or_default(),
            title: p.title,
            cwd: p.cwd,
            owner_tui_id: None,
            status: SessionStatus::Created,
            live: true,
            turn: None,
            queued_turns: 0,
            pending_requests: 0,
            overrides: p.overrides.unwrap_or_default(),
            created_at: t.clone(),
            updated_at: t.clone(),
            last_active_at: t,
            message_count: 0,
            round_count: 0,
            usage: Usage::default(),
            ttl_secs: p.ttl_secs,
            watchers: 0,
        };
        let s = Session {
            info: info.clone(),
            seq: 0,
            cancel: None,
        };
        let mut map = self.sessions.lock().await;
        let done = self.db.submit(Store::row(&s));
        map.insert(info.session_id.clone(), s);
        self.commit(map, done).await;
        Ok(SessionResult {
            session: info,
            evicted: Vec::new(),
        })
    }

    async fn get(&self, id: SessionId) -> RpcResult<SessionInfo> {
        let map = self.sessions.lock().await;
        map.get(&id)
            .map(|s| s.info.clone())
            .ok_or_else(|| err("no such session"))
    }

    async fn configure(&self, p: ConfigureParams) -> RpcResult<ConfigureResult> {
        let mut map = self.sessions.lock().await;
        let s = map
            .get_mut(&p.session_id)
            .ok_or_else(|| err("no such session"))?;
        let (o, patch) = (&mut s.info.overrides, p.overrides);
        match patch.temperature {
            Patch::Set(t) if !(0.0..=2.0).contains(&t) => return Err(err("bad temperature")),
            Patch::Set(t) => o.temperature = Some(t),
            Patch::Clear => o.temperature = None,
            Patch::Absent => {}
        }
        for (field, p) in [
            (&mut o.model, patch.model),
            (&mut o.model_provider, patch.model_provider),
        ] {
            match p {
                Patch::Set(v) => *field = Some(v),
                Patch::Clear => *field = None,
                Patch::Absent => {}
            }
        }
        let overrides = o.clone();
        s.info.updated_at = now();
        let done = self.db.submit(Store::row(s));
        let event = Event::OverridesChanged {
            overrides: overrides.clone(),
        };
        self.publish(s, event);
        self.commit(map, done).await;
        Ok(ConfigureResult { overrides })
    }

    async fn prompt(self: Arc<Self>, p: PromptParams) -> RpcResult<PromptResult> {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        let turn_id = TurnId(format!("turn_{n:032x}"));
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let (verdict_tx, verdict_rx) = oneshot::channel();
        {
            let mut map = self.sessions.lock().await;
            let s = map
                .get_mut(&p.session_id)
                .ok_or_else(|| err("no such session"))?;
            if s.info.turn.is_some() {
                return Err(err("a turn is running"));
            }
            let t = now();
            s.info.turn = Some(TurnInfo {
                turn_id: turn_id.clone(),
                generation: n,
                started_at: t.clone(),
                state: TurnState::Running,
            });
            s.info.status = SessionStatus::Active;
            s.info.message_count += 1;
            s.info.last_active_at = t.clone();
            s.info.updated_at = t;
            s.cancel = Some(cancel_tx);
            let done = self.db.submit(Store::row(s));
            let event = Event::TurnStarted {
                turn_id: turn_id.clone(),
                generation: n,
            };
            self.publish(s, event);
            self.commit(map, done).await;
        }
        let task =
            self.clone()
                .stream(p.session_id, turn_id.clone(), p.text, cancel_rx, verdict_tx);
        tokio::spawn(task);
        if p.wait == Some(true) {
            let v = verdict_rx.await.map_err(|_| err("turn lost"))?;
            Ok(PromptResult::Finished(v))
        } else {
            Ok(PromptResult::Accepted(PromptAccepted {
                turn_id,
                queued_behind: 0,
            }))
        }
    }

    async fn cancel(&self, id: SessionId) -> RpcResult<CancelResult> {
        let map = self.sessions.lock().await;
        let s = map.get(&id).ok_or_else(|| err("no such session"))?;
        let turn_id = s.info.turn.as_ref().map(|t| t.turn_id.clone());
        if let Some(c) = &s.cancel {
            let _ = c.send(true);
        }
        Ok(CancelResult {
            cancelled: turn_id.is_some(),
            turn_id,
        })
    }
}

/// The five methods the bench calls, with the protocol's param and result types.
fn module(store: Store) -> jsonrpsee::RpcModule<Store> {
    let mut m = jsonrpsee::RpcModule::new(store);
    m.register_async_method("session/new", |p, s, _| async move {
        s.create(p.parse()?).await
    })
    .unwrap();
    m.register_async_method("session/get", |p, s, _| async move {
        s.get(p.parse::<SessionIdParams>()?.session_id).await
    })
    .unwrap();
    m.register_async_method("session/configure", |p, s, _| async move {
        s.configure(p.parse()?).await
    })
    .unwrap();
    m.register_async_method("session/prompt", |p, s, _| async move {
        s.prompt(p.parse()?).await
    })
    .unwrap();
    m.register_async_method("session/cancel", |p, s, _| async move {
        s.cancel(p.parse::<SessionIdParams>()?.session_id).await
    })
    .unwrap();
    m
}

/// Serves the baseline on `path` (WebSocket upgrade over hyper per connection,
/// like the daemon and the round-trip bench's bare server) until killed.
pub async fn serve(path: PathBuf, hold: bool) {
    let db = Db::open(path.with_extension("db"));
    let methods: jsonrpsee::Methods = module(Store {
        sessions: Mutex::new(HashMap::new()),
        db,
        ids: AtomicU64::new(1),
        hold,
    })
    .into();
    let _server = sessiond_tests::serve_bare_unix(&path, methods);
    std::future::pending::<()>().await;
}
