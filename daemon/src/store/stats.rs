//! Counters reported by `admin/stats`.

use sessiond_protocol::CancelCause;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Daemon-wide counters.
#[derive(Default)]
pub struct Stats {
    cancels: [AtomicU64; 6],
}

impl Stats {
    /// Counts one fired cancel token.
    pub fn count_cancel(&self, cause: CancelCause) {
        let i = CancelCause::ALL
            .iter()
            .position(|c| *c == cause)
            .unwrap_or(0);
        self.cancels[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Cancels by cause (every cause listed, zero included).
    pub fn cancels_by_cause(&self) -> BTreeMap<CancelCause, u64> {
        CancelCause::ALL
            .iter()
            .enumerate()
            .map(|(i, c)| (*c, self.cancels[i].load(Ordering::Relaxed)))
            .collect()
    }
}
