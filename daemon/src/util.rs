//! Small helpers shared across the daemon: clocks, random ids.

use rand::RngCore;

/// The current time as an RFC 3339 UTC string with a fixed width (sorts lexicographically).
pub fn now_rfc3339() -> String {
    format_time(chrono::Utc::now())
}

/// Formats a time the way every timestamp of the protocol is written.
pub fn format_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Parses a timestamp written by [`format_time`] (or any RFC 3339 string).
pub fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// A random id: `prefix` followed by `bytes` random bytes in lowercase hex.
pub fn random_id(prefix: &str, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    let mut s = String::with_capacity(prefix.len() + bytes * 2);
    s.push_str(prefix);
    s.push_str(&hex::encode(buf));
    s
}

/// Resident set size of this process in bytes (Linux), 0 when unknown.
pub fn rss_bytes() -> u64 {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_and_prefixed() {
        let a = random_id("ses_", 16);
        let b = random_id("ses_", 16);
        assert!(a.starts_with("ses_"));
        assert_eq!(a.len(), 4 + 32);
        assert_ne!(a, b);
    }

    #[test]
    fn timestamps_round_trip_and_sort() {
        let a = now_rfc3339();
        let t = parse_time(&a).expect("parses");
        assert_eq!(format_time(t), a);
        assert!(a.ends_with('Z'));
        let later = format_time(t + chrono::Duration::milliseconds(5));
        assert!(later > a);
    }
}
