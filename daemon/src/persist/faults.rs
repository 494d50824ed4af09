//! Faults a test can inject into the database writer: in unit tests through
//! `Db::fail_writes` and `Db::pause_writes`, and in debug builds of
//! the real daemon through [`FAIL_WRITES_ENV`].

use std::sync::atomic::{AtomicBool, Ordering};

/// Faults a test can inject into the writer (never set outside tests).
#[derive(Default)]
pub(crate) struct Faults {
    /// Every write fails, as on a full disk.
    pub failing: AtomicBool,
    /// Nothing is committed until cleared, as on a stalled disk.
    pub paused: AtomicBool,
    /// Debug builds: every write fails while this file exists ([`FAIL_WRITES_ENV`]).
    #[cfg(debug_assertions)]
    pub fail_while: Option<std::path::PathBuf>,
}

/// Debug builds only: the daemon's writes fail while the file this variable names
/// exists, so that the integration tests can fail a durable write of the real
/// binary at a chosen moment (issue 10, defect 2). A release build ignores it.
#[cfg(debug_assertions)]
pub const FAIL_WRITES_ENV: &str = "SESSIOND_TEST_FAIL_WRITES_WHILE";

impl Faults {
    /// The faults the environment asks for (none in a release build).
    pub fn from_env() -> Faults {
        Faults {
            #[cfg(debug_assertions)]
            fail_while: std::env::var_os(FAIL_WRITES_ENV).map(std::path::PathBuf::from),
            ..Faults::default()
        }
    }

    pub fn failing_now(&self) -> bool {
        #[cfg(debug_assertions)]
        if self.fail_while.as_deref().is_some_and(|p| p.exists()) {
            return true;
        }
        self.failing.load(Ordering::SeqCst)
    }
}
