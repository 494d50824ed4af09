//! Byte caps on paged replies: a `session/messages` page stops before the message
//! that would take it past the cap (always keeping the first, so that paging with
//! `from` moves on however large one message is).

/// The most content a `session/messages` page carries (docs/protocol.md).
pub const MESSAGES_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// The longest prefix of `items` whose sizes add up to at most `cap`, and never
/// fewer than one item.
pub fn cap_bytes<T>(items: Vec<T>, cap: usize, size: impl Fn(&T) -> usize) -> Vec<T> {
    let mut total = 0usize;
    let mut keep = 0;
    for item in &items {
        total = total.saturating_add(size(item));
        if keep > 0 && total > cap {
            break;
        }
        keep += 1;
    }
    let mut items = items;
    items.truncate(keep);
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_stops_at_the_cap_but_always_moves_on() {
        let len = |s: &String| s.len();
        let v = |n: &[usize]| n.iter().map(|&k| "x".repeat(k)).collect::<Vec<_>>();
        assert_eq!(cap_bytes(v(&[3, 3, 3]), 6, len).len(), 2);
        assert_eq!(cap_bytes(v(&[3, 3, 3]), 9, len).len(), 3);
        assert_eq!(cap_bytes(v(&[10, 1]), 6, len).len(), 1);
        assert!(cap_bytes(v(&[]), 6, len).is_empty());
    }
}
