//! Large results serialised into one buffer first. jsonrpsee writes a reply through
//! an unbuffered writer that checks its size limit on every write, and serde_json
//! writes each key, quote and value on its own: for the 100 KB of a 200-session
//! listing that cost three times what writing into a `Vec` and copying it once
//! does. The bytes are the same (protocol types are JSON only: another serializer
//! would see serde_json's raw-value token instead of the fields).

use serde::ser::Error as _;
use serde::{Serialize, Serializer};

/// Serialises `value` to JSON text, then hands `s` the text in one piece.
pub(crate) fn serialize_buffered<T, S>(value: &T, s: S) -> Result<S::Ok, S::Error>
where
    T: Serialize + ?Sized,
    S: Serializer,
{
    match serde_json::value::to_raw_value(value) {
        Ok(raw) => raw.serialize(s),
        Err(e) => Err(S::Error::custom(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Plain {
        a: Vec<String>,
        b: Option<u32>,
    }

    struct Buffered(Plain);

    impl Serialize for Buffered {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            serialize_buffered(&self.0, s)
        }
    }

    #[test]
    fn the_buffered_text_is_the_plain_text_inside_any_json_document() {
        let v = Plain {
            a: vec!["x\"y\n\u{1}".into(), "é".into()],
            b: None,
        };
        let plain = serde_json::to_string(&[&v]).unwrap();
        let buffered = serde_json::to_string(&[&Buffered(Plain {
            a: v.a.clone(),
            b: v.b,
        })])
        .unwrap();
        assert_eq!(plain, buffered);
        let pretty = serde_json::to_value(Buffered(v)).unwrap();
        assert_eq!(pretty["a"][0], "x\"y\n\u{1}");
        assert!(pretty["b"].is_null());
    }
}
