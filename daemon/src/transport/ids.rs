//! JSON-RPC ids jsonrpsee cannot carry (PROTOCOL.md 11.4): it reads an id as a
//! string, `null` or a `u64`, so a negative, fractional, exponent or huge number id
//! would get no answer. Before a request body reaches jsonrpsee each such id is
//! replaced by a placeholder string, and the reply gets the original id back, as the
//! client wrote it. An id of a type JSON-RPC does not allow (`true`, an object, an
//! array) is answered here with `-32600` and `id: null`; a body that is not JSON
//! with `-32700` and `id: null`. [`classify`] is the rule for one entry, shared
//! with the WebSocket path ([`super::ws_ids`]).

use super::json_skim::{self, IdSpan};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// Placeholders start with a NUL character, which no sane client puts in an id; a
/// body that does anyway is left alone (its ids are passed on as they are).
pub const PLACEHOLDER_PREFIX: &str = "\u{0}sessiond-id-";

/// What to do with a request body.
#[derive(Debug, PartialEq)]
pub enum Prepared {
    /// Pass `body` to jsonrpsee; put `ids` back in its reply and add `errors` (entries
    /// answered here) to it. `expects_reply` is false when every entry passed on is
    /// a notification.
    Forward {
        body: Vec<u8>,
        ids: Ids,
        errors: Vec<String>,
        batch: bool,
        expects_reply: bool,
    },
    /// Answer with this body; nothing reaches jsonrpsee.
    Answer(String),
}

/// Placeholders and the ids they stand for, as raw JSON text.
#[derive(Debug, Default, PartialEq)]
pub struct Ids(Vec<(String, String)>);

impl Ids {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The error object of a request answered here.
pub fn error_reply(code: i64, message: &str) -> String {
    serde_json::json!({
        "jsonrpc": "2.0",
        "error": {"code": code, "message": message},
        "id": null,
    })
    .to_string()
}

pub fn invalid_request() -> String {
    error_reply(-32600, "invalid request")
}

/// Looks at a body before jsonrpsee does.
pub fn prepare(body: &[u8]) -> Prepared {
    let Ok(top) = serde_json::from_slice::<&RawValue>(body) else {
        return Prepared::Answer(error_reply(-32700, "parse error"));
    };
    let text = top.get();
    if has_placeholder(text.as_bytes()) {
        return Prepared::Forward {
            body: body.to_vec(),
            ids: Ids::default(),
            errors: Vec::new(),
            batch: text.starts_with('['),
            expects_reply: true,
        };
    }
    if text.starts_with('[') {
        let Ok(entries) = serde_json::from_str::<Vec<&RawValue>>(text) else {
            return Prepared::Answer(error_reply(-32700, "parse error"));
        };
        if entries.is_empty() {
            return Prepared::Answer(invalid_request());
        }
        let mut ids = Ids::default();
        let mut errors = Vec::new();
        let mut kept = Vec::new();
        let mut expects_reply = false;
        for e in entries {
            match entry(e, &mut ids) {
                Entry::Keep { text, request } => {
                    expects_reply |= request;
                    kept.push(text);
                }
                Entry::Refuse(err) => errors.push(err),
            }
        }
        if kept.is_empty() {
            return Prepared::Answer(format!("[{}]", errors.join(",")));
        }
        Prepared::Forward {
            body: format!("[{}]", kept.join(",")).into_bytes(),
            ids,
            errors,
            batch: true,
            expects_reply,
        }
    } else {
        let mut ids = Ids::default();
        match entry(top, &mut ids) {
            Entry::Keep { text, request } => Prepared::Forward {
                body: text.into_bytes(),
                ids,
                errors: Vec::new(),
                batch: false,
                expects_reply: request,
            },
            Entry::Refuse(err) => Prepared::Answer(err),
        }
    }
}

/// How the placeholder prefix looks inside JSON text.
pub const PLACEHOLDER_PREFIX_ESCAPED: &str = "\\u0000sessiond-id-";

enum Entry {
    /// Pass on `text`; `request` when it has an id (a reply is due).
    Keep { text: String, request: bool },
    /// Answer this error for it.
    Refuse(String),
}

fn entry(raw: &RawValue, ids: &mut Ids) -> Entry {
    let text = raw.get();
    match classify(text.as_bytes()) {
        // JSON, but not an object: not a request.
        Class::NotObject | Class::Refuse => Entry::Refuse(invalid_request()),
        Class::Notification => Entry::Keep {
            text: text.to_owned(),
            request: false,
        },
        Class::Plain => Entry::Keep {
            text: text.to_owned(),
            request: true,
        },
        Class::Swap(at) => {
            let placeholder = format!("{PLACEHOLDER_PREFIX}{}", ids.0.len());
            let quoted = serde_json::to_string(&placeholder).unwrap_or_default();
            ids.0.push((placeholder, text[at.clone()].to_owned()));
            Entry::Keep {
                text: format!("{}{quoted}{}", &text[..at.start], &text[at.end..]),
                request: true,
            }
        }
    }
}

/// What the id rules say about one message or batch entry.
#[derive(Debug, PartialEq)]
pub enum Class {
    /// Not a JSON object (or not JSON): jsonrpsee answers it, or it is refused.
    NotObject,
    /// No `id`: a notification, passed on as it is.
    Notification,
    /// An id jsonrpsee reads (a string, `null`, an integer in `0..2^64`).
    Plain,
    /// A number jsonrpsee cannot read, at this byte range: it travels as a
    /// placeholder.
    Swap(std::ops::Range<usize>),
    /// An id of a type JSON-RPC does not allow (`true`, an object, an array), or
    /// two ids: answered `-32600` with `id: null`.
    Refuse,
}

/// Applies the id rules to one entry (an object's text, whitespace around it
/// allowed). Cheap: no allocation, no parse (see [`super::json_skim`]).
pub fn classify(entry: &[u8]) -> Class {
    let at = match json_skim::object_id(entry) {
        None => return Class::NotObject,
        Some(IdSpan::Absent) => return Class::Notification,
        Some(IdSpan::Duplicate) => return Class::Refuse,
        Some(IdSpan::At(at)) => at,
    };
    let id = &entry[at.clone()];
    match id[0] {
        b'"' | b'n' => Class::Plain,
        b'0'..=b'9' if is_u64(id) => Class::Plain,
        b'-' | b'0'..=b'9' => Class::Swap(at),
        _ => Class::Refuse,
    }
}

/// Whether `n` is an integer literal that fits a `u64`, as jsonrpsee reads ids.
fn is_u64(n: &[u8]) -> bool {
    n.iter().all(u8::is_ascii_digit)
        && (n.len() == 1 || n[0] != b'0')
        && std::str::from_utf8(n).is_ok_and(|s| s.parse::<u64>().is_ok())
}

/// Whether `text` contains [`PLACEHOLDER_PREFIX_ESCAPED`].
pub fn has_placeholder(text: &[u8]) -> bool {
    let p = PLACEHOLDER_PREFIX_ESCAPED.as_bytes();
    text.iter()
        .enumerate()
        .any(|(i, &b)| b == b'\\' && text[i..].starts_with(p))
}

/// Puts the original ids back into a reply and adds the entries answered here.
/// A reply that is not the expected JSON is returned as it is.
pub fn restore(reply: &[u8], ids: &Ids, errors: &[String], batch: bool) -> Vec<u8> {
    if ids.is_empty() && errors.is_empty() {
        return reply.to_vec();
    }
    let Ok(text) = std::str::from_utf8(reply) else {
        return reply.to_vec();
    };
    let restore_one = |raw: &RawValue| -> String {
        let Ok(mut obj) = serde_json::from_str::<BTreeMap<String, &RawValue>>(raw.get()) else {
            return raw.get().to_owned();
        };
        let Some(id) = obj
            .get("id")
            .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
        else {
            return raw.get().to_owned();
        };
        let Some((_, original)) = ids.0.iter().find(|(p, _)| *p == id) else {
            return raw.get().to_owned();
        };
        let Ok(original) = RawValue::from_string(original.clone()) else {
            return raw.get().to_owned();
        };
        obj.insert("id".to_owned(), &original);
        serde_json::to_string(&obj).unwrap_or_else(|_| raw.get().to_owned())
    };
    let mut out: Vec<String> = if text.trim().is_empty() || text.trim() == "null" {
        Vec::new()
    } else if batch {
        match serde_json::from_str::<Vec<&RawValue>>(text) {
            Ok(items) => items
                .into_iter()
                .filter(|i| i.get() != "null")
                .map(restore_one)
                .collect(),
            // A batch answered with a single error object.
            Err(_) => match serde_json::from_str::<&RawValue>(text) {
                Ok(one) => vec![restore_one(one)],
                Err(_) => return reply.to_vec(),
            },
        }
    } else {
        match serde_json::from_str::<&RawValue>(text) {
            Ok(one) => return restore_one(one).into_bytes(),
            Err(_) => return reply.to_vec(),
        }
    };
    out.extend(errors.iter().cloned());
    if out.is_empty() {
        return Vec::new();
    }
    format!("[{}]", out.join(",")).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn forward(body: &str) -> (String, Ids, Vec<String>, bool, bool) {
        match prepare(body.as_bytes()) {
            Prepared::Forward {
                body,
                ids,
                errors,
                batch,
                expects_reply,
            } => (
                String::from_utf8(body).unwrap(),
                ids,
                errors,
                batch,
                expects_reply,
            ),
            Prepared::Answer(a) => panic!("answered {a} for {body}"),
        }
    }

    fn answer(body: &str) -> Value {
        match prepare(body.as_bytes()) {
            Prepared::Answer(a) => serde_json::from_str(&a).unwrap(),
            other => panic!("forwarded {other:?}"),
        }
    }

    #[test]
    fn ids_jsonrpsee_reads_pass_untouched() {
        for id in ["1", "0", "18446744073709551615", "\"a\"", "null"] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"m"}}"#);
            let (out, ids, _, _, reply) = forward(&body);
            assert_eq!(out, body);
            assert!(ids.is_empty() && reply);
        }
    }

    #[test]
    fn other_numbers_travel_as_placeholders_and_come_back_as_written() {
        for id in ["-1", "1.5", "1e3", "18446744073709551616", "-0", "1E+400"] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"m"}}"#);
            let (out, ids, errors, batch, _) = forward(&body);
            let sent: Value = serde_json::from_str(&out).unwrap();
            let placeholder = sent["id"].as_str().unwrap().to_owned();
            let reply = json!({"jsonrpc": "2.0", "result": 7, "id": placeholder}).to_string();
            let back = restore(reply.as_bytes(), &ids, &errors, batch);
            let back = String::from_utf8(back).unwrap();
            assert!(back.contains(&format!(r#""id":{id}"#)), "{back}");
        }
    }

    #[test]
    fn wrong_id_types_and_bad_json_are_answered_here() {
        for id in ["true", "{}", "[1]"] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"m"}}"#);
            let a = answer(&body);
            assert_eq!(a["error"]["code"], -32600, "{id}");
            assert_eq!(a["id"], Value::Null);
        }
        let a = answer("{not json");
        assert_eq!(
            (a["error"]["code"].clone(), a["id"].clone()),
            (json!(-32700), Value::Null)
        );
        assert_eq!(answer("[]")["error"]["code"], -32600);
        for not_a_request in ["\"text\"", "1", "null", "true"] {
            let a = answer(not_a_request);
            assert_eq!(a["error"]["code"], -32600, "{not_a_request}");
        }
    }

    #[test]
    fn a_batch_keeps_its_good_entries_and_adds_the_refused_ones() {
        let body = r#"[{"jsonrpc":"2.0","id":true,"method":"m"},{"jsonrpc":"2.0","id":-2,"method":"m"},{"jsonrpc":"2.0","method":"n"}]"#;
        let (out, ids, errors, batch, reply) = forward(body);
        assert!(batch && reply);
        assert_eq!(errors.len(), 1);
        let sent: Vec<Value> = serde_json::from_str(&out).unwrap();
        assert_eq!(sent.len(), 2);
        let p = sent[0]["id"].as_str().unwrap();
        let answered = json!([{"jsonrpc":"2.0","result":1,"id":p}]).to_string();
        let back: Vec<Value> =
            serde_json::from_slice(&restore(answered.as_bytes(), &ids, &errors, batch)).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0]["id"], json!(-2));
        assert_eq!(back[1]["error"]["code"], -32600);
    }

    #[test]
    fn notifications_expect_no_reply() {
        let (_, _, _, _, reply) = forward(r#"{"jsonrpc":"2.0","method":"n"}"#);
        assert!(!reply);
        let (_, _, _, _, reply) =
            forward(r#"[{"jsonrpc":"2.0","method":"n"},{"jsonrpc":"2.0","method":"o"}]"#);
        assert!(!reply);
    }
}
