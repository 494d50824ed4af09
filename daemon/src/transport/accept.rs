//! Accepting connections without spinning: errors that concern the listener (out of
//! file descriptors, out of memory) back off before the next `accept`, doubling up to
//! a ceiling, the way mini-redis's server does; and every accept error is logged at a
//! bounded rate, with a count of the ones not logged.

use std::io;
use std::time::{Duration, Instant};

/// First pause after a resource error.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
/// The pause never grows past this: a daemon keeps trying, slowly.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// At most one log line per this interval (plus how many were left out).
const LOG_EVERY: Duration = Duration::from_secs(5);

/// What to do after an `accept` error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterError {
    /// The error concerned one connection (it was aborted before we took it).
    Retry,
    /// The process or system is out of a resource: wait this long first.
    Wait(Duration),
}

/// Per-listener state: the current back-off and the log limiter.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
    log: RateLimit,
    what: &'static str,
}

impl Backoff {
    pub fn new(what: &'static str) -> Backoff {
        Backoff {
            next: FIRST_BACKOFF,
            log: RateLimit::new(LOG_EVERY),
            what,
        }
    }

    /// A connection was accepted: the next error starts the back-off afresh.
    pub fn succeeded(&mut self) {
        self.next = FIRST_BACKOFF;
    }

    /// Classifies `e`, logs it (rate-limited), and says how long to wait.
    pub fn failed(&mut self, e: &io::Error) -> AfterError {
        let after = if is_per_connection(e) {
            AfterError::Retry
        } else {
            let wait = self.next;
            self.next = (self.next * 2).min(MAX_BACKOFF);
            AfterError::Wait(wait)
        };
        if let Some(suppressed) = self.log.allow(Instant::now()) {
            tracing::warn!(
                listener = self.what,
                error = %e,
                suppressed,
                "accept failed; backing off"
            );
        }
        after
    }

    /// Waits as [`Backoff::failed`] decided.
    pub async fn pause(&mut self, e: &io::Error) {
        if let AfterError::Wait(d) = self.failed(e) {
            tokio::time::sleep(d).await;
        }
    }
}

/// Errors about one pending connection, after which the listener is fine.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNABORTED | libc::ECONNRESET | libc::EINTR | libc::EPROTO | libc::EPERM)
    )
}

/// Lets one event through per interval and counts the ones held back.
#[derive(Debug)]
pub struct RateLimit {
    every: Duration,
    last: Option<Instant>,
    held: u64,
}

impl RateLimit {
    pub fn new(every: Duration) -> RateLimit {
        RateLimit {
            every,
            last: None,
            held: 0,
        }
    }

    /// `Some(n)` when the event may be logged, `n` being how many were held back
    /// since the last one; `None` when it must not.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < self.every => {
                self.held += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.held))
            }
        }
    }
}

/// Whether a refused TCP request may be logged now (one line per interval, however
/// many peers knock): `Some(held back since the last line)`.
pub fn refusal_log_allowed() -> Option<u64> {
    static LIMIT: std::sync::Mutex<Option<RateLimit>> = std::sync::Mutex::new(None);
    let mut guard = LIMIT.lock().unwrap_or_else(|p| p.into_inner());
    guard
        .get_or_insert_with(|| RateLimit::new(LOG_EVERY))
        .allow(Instant::now())
}

/// The current soft limit on open files.
pub fn nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    lim.rlim_cur
}

/// Raises the soft limit on open files to the hard limit, so that the default 1024
/// of many systems does not cap the daemon's connections; returns the new soft limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
        lim = raised;
    }
    Ok(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_errors_back_off_doubling_to_a_ceiling_and_reset_on_success() {
        let mut b = Backoff::new("test");
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        let mut waits = Vec::new();
        for _ in 0..10 {
            match b.failed(&emfile) {
                AfterError::Wait(d) => waits.push(d),
                AfterError::Retry => panic!("EMFILE must back off"),
            }
        }
        assert_eq!(waits[0], FIRST_BACKOFF);
        assert_eq!(waits[1], FIRST_BACKOFF * 2);
        assert_eq!(*waits.last().unwrap(), MAX_BACKOFF);
        b.succeeded();
        assert_eq!(b.failed(&emfile), AfterError::Wait(FIRST_BACKOFF));
        let aborted = io::Error::from_raw_os_error(libc::ECONNABORTED);
        assert_eq!(b.failed(&aborted), AfterError::Retry);
    }

    #[test]
    fn the_log_limiter_lets_one_through_per_interval_and_counts_the_rest() {
        let mut r = RateLimit::new(Duration::from_secs(5));
        let t0 = Instant::now();
        assert_eq!(r.allow(t0), Some(0));
        for i in 1..100 {
            assert_eq!(r.allow(t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(r.allow(t0 + Duration::from_secs(5)), Some(99));
        assert_eq!(r.allow(t0 + Duration::from_secs(6)), None);
    }
}
