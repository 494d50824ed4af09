//! The id rules of [`super::ids`] for WebSocket messages (PROTOCOL.md 11.4): a
//! message with an id jsonrpsee cannot carry goes on with a placeholder id, and a
//! message (or batch entry) with an id of a wrong type goes on as a call of
//! [`REFUSED_METHOD`], which does not exist. Every client message so maps to
//! exactly one message jsonrpsee answers, and the reply path puts the ids back and
//! turns the refused entries' `-32601` into `-32600` with `id: null`. One table per
//! connection, bounded.

use super::ids::{self, Class, PLACEHOLDER_PREFIX_ESCAPED};
use super::json_skim::{self, IdSpan};
use std::collections::HashMap;
use std::ops::Range;

/// The method a refused entry is sent to: JSON-RPC reserves `rpc.` names, and no
/// method has this one, so jsonrpsee answers `-32601` (replaced on the way out).
pub const REFUSED_METHOD: &str = "rpc.sessiond.refused";

/// At most this many rewritten calls wait for their reply on one connection.
pub const MAX_PENDING: usize = 4096;
/// At most this many bytes of original id text are kept for one connection.
pub const MAX_PENDING_BYTES: usize = 16 << 20;

/// What became of a client message.
#[derive(Debug, PartialEq)]
pub enum Rewrite {
    /// Pass it on as it is (the common case).
    Unchanged,
    /// Pass this on instead.
    Changed(Vec<u8>),
    /// Too many rewritten calls are waiting for replies: close the connection.
    TooMany,
}

enum Original {
    /// The id as the client wrote it.
    Id(Box<str>),
    /// The entry is answered `-32600` with `id: null`.
    Refused,
}

/// The placeholders of one connection whose replies have not come back yet.
#[derive(Default)]
pub struct Pending {
    next: u64,
    map: HashMap<u64, Original>,
    bytes: usize,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Applies the id rules to one client message.
    pub fn rewrite(&mut self, msg: &[u8]) -> Rewrite {
        // jsonrpsee reads a message starting with `{` as one call and `[` as a batch,
        // looking at its first 128 bytes only (else `-32700`, and no id to restore).
        let start = json_skim::skip_ws(msg, 0);
        if start >= 128 {
            return Rewrite::Unchanged;
        }
        let mut changes: Vec<(Range<usize>, Class)> = Vec::new();
        match msg.get(start) {
            Some(b'{') => match ids::classify(msg) {
                c @ (Class::Swap(_) | Class::Refuse) => changes.push((0..msg.len(), c)),
                _ => return Rewrite::Unchanged,
            },
            Some(b'[') => {
                // `changes` allocates only when an entry needs one.
                let scanned = json_skim::array_items(msg, |r| {
                    if let c @ (Class::Swap(_) | Class::Refuse) = ids::classify(&msg[r.clone()]) {
                        changes.push((r, c));
                    }
                });
                if scanned.is_none() || changes.is_empty() {
                    return Rewrite::Unchanged;
                }
            }
            _ => return Rewrite::Unchanged,
        }
        // Only here, when something must change: a message that carries the
        // placeholder prefix itself goes on untouched, as does one that is not JSON
        // (jsonrpsee answers `-32700`).
        if ids::has_placeholder(msg)
            || serde_json::from_slice::<serde::de::IgnoredAny>(msg).is_err()
        {
            return Rewrite::Unchanged;
        }
        let kept: usize = changes
            .iter()
            .map(|(_, c)| match c {
                Class::Swap(at) => at.len(),
                _ => 0,
            })
            .sum();
        if self.map.len() + changes.len() > MAX_PENDING || self.bytes + kept > MAX_PENDING_BYTES {
            return Rewrite::TooMany;
        }
        let mut out = Vec::with_capacity(msg.len() + 48 * changes.len());
        let mut copied = 0;
        for (entry, class) in changes {
            let n = self.next;
            self.next += 1;
            let placeholder = format!("\"{PLACEHOLDER_PREFIX_ESCAPED}{n}\"");
            match class {
                Class::Swap(at) => {
                    let (a, b) = (entry.start + at.start, entry.start + at.end);
                    let original = String::from_utf8_lossy(&msg[a..b]).into_owned();
                    self.bytes += original.len();
                    self.map.insert(n, Original::Id(original.into_boxed_str()));
                    out.extend_from_slice(&msg[copied..a]);
                    out.extend_from_slice(placeholder.as_bytes());
                    copied = b;
                }
                _ => {
                    self.map.insert(n, Original::Refused);
                    out.extend_from_slice(&msg[copied..entry.start]);
                    out.extend_from_slice(
                        format!(
                            r#"{{"jsonrpc":"2.0","method":"{REFUSED_METHOD}","id":{placeholder}}}"#
                        )
                        .as_bytes(),
                    );
                    copied = entry.end;
                }
            }
        }
        out.extend_from_slice(&msg[copied..]);
        Rewrite::Changed(out)
    }

    /// Puts the original ids back into a server message that answers rewritten
    /// calls; `None` when it answers none of them (pass it on as it is).
    pub fn restore(&mut self, reply: &[u8]) -> Option<Vec<u8>> {
        if self.map.is_empty() || !ids::has_placeholder(reply) {
            return None;
        }
        let mut changes: Vec<(Range<usize>, Range<usize>, Original)> = Vec::new();
        let mut look = |entry: Range<usize>, map: &mut HashMap<u64, Original>| {
            let Some(IdSpan::At(at)) = json_skim::object_id(&reply[entry.clone()]) else {
                return;
            };
            let id = &reply[entry.start + at.start..entry.start + at.end];
            let Some(n) = placeholder_number(id) else {
                return;
            };
            if let Some(original) = map.remove(&n) {
                changes.push((
                    entry.clone(),
                    entry.start + at.start..entry.start + at.end,
                    original,
                ));
            }
        };
        match reply.get(json_skim::skip_ws(reply, 0)) {
            Some(b'{') => look(0..reply.len(), &mut self.map),
            Some(b'[') => {
                let mut entries = Vec::new();
                json_skim::array_items(reply, |r| entries.push(r))?;
                for e in entries {
                    look(e, &mut self.map);
                }
            }
            _ => return None,
        }
        if changes.is_empty() {
            return None;
        }
        let mut out = Vec::with_capacity(reply.len() + 64);
        let mut copied = 0;
        for (entry, id, original) in changes {
            match original {
                Original::Id(text) => {
                    self.bytes -= text.len();
                    out.extend_from_slice(&reply[copied..id.start]);
                    out.extend_from_slice(text.as_bytes());
                    copied = id.end;
                }
                Original::Refused => {
                    out.extend_from_slice(&reply[copied..entry.start]);
                    out.extend_from_slice(ids::invalid_request().as_bytes());
                    copied = entry.end;
                }
            }
        }
        out.extend_from_slice(&reply[copied..]);
        Some(out)
    }
}

/// The number of a placeholder id as jsonrpsee writes it back (`"\u0000sessiond-id-N"`).
fn placeholder_number(id: &[u8]) -> Option<u64> {
    let inner = id.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    let digits = inner.strip_prefix(PLACEHOLDER_PREFIX_ESCAPED.as_bytes())?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn changed(p: &mut Pending, msg: &str) -> String {
        match p.rewrite(msg.as_bytes()) {
            Rewrite::Changed(v) => String::from_utf8(v).unwrap(),
            other => panic!("{other:?} for {msg}"),
        }
    }

    /// What jsonrpsee would answer to `sent`: `result` for calls, `-32601` for the
    /// refused method.
    fn answer(sent: &Value) -> Value {
        if sent["method"] == REFUSED_METHOD {
            json!({"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":sent["id"]})
        } else {
            json!({"jsonrpc":"2.0","result":"ok","id":sent["id"]})
        }
    }

    #[test]
    fn plain_ids_notifications_and_non_json_pass_unchanged() {
        let mut p = Pending::default();
        for msg in [
            r#"{"jsonrpc":"2.0","id":7,"method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":"s","method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"m"}"#,
            r#"{"jsonrpc":"2.0","method":"m"}"#,
            r#"[{"id":1,"method":"m"},{"method":"n"},3]"#,
            r#"{"id":-1,"method":"m""#,
            r#"{"id":01,"method":"m"}"#,
            r#"{"id":-1,"method":"\u0000sessiond-id-0"}"#,
            "",
            "garbage",
        ] {
            assert_eq!(p.rewrite(msg.as_bytes()), Rewrite::Unchanged, "{msg}");
        }
        let far = format!("{}{{\"id\":-1,\"method\":\"m\"}}", " ".repeat(128));
        assert_eq!(p.rewrite(far.as_bytes()), Rewrite::Unchanged);
        assert!(p.is_empty());
    }

    #[test]
    fn odd_numbers_come_back_as_written_and_wrong_types_as_invalid_request() {
        let mut p = Pending::default();
        for id in ["-1", "-0", "1.5", "1e3", "2E-2", "18446744073709551616"] {
            let msg = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"m","params":{{"id":1}}}}"#);
            let sent: Value = serde_json::from_str(&changed(&mut p, &msg)).unwrap();
            assert_eq!(sent["params"]["id"], 1);
            let back = p.restore(answer(&sent).to_string().as_bytes()).unwrap();
            let back = String::from_utf8(back).unwrap();
            let want = answer(&sent)
                .to_string()
                .replace(&sent["id"].to_string(), id);
            assert_eq!(back, want);
            assert!(back.contains(&format!(r#""id":{id}"#)), "{back}");
        }
        for id in ["true", "{}", "[1]"] {
            let msg = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"session/new"}}"#);
            let sent: Value = serde_json::from_str(&changed(&mut p, &msg)).unwrap();
            assert_eq!(sent["method"], REFUSED_METHOD);
            let back: Value =
                serde_json::from_slice(&p.restore(answer(&sent).to_string().as_bytes()).unwrap())
                    .unwrap();
            assert_eq!(back["error"]["code"], -32600);
            assert_eq!(back["id"], Value::Null);
        }
        assert!(p.is_empty());
        assert_eq!(p.bytes, 0);
    }

    #[test]
    fn a_batch_keeps_its_size_and_order() {
        let mut p = Pending::default();
        let msg = r#"[{"jsonrpc":"2.0","id":true,"method":"m"}, {"jsonrpc":"2.0","id":-2,"method":"m"},{"jsonrpc":"2.0","id":3,"method":"m"},{"jsonrpc":"2.0","method":"n"}]"#;
        let sent: Vec<Value> = serde_json::from_str(&changed(&mut p, msg)).unwrap();
        assert_eq!(sent.len(), 4);
        assert_eq!(sent[2]["id"], 3);
        let replies: Vec<Value> = sent[..3].iter().map(answer).collect();
        let back: Vec<Value> =
            serde_json::from_slice(&p.restore(json!(replies).to_string().as_bytes()).unwrap())
                .unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(
            (back[0]["error"]["code"].clone(), back[0]["id"].clone()),
            (json!(-32600), Value::Null)
        );
        assert_eq!(back[1]["id"], -2);
        assert_eq!(back[2]["id"], 3);
    }

    #[test]
    fn replies_that_answer_no_placeholder_pass_and_the_table_is_bounded() {
        let mut p = Pending::default();
        assert_eq!(
            p.restore(br#"{"id":1,"result":"\u0000sessiond-id-0"}"#),
            None
        );
        for _ in 0..MAX_PENDING {
            changed(&mut p, r#"{"id":-1,"method":"m"}"#);
        }
        assert_eq!(p.rewrite(br#"{"id":-1,"method":"m"}"#), Rewrite::TooMany);
        // A value that only looks like a placeholder is not an id: left alone.
        assert_eq!(
            p.restore(br#"{"id":1,"result":"\u0000sessiond-id-0"}"#),
            None
        );
        assert!(p
            .restore(br#"{"id":"\u0000sessiond-id-0","result":1}"#)
            .is_some());
    }
}
