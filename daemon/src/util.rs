//! Small helpers shared across the daemon: clocks, random ids.

use rand::RngCore;

/// The current time as an RFC 3339 UTC string with a fixed width (sorts lexicographically).
pub fn now_rfc3339() -> String {
    format_time(chrono::Utc::now())
}

/// Formats a time the way every timestamp of the protocol is written
/// (`%Y-%m-%dT%H:%M:%S%.6fZ`). Every published event carries one, so the digits are
/// written directly: chrono's `format` parses its pattern on each call, about
/// 4,600 instructions a timestamp (callgrind, issue 14).
pub fn format_time(t: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::{Datelike, Timelike};
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    }
    // A leap second is carried as nanoseconds past one second; chrono prints it as
    // second 60 with its fraction within the second, as here.
    let leap = u32::from(t.nanosecond() >= 1_000_000_000);
    let micros = (t.nanosecond() % 1_000_000_000) / 1_000;
    let mut b = [0u8; 27];
    put_digits(&mut b[0..4], year as u32);
    b[4] = b'-';
    put_digits(&mut b[5..7], t.month());
    b[7] = b'-';
    put_digits(&mut b[8..10], t.day());
    b[10] = b'T';
    put_digits(&mut b[11..13], t.hour());
    b[13] = b':';
    put_digits(&mut b[14..16], t.minute());
    b[16] = b':';
    put_digits(&mut b[17..19], t.second() + leap);
    b[19] = b'.';
    put_digits(&mut b[20..26], micros);
    b[26] = b'Z';
    b.iter().map(|&c| c as char).collect()
}

/// Writes `v` in decimal into `out`, zero-padded to its whole width.
fn put_digits(out: &mut [u8], mut v: u32) {
    for c in out.iter_mut().rev() {
        *c = b'0' + (v % 10) as u8;
        v /= 10;
    }
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
    fn timestamps_are_written_as_chrono_writes_them() {
        use chrono::TimeZone;
        let pattern = "%Y-%m-%dT%H:%M:%S%.6fZ";
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_nano_opt(23, 59, 59, 1_234_567_891))
            .map(|n| n.and_utc())
            .unwrap();
        for t in [
            chrono::Utc.timestamp_opt(0, 0).unwrap(),
            chrono::Utc
                .timestamp_opt(1_764_567_890, 123_456_789)
                .unwrap(),
            chrono::Utc
                .timestamp_opt(253_402_300_799, 999_999_999)
                .unwrap(),
            chrono::Utc.timestamp_opt(-62_135_596_800, 5_000).unwrap(),
            chrono::Utc.timestamp_opt(253_402_300_800, 0).unwrap(),
            leap,
            chrono::Utc::now(),
        ] {
            assert_eq!(format_time(t), t.format(pattern).to_string(), "{t:?}");
        }
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
