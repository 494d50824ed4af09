//! Helpers shared by the protocol's round-trip tests: a JSON round trip that checks
//! the exact keys, and sample values of every record.
#![allow(dead_code)]

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sessiond_protocol::types::*;
use sessiond_protocol::{SessionId, TuiId, TurnId};
use std::collections::BTreeSet;
use std::fmt::Debug;
// ---------------------------------------------------------------------------------
// helpers

/// Serializes `v` to JSON text, checks the top-level keys are exactly `keys`, parses the
/// text back and checks it equals `v`. Returns the JSON value.
#[track_caller]
pub fn roundtrip<T>(v: &T, keys: &[&str]) -> Value
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let text = serde_json::to_string(v).expect("serialize");
    let value: Value = serde_json::from_str(&text).expect("valid json");
    let got: BTreeSet<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {text}"))
        .keys()
        .map(String::as_str)
        .collect();
    let want: BTreeSet<&str> = keys.iter().copied().collect();
    assert_eq!(got, want, "field names of {text}");
    let back: T = serde_json::from_str(&text).expect("deserialize");
    assert_eq!(&back, v, "round trip of {text}");
    value
}

/// Round trip of a value that is not an object (an enum string, say).
#[track_caller]
pub fn roundtrip_scalar<T>(v: &T, want: Value)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let value = serde_json::to_value(v).unwrap();
    assert_eq!(value, want);
    let back: T = serde_json::from_str(&serde_json::to_string(v).unwrap()).unwrap();
    assert_eq!(&back, v);
}

#[track_caller]
pub fn parse<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("parse")
}

pub const T0: &str = "2025-01-02T03:04:05Z";

pub fn usage(i: u64, o: u64) -> Usage {
    Usage {
        input_tokens: i,
        output_tokens: o,
    }
}

pub fn overrides() -> Overrides {
    Overrides {
        model: Some("gpt-x".into()),
        model_provider: Some("openai".into()),
        temperature: Some(0.25),
    }
}

pub fn session_info(turn: Option<TurnInfo>) -> SessionInfo {
    SessionInfo {
        session_id: SessionId::from("s-1"),
        agent: "echo".into(),
        mode: Mode::Code,
        title: Some("first line".into()),
        cwd: Some("/home/u/p".into()),
        owner_tui_id: Some(TuiId::from("tui-1")),
        status: SessionStatus::Active,
        live: true,
        turn,
        queued_turns: 2,
        pending_requests: 1,
        overrides: overrides(),
        created_at: T0.into(),
        updated_at: T0.into(),
        last_active_at: T0.into(),
        message_count: 7,
        round_count: 3,
        usage: usage(10, 20),
        ttl_secs: Some(600),
        watchers: 2,
    }
}

pub fn turn_info() -> TurnInfo {
    TurnInfo {
        turn_id: TurnId::from("t-1"),
        generation: 42,
        started_at: T0.into(),
        state: TurnState::AwaitingResponse,
    }
}

pub fn verdict(stop_reason: StopReason, cancel_cause: Option<CancelCause>) -> TurnVerdict {
    TurnVerdict {
        turn_id: TurnId::from("t-1"),
        stop_reason,
        cancel_cause,
        error: (stop_reason == StopReason::Failed).then(|| "agent exited".to_owned()),
        usage: usage(3, 4),
        content: "partial answer".into(),
    }
}

pub fn upload_entry() -> UploadEntry {
    UploadEntry {
        ref_id: format!("sha256:{}", "ab".repeat(32)),
        marker: "[attachment: a.png]".into(),
        workspace_path: "/data/uploads/ab/abab".into(),
        size_bytes: 1234,
        deduplicated: true,
        name: "a.png".into(),
        mime_type: Some("image/png".into()),
    }
}

pub const SESSION_INFO_KEYS: &[&str] = &[
    "session_id",
    "agent",
    "mode",
    "title",
    "cwd",
    "owner_tui_id",
    "status",
    "live",
    "turn",
    "queued_turns",
    "pending_requests",
    "overrides",
    "created_at",
    "updated_at",
    "last_active_at",
    "message_count",
    "round_count",
    "usage",
    // Addition to PROTOCOL.md.
    "ttl_secs",
    // Addition 11.2.
    "watchers",
];
pub const VERDICT_KEYS: &[&str] = &[
    "turn_id",
    "stop_reason",
    "cancel_cause",
    "error",
    "usage",
    "content",
];
pub const UPLOAD_KEYS: &[&str] = &[
    "ref_id",
    "marker",
    "workspace_path",
    "size_bytes",
    "deduplicated",
    // Additions to PROTOCOL.md.
    "name",
    "mime_type",
];
pub const OVERRIDES_KEYS: &[&str] = &["model", "model_provider", "temperature"];
pub const USAGE_KEYS: &[&str] = &["input_tokens", "output_tokens"];

// ---------------------------------------------------------------------------------
