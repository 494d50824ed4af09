//! Gives freed heap memory back to the system. glibc keeps what a burst freed (a
//! long turn's events, queued in several threads' arenas) for reuse, so a daemon's
//! RSS stayed at its peak long after a long answer (issue 14). After a large
//! amount of history was written and the writer's queue ran empty, the writer
//! thread asks glibc to return free pages (`malloc_trim`), at most once a second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Operations written since the last trim after which a drained queue trims.
pub const TRIM_AFTER_OPS: u64 = 16_384;
/// The least time between two trims (each walks every arena).
const MIN_INTERVAL: Duration = Duration::from_secs(1);

static TRIMS: AtomicU64 = AtomicU64::new(0);
static LAST: Mutex<Option<Instant>> = Mutex::new(None);

/// Returns free heap pages to the system unless that was done less than a second
/// ago; true when it trimmed. Blocking (call it off the async runtime).
pub fn give_back() -> bool {
    {
        let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < MIN_INTERVAL) {
            return false;
        }
        *last = Some(Instant::now());
    }
    trim();
    TRIMS.fetch_add(1, Ordering::Relaxed);
    true
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
