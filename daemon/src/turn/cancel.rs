//! Generation-tagged cancel tokens with a recorded cause (one per running turn).
//!
//! The cause is stored before the token fires, exactly once: a second `fire` is a
//! no-op and returns false, so a turn can never be cancelled twice or without cause.

use sessiond_protocol::CancelCause;
use std::sync::{Arc, OnceLock};
use tokio_util::sync::CancellationToken;

/// The cancel handle of one turn.
#[derive(Debug, Clone)]
pub struct CancelSlot {
    pub generation: u64,
    token: CancellationToken,
    cause: Arc<OnceLock<CancelCause>>,
}

impl CancelSlot {
    pub fn new(generation: u64) -> CancelSlot {
        CancelSlot {
            generation,
            token: CancellationToken::new(),
            cause: Arc::new(OnceLock::new()),
        }
    }

    /// Records `cause` and fires the token; false when it had already fired.
    pub fn fire(&self, cause: CancelCause) -> bool {
        if self.cause.set(cause).is_ok() {
            self.token.cancel();
            true
        } else {
            false
        }
    }

    /// The cause, once fired.
    pub fn cause(&self) -> Option<CancelCause> {
        self.cause.get().copied()
    }

    /// The token the turn watches.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }
}

/// The single registered token of a session (held inside its store entry).
#[derive(Debug, Default)]
pub struct TokenRegistry {
    current: Option<CancelSlot>,
}

impl TokenRegistry {
    /// Registers `slot`. A token still registered is cancelled with cause
    /// `superseded` and returned (with whether this call fired it).
    pub fn register(&mut self, slot: CancelSlot) -> Option<(CancelSlot, bool)> {
        let old = self.current.replace(slot)?;
        let fired = old.fire(CancelCause::Superseded);
        Some((old, fired))
    }

    /// Removes the token only if `generation` still matches (a stale removal is a no-op).
    pub fn remove(&mut self, generation: u64) -> bool {
        match &self.current {
            Some(s) if s.generation == generation => {
                self.current = None;
                true
            }
            _ => false,
        }
    }

    pub fn current(&self) -> Option<&CancelSlot> {
        self.current.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fire_records_cause_once() {
        let s = CancelSlot::new(1);
        assert!(s.cause().is_none());
        assert!(s.fire(CancelCause::ClientRpc));
        assert!(s.token().is_cancelled());
        assert!(!s.fire(CancelCause::AdminKill));
        assert_eq!(s.cause(), Some(CancelCause::ClientRpc));
    }

    #[test]
    fn stale_removal_is_a_no_op() {
        let mut r = TokenRegistry::default();
        r.register(CancelSlot::new(7));
        assert!(!r.remove(6));
        assert_eq!(r.current().map(|s| s.generation), Some(7));
        assert!(r.remove(7));
        assert!(r.current().is_none());
    }

    #[test]
    fn re_registration_supersedes() {
        let mut r = TokenRegistry::default();
        let first = CancelSlot::new(1);
        r.register(first.clone());
        let (old, fired) = r.register(CancelSlot::new(2)).expect("old token returned");
        assert!(fired);
        assert_eq!(old.generation, 1);
        assert_eq!(first.cause(), Some(CancelCause::Superseded));
        // The old turn ending later must not remove the new token.
        assert!(!r.remove(1));
        assert_eq!(r.current().map(|s| s.generation), Some(2));
    }
}
