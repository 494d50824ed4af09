//! The limits a configuration reload changes at run time: read where they apply
//! (admitting a session or a turn, timing a turn, expiring a session), so the next
//! admission after a reload uses the new value. Sessions and turns already admitted
//! are not undone.

use sessiond_config::Config;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// `max_live_sessions`, `max_queued_turns`, `max_turn_secs`, `session_ttl_secs`.
#[derive(Debug, Default)]
pub struct Limits {
    max_live_sessions: AtomicUsize,
    max_queued_turns: AtomicUsize,
    max_turn_secs: AtomicU64,
    session_ttl_secs: AtomicU64,
}

impl Limits {
    pub fn from_config(cfg: &Config) -> Limits {
        let l = Limits::default();
        l.set(cfg);
        l
    }

    /// Takes the values of a (validated) configuration.
    pub fn set(&self, cfg: &Config) {
        self.max_live_sessions
            .store(cfg.max_live_sessions, Ordering::Relaxed);
        self.max_queued_turns
            .store(cfg.max_queued_turns, Ordering::Relaxed);
        self.max_turn_secs
            .store(cfg.max_turn_secs, Ordering::Relaxed);
        self.session_ttl_secs
            .store(cfg.session_ttl_secs, Ordering::Relaxed);
    }

    pub fn max_live_sessions(&self) -> usize {
        self.max_live_sessions.load(Ordering::Relaxed)
    }

    pub fn max_queued_turns(&self) -> usize {
        self.max_queued_turns.load(Ordering::Relaxed)
    }

    pub fn max_turn_secs(&self) -> u64 {
        self.max_turn_secs.load(Ordering::Relaxed)
    }

    pub fn session_ttl_secs(&self) -> u64 {
        self.session_ttl_secs.load(Ordering::Relaxed)
    }
}
