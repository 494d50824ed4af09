//! The residency gate of a session: loading it, unloading it (close, evict, kill,
//! delete, expire, stop) and killing or deleting it while it is not live are
//! serialised per session. A load therefore never reads a record that an unload
//! or a kill in progress is about to change, and exactly one of two racing calls
//! decides. Steps on a live entry do not take the gate: they take the entry's lock.

use super::Store;
use sessiond_protocol::SessionId;
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Held while a session's residency may change; released on drop.
pub struct Gate<'a> {
    store: &'a Store,
    id: SessionId,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Drop for Gate<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        // The last holder removes the gate; a waiter keeps it (it holds a clone).
        self.store
            .gates
            .remove_if(&self.id, |_, m| Arc::strong_count(m) == 1);
    }
}

impl Store {
    fn gate_mutex(&self, id: &SessionId) -> Arc<Mutex<()>> {
        self.gates.entry(id.clone()).or_default().clone()
    }

    /// Waits for the session's gate.
    pub(crate) async fn gate(&self, id: &SessionId) -> Gate<'_> {
        let guard = self.gate_mutex(id).lock_owned().await;
        Gate {
            store: self,
            id: id.clone(),
            guard: Some(guard),
        }
    }

    /// The session's gate if nobody holds it (eviction and expiry skip a session
    /// whose residency is already changing).
    pub(crate) fn try_gate(&self, id: &SessionId) -> Option<Gate<'_>> {
        let guard = self.gate_mutex(id).try_lock_owned().ok();
        let gate = Gate {
            store: self,
            id: id.clone(),
            guard,
        };
        gate.guard.is_some().then_some(gate)
    }
}
