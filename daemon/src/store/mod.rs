//! The session store: a concurrent map of live session entries over the database,
//! with ownership, same-mode sibling eviction, limits and the lifecycle of sessions.
//!
//! Rules (see docs/architecture.md): everything that decides whether a session is
//! idle lives in its one [`Entry`], a state machine whose transitions are the only
//! changes to a live session; [`Store::step`] is the only code that runs them, under
//! the entry's map lock and never across an `.await`, queuing their writes in lock
//! order and handing back the commit to await after the lock is released. Changes
//! of residency (load, unload, kill or delete) go through the session's gate.

pub mod entry;
pub mod error;
pub mod event_writer;
mod host;
mod lifecycle;
pub mod limits;
pub mod list;
pub mod listed;
pub mod overrides;
mod rename;
pub mod residency;
pub mod retention;
mod retire;
pub mod session_fsm;
mod shutdown;
pub mod stats;
pub mod step;
pub mod turn_fsm;
mod turns;

pub use crate::record;
pub use crate::turn::cancel;

#[cfg(test)]
mod backlog_tests;
#[cfg(test)]
mod fsm_tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod upload_race_tests;

pub use entry::Entry;
pub use error::StoreError;
pub use lifecycle::{cut_title, MAX_TTL_SECS};
pub use list::ListFilter;
pub use turns::{Accepted, PromptRequest};

use crate::agent::Agents;
use crate::events::EventHub;
use crate::persist::{Db, Op};
use crate::record::SessionRecord;
use cancel::CancelSlot;
use dashmap::DashMap;
use event_writer::EventWriter;
use sessiond_config::Config;
use sessiond_protocol::{CancelCause, EventEnvelope, SessionId, TuiId};
use stats::Stats;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// How many event seqs a live session reserves durably ahead of use.
pub const SEQ_BLOCK: u64 = 8192;

/// Who is calling: the TUI identity of the connection, if it initialized.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub tui: Option<TuiId>,
    /// Over the Unix socket (path uploads allowed).
    pub local: bool,
}

impl Caller {
    /// Whether this caller may change a session owned by `owner`.
    pub fn may_mutate(&self, owner: Option<&TuiId>) -> bool {
        match owner {
            None => true,
            Some(o) => self.tui.as_ref() == Some(o),
        }
    }
}

/// The store.
pub struct Store {
    pub(crate) sessions: DashMap<SessionId, Entry>,
    /// Live sessions by owner: a hint for eviction (the entry is the truth).
    owned: DashMap<TuiId, HashSet<SessionId>>,
    /// Residency gates of sessions being loaded or unloaded (see `residency.rs`).
    gates: DashMap<SessionId, Arc<tokio::sync::Mutex<()>>>,
    pub(crate) db: Db,
    pub(crate) agents: Arc<Agents>,
    pub(crate) cfg: Arc<Config>,
    /// The limits a reload changes (the rest of `cfg` is read only at start-up).
    pub limits: limits::Limits,
    pub(crate) blobs_dir: PathBuf,
    generation: AtomicU64,
    incarnation: AtomicU64,
    /// Live slots taken (reserved before an entry is inserted).
    live: AtomicUsize,
    total: AtomicU64,
    shutting_down: AtomicBool,
    /// New prompts are refused (`SHUTTING_DOWN`): a stop is coming.
    draining: AtomicBool,
    pub stats: Stats,
    /// The daemon-wide session feed (`daemon/subscribe`), marked by every hub.
    pub feed: Arc<crate::events::Feed>,
}

impl Store {
    pub fn new(
        cfg: Arc<Config>,
        db: Db,
        agents: Arc<Agents>,
        blobs_dir: PathBuf,
        total_sessions: u64,
    ) -> Arc<Store> {
        Arc::new(Store {
            sessions: DashMap::new(),
            owned: DashMap::new(),
            gates: DashMap::new(),
            db,
            agents,
            limits: limits::Limits::from_config(&cfg),
            cfg,
            blobs_dir,
            generation: AtomicU64::new(0),
            incarnation: AtomicU64::new(0),
            live: AtomicUsize::new(0),
            total: AtomicU64::new(total_sessions),
            shutting_down: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            stats: Stats::default(),
            feed: Arc::default(),
        })
    }

    /// Continues turn generations after the highest one stored (at start-up).
    pub fn resume_generation(&self, last: u64) {
        self.generation.fetch_max(last, Ordering::Relaxed);
    }

    /// The next turn generation (daemon-wide, strictly increasing).
    pub fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Fires a token with a cause, counting it when it actually fired.
    pub fn fire(&self, slot: &CancelSlot, cause: CancelCause) -> bool {
        let fired = slot.fire(cause);
        if fired {
            self.stats.count_cancel(cause);
        }
        fired
    }

    pub fn live_count(&self) -> usize {
        self.sessions.len()
    }

    pub fn total_count(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    fn check_running(&self) -> Result<(), StoreError> {
        if self.is_shutting_down() {
            Err(StoreError::ShuttingDown)
        } else {
            Ok(())
        }
    }

    fn reserve_live_slot(&self) -> Result<(), StoreError> {
        let max = self.limits.max_live_sessions();
        self.live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map(|_| ())
            .map_err(|_| StoreError::LimitReached(max))
    }

    fn release_live_slot(&self) {
        let _ = self
            .live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    fn index_owner(&self, owner: Option<&TuiId>, id: &SessionId) {
        if let Some(o) = owner {
            self.owned.entry(o.clone()).or_default().insert(id.clone());
        }
    }

    fn unindex_owner(&self, owner: Option<&TuiId>, id: &SessionId) {
        if let Some(o) = owner {
            if let Some(mut set) = self.owned.get_mut(o) {
                set.remove(id);
            }
            self.owned.remove_if(o, |_, set| set.is_empty());
        }
    }

    /// Makes durable the seq reservation of a stored session about to go live: its
    /// hub starts after every seq any earlier process may have handed out, and may
    /// hand out [`SEQ_BLOCK`] more before it must extend the reservation. Fails with
    /// `NotFound` when the session was deleted (e.g. pruned) meanwhile.
    pub(crate) async fn reserve_seqs(&self, rec: &mut SessionRecord) -> Result<(), StoreError> {
        let start = rec.last_seq.max(rec.seq_reserved);
        let upto = start + SEQ_BLOCK;
        let op = Op::ReserveSeq {
            session_id: rec.id.clone(),
            upto,
            strict: true,
        };
        if let Err(e) = self.db.write(vec![op]).await {
            return match self.db.get_session(&rec.id).await? {
                None => Err(StoreError::NotFound(rec.id.clone())),
                Some(_) => Err(e.into()),
            };
        }
        rec.last_seq = start;
        rec.seq_reserved = upto;
        Ok(())
    }

    /// A hub for a session being loaded, primed with its persisted recent events,
    /// and the writer that appends every event it publishes to the history (see
    /// `event_writer.rs` and docs/persistence.md).
    fn new_hub(
        &self,
        rec: &SessionRecord,
        history: Vec<EventEnvelope>,
    ) -> (Arc<EventHub>, Arc<EventWriter>) {
        let writer = Arc::new(EventWriter::new(
            self.db.clone(),
            self.cfg.event_window as u64,
            rec.seq_reserved,
        ));
        let w = writer.clone();
        let feed = self.feed.clone();
        let sink: crate::events::EventSink = Box::new(move |env: &crate::events::Published| {
            feed.on_event(env);
            w.on_event(env)
        });
        let hub = Arc::new(EventHub::new(
            rec.id.clone(),
            rec.last_seq,
            history,
            self.cfg.event_window,
            self.cfg.subscriber_buffer,
            Some(sink),
        ));
        (hub, writer)
    }

    /// Inserts a loaded or new record as a live entry (the caller reserved a slot).
    fn insert_live(
        &self,
        rec: SessionRecord,
        history: Vec<EventEnvelope>,
    ) -> Result<(), StoreError> {
        let id = rec.id.clone();
        let owner = rec.owner.clone();
        let (hub, writer) = self.new_hub(&rec, history);
        let inc = self.incarnation.fetch_add(1, Ordering::Relaxed) + 1;
        match self.sessions.entry(id.clone()) {
            dashmap::mapref::entry::Entry::Occupied(_) => {
                // Someone else loaded it first; give our slot back.
                self.release_live_slot();
            }
            dashmap::mapref::entry::Entry::Vacant(v) => {
                v.insert(Entry::new(rec, inc, hub, writer));
                self.index_owner(owner.as_ref(), &id);
            }
        }
        Ok(())
    }
}
