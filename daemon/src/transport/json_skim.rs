//! A cheap look at the top level of a JSON-RPC message without parsing it: the
//! entries of a batch, and where an object's `id` member's value is. It allocates
//! nothing (unless a key is written with escapes) and is exact on valid JSON; on
//! text it cannot read it answers `None`. Used by [`super::ids`] on every message.

use std::ops::Range;

/// Where an object's `id` member is.
#[derive(Debug, PartialEq)]
pub enum IdSpan {
    /// No `id` member: a notification.
    Absent,
    /// The byte range of the `id` member's value.
    At(Range<usize>),
    /// More than one `id` member.
    Duplicate,
}

/// The index of the first byte at or after `i` that is not JSON whitespace.
pub fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// `b[i]` is a `"`: the index after the closing quote, and whether the string has
/// escapes.
fn skip_string(b: &[u8], i: usize) -> Option<(usize, bool)> {
    let mut j = i + 1;
    let mut escaped = false;
    while j < b.len() {
        match b[j] {
            b'"' => return Some((j + 1, escaped)),
            b'\\' => {
                escaped = true;
                j += 2;
            }
            _ => j += 1,
        }
    }
    None
}

/// The index after the value starting at `b[i]`.
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => skip_string(b, i).map(|(end, _)| end),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = skip_string(b, j)?.0;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// Where the `id` of the object `b` (whitespace around it allowed) is; `None` when
/// `b` is not an object.
pub fn object_id(b: &[u8]) -> Option<IdSpan> {
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    let mut found = IdSpan::Absent;
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let (key_end, escaped) = skip_string(b, i)?;
            let is_id = if escaped {
                serde_json::from_slice::<String>(&b[i..key_end]).ok()? == "id"
            } else {
                &b[i + 1..key_end - 1] == b"id"
            };
            i = skip_ws(b, key_end);
            if b.get(i) != Some(&b':') {
                return None;
            }
            let start = skip_ws(b, i + 1);
            let end = skip_value(b, start)?;
            if is_id {
                found = match found {
                    IdSpan::Absent => IdSpan::At(start..end),
                    _ => IdSpan::Duplicate,
                };
            }
            i = skip_ws(b, end);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_ws(b, i) == b.len()).then_some(found)
}

/// Calls `each` with the byte range of every entry of the array `b` (whitespace
/// around it allowed); `None` when `b` is not an array.
pub fn array_items(b: &[u8], mut each: impl FnMut(Range<usize>)) -> Option<()> {
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'[') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b']') {
        return (skip_ws(b, i + 1) == b.len()).then_some(());
    }
    loop {
        let end = skip_value(b, i)?;
        each(i..end);
        i = skip_ws(b, end);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b']') => return (skip_ws(b, i + 1) == b.len()).then_some(()),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_of(text: &str) -> Option<String> {
        match object_id(text.as_bytes())? {
            IdSpan::At(r) => Some(text[r].to_owned()),
            IdSpan::Absent => Some("<absent>".into()),
            IdSpan::Duplicate => Some("<duplicate>".into()),
        }
    }

    #[test]
    fn finds_the_top_level_id_only() {
        let cases = [
            (r#"{"id":1,"method":"m"}"#, "1"),
            (r#" { "method" : "m" , "id" : -1.5e3 } "#, "-1.5e3"),
            (r#"{"params":{"id":2},"id":"x\"}"}"#, r#""x\"}""#),
            (
                r#"{"params":["\"id\":3",{"id":[4]}],"id":[1,{"a":"]"}]}"#,
                r#"[1,{"a":"]"}]"#,
            ),
            (r#"{"\u0069d":true}"#, "true"),
            (r#"{"method":"m"}"#, "<absent>"),
            (r#"{}"#, "<absent>"),
            (r#"{"id":1,"id":2}"#, "<duplicate>"),
            (r#"{"id":1,"\u0069d":2}"#, "<duplicate>"),
        ];
        for (text, want) in cases {
            assert_eq!(id_of(text).as_deref(), Some(want), "{text}");
        }
    }

    #[test]
    fn says_none_when_it_is_not_an_object() {
        for text in [
            "",
            "[]",
            "1",
            "\"a\"",
            "{",
            r#"{"id":1"#,
            r#"{"id":1}x"#,
            r#"{"id"}"#,
        ] {
            assert_eq!(object_id(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn lists_batch_entries() {
        let text = r#" [ {"id":1} , 2,"x]", [3] ] "#;
        let mut items = Vec::new();
        array_items(text.as_bytes(), |r| items.push(text[r].to_owned())).unwrap();
        assert_eq!(items, [r#"{"id":1}"#, "2", r#""x]""#, "[3]"]);
        assert!(array_items(b"[]", |_| panic!()).is_some());
        assert!(array_items(b"[1,", |_| {}).is_none());
        assert!(array_items(b"{}", |_| {}).is_none());
    }
}
