//! Gives freed heap memory back to the system. glibc keeps what a burst freed (a
//! long turn's events, queued in several threads' arenas) for reuse, so a daemon's
//! RSS stayed near its peak long after a long answer (issue 14). The database
//! writer calls this once it has written much history and then gone idle.

use std::sync::atomic::{AtomicU64, Ordering};

/// Operations written since the last trim after which an idle writer trims.
pub const TRIM_AFTER_OPS: u64 = 16_384;
/// How long the writer must have had nothing to do before it trims: a steady
/// stream of writes never pays for trimming.
pub const IDLE_BEFORE_TRIM: std::time::Duration = std::time::Duration::from_millis(250);

static TRIMS: AtomicU64 = AtomicU64::new(0);

/// Returns free heap pages to the system (`malloc_trim`). Blocking: call it off the
/// async runtime.
pub fn give_back() {
    trim();
    TRIMS.fetch_add(1, Ordering::Relaxed);
}

/// How many times memory was given back since start.
pub fn trims() -> u64 {
    TRIMS.load(Ordering::Relaxed)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim has no preconditions; it only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
