//! Every wire type of the protocol round-trips through JSON text, with the exact field
//! names, tags and strings of PROTOCOL.md: records and events (property tests are
//! in properties.rs, params and results in params_roundtrip.rs, names in
//! contract_names.rs).

mod common;

use common::*;

use serde_json::{json, Value};
use sessiond_protocol::events::{Event, EventEnvelope};
use sessiond_protocol::methods;
use sessiond_protocol::params::*;
use sessiond_protocol::types::*;
use sessiond_protocol::{DaemonUpdate, RequestId, SessionId, TuiId, TurnId};
use std::collections::BTreeSet;

// records

#[test]
fn session_info_without_turn() {
    let info = session_info(None);
    let v = roundtrip(&info, SESSION_INFO_KEYS);
    assert_eq!(v["turn"], Value::Null);
    assert_eq!(v["mode"], "code");
    assert_eq!(v["status"], "active");
    assert_eq!(v["owner_tui_id"], "tui-1");
    assert_eq!(v["usage"], json!({"input_tokens": 10, "output_tokens": 20}));
    assert_eq!(
        v["overrides"],
        json!({"model": "gpt-x", "model_provider": "openai", "temperature": 0.25})
    );
}

#[test]
fn session_info_with_turn() {
    let info = session_info(Some(turn_info()));
    let v = roundtrip(&info, SESSION_INFO_KEYS);
    assert_eq!(
        v["turn"],
        json!({"turn_id": "t-1", "generation": 42, "started_at": T0, "state": "awaiting_response"})
    );
    let running = TurnInfo {
        state: TurnState::Running,
        ..turn_info()
    };
    let v = roundtrip(&running, &["turn_id", "generation", "started_at", "state"]);
    assert_eq!(v["state"], "running");
}

#[test]
fn session_info_unowned_and_without_ttl_parses_without_the_addition() {
    let mut info = session_info(None);
    info.owner_tui_id = None;
    info.ttl_secs = None;
    let mut v = roundtrip(&info, SESSION_INFO_KEYS);
    assert_eq!(v["owner_tui_id"], Value::Null);
    // A peer that does not know the `ttl_secs` addition omits it.
    v.as_object_mut().unwrap().remove("ttl_secs");
    let back: SessionInfo = parse(v);
    assert_eq!(back, info);
}

#[test]
fn lifecycle_enums_use_the_contract_strings() {
    for (s, name) in [
        (SessionStatus::Created, "created"),
        (SessionStatus::Active, "active"),
        (SessionStatus::Expired, "expired"),
        (SessionStatus::Killed, "killed"),
    ] {
        roundtrip_scalar(&s, json!(name));
        assert_eq!(s.as_str(), name);
        assert_eq!(SessionStatus::parse(name), Some(s));
    }
    for (m, name) in [(Mode::Chat, "chat"), (Mode::Code, "code")] {
        roundtrip_scalar(&m, json!(name));
        assert_eq!(Mode::parse(name), Some(m));
    }
    assert_eq!(Mode::default(), Mode::Chat);
    for (r, name) in [
        (Role::User, "user"),
        (Role::Assistant, "assistant"),
        (Role::Tool, "tool"),
    ] {
        roundtrip_scalar(&r, json!(name));
        assert_eq!(Role::parse(name), Some(r));
    }
    for (k, name) in [
        (RequestKind::Permission, "permission"),
        (RequestKind::Question, "question"),
    ] {
        roundtrip_scalar(&k, json!(name));
    }
    for (r, name) in [
        (CloseReason::Closed, "closed"),
        (CloseReason::Evicted, "evicted"),
        (CloseReason::Killed, "killed"),
        (CloseReason::Expired, "expired"),
        (CloseReason::Deleted, "deleted"),
    ] {
        roundtrip_scalar(&r, json!(name));
    }
    assert!(serde_json::from_value::<SessionStatus>(json!("Active")).is_err());
    assert!(serde_json::from_value::<Mode>(json!("CHAT")).is_err());
}

#[test]
fn turn_verdict_for_every_stop_reason() {
    for (reason, name) in [
        (StopReason::EndTurn, "end_turn"),
        (StopReason::Cancelled, "cancelled"),
        (StopReason::Failed, "failed"),
        (StopReason::MaxTokens, "max_tokens"),
        (StopReason::MaxTurnRequests, "max_turn_requests"),
        (StopReason::Refusal, "refusal"),
    ] {
        let cause = (reason == StopReason::Cancelled).then_some(CancelCause::ClientRpc);
        let v = roundtrip(&verdict(reason, cause), VERDICT_KEYS);
        assert_eq!(v["stop_reason"], name);
        assert_eq!(reason.as_str(), name);
        assert_eq!(StopReason::parse(name), Some(reason));
        assert_eq!(v["usage"], json!({"input_tokens": 3, "output_tokens": 4}));
        if reason == StopReason::Failed {
            assert_eq!(v["error"], "agent exited");
        } else {
            assert_eq!(v["error"], Value::Null);
        }
    }
}

#[test]
fn turn_verdict_for_every_cancel_cause() {
    let table = [
        (CancelCause::ClientRpc, "client_rpc"),
        (CancelCause::AdminKill, "admin_kill"),
        (CancelCause::SessionRemoved, "session_removed"),
        (CancelCause::Superseded, "superseded"),
        (CancelCause::Shutdown, "shutdown"),
        (CancelCause::Timeout, "timeout"),
    ];
    assert_eq!(CancelCause::ALL.len(), table.len());
    for (cause, name) in table {
        assert!(CancelCause::ALL.contains(&cause));
        let v = roundtrip(&verdict(StopReason::Cancelled, Some(cause)), VERDICT_KEYS);
        assert_eq!(v["stop_reason"], "cancelled");
        assert_eq!(v["cancel_cause"], name);
        assert_eq!(cause.as_str(), name);
        assert_eq!(cause.to_string(), name);
        assert_eq!(CancelCause::parse(name), Some(cause));
    }
    assert_eq!(CancelCause::parse("nope"), None);
    let v = roundtrip(&verdict(StopReason::EndTurn, None), VERDICT_KEYS);
    assert_eq!(v["cancel_cause"], Value::Null);
}

#[test]
fn message_upload_entry_evicted_pending_request() {
    let m = Message {
        index: 4,
        role: Role::Assistant,
        content: "hi".into(),
        turn_id: Some(TurnId::from("t-1")),
        created_at: T0.into(),
        partial: false,
    };
    let v = roundtrip(&m, &["index", "role", "content", "turn_id", "created_at"]);
    assert_eq!(v["role"], "assistant");
    roundtrip(
        &Message {
            turn_id: None,
            role: Role::Tool,
            ..m
        },
        &["index", "role", "content", "turn_id", "created_at"],
    );

    let e = upload_entry();
    let v = roundtrip(&e, UPLOAD_KEYS);
    assert_eq!(v["ref_id"], format!("sha256:{}", "ab".repeat(32)));
    assert_eq!(v["deduplicated"], true);
    // Without the additions (a peer that only knows PROTOCOL.md's fields).
    let minimal: UploadEntry = parse(json!({
        "ref_id": "sha256:00", "marker": "m", "workspace_path": "/w", "size_bytes": 1,
        "deduplicated": false
    }));
    assert_eq!(minimal.name, "");
    assert_eq!(minimal.mime_type, None);

    let ev = Evicted {
        session_id: SessionId::from("s-2"),
        agent: "echo".into(),
    };
    roundtrip(&ev, &["session_id", "agent"]);

    let pr = PendingRequest {
        turn_id: TurnId::from("t-1"),
        request_id: RequestId::from("r-1"),
        kind: RequestKind::Question,
        prompt: "which?".into(),
        options: json!(["a", "b"]),
    };
    let v = roundtrip(&pr, &["turn_id", "request_id", "kind", "prompt", "options"]);
    assert_eq!(v["kind"], "question");
}

#[test]
fn ids_are_plain_strings() {
    roundtrip_scalar(&SessionId::from("abc"), json!("abc"));
    roundtrip_scalar(&TurnId::from("t"), json!("t"));
    roundtrip_scalar(&TuiId::from("u"), json!("u"));
    roundtrip_scalar(&RequestId::from("r"), json!("r"));
    assert!(serde_json::from_value::<SessionId>(json!(5)).is_err());
}

#[test]
fn overrides_fields_and_unknown_field() {
    let v = roundtrip(&overrides(), OVERRIDES_KEYS);
    assert_eq!(v["temperature"], 0.25);
    let empty: Overrides = parse(json!({}));
    assert_eq!(empty, Overrides::default());
    assert!(serde_json::from_value::<Overrides>(json!({"modle": "x"})).is_err());
}

// ---------------------------------------------------------------------------------
// events

/// One sample of every event variant, with its expected tag and field names. The match
/// in `tag_of` has no wildcard, so a new variant fails to compile until it is added.
fn event_samples() -> Vec<(Event, &'static str, &'static [&'static str])> {
    let t = || TurnId::from("t-1");
    vec![
        (
            Event::UserMessage {
                turn_id: t(),
                text: "hello".into(),
                attachments: vec![format!("sha256:{}", "0".repeat(64))],
            },
            "user_message",
            &["turn_id", "text", "attachments"],
        ),
        (
            Event::TurnStarted {
                turn_id: t(),
                generation: 9,
            },
            "turn_started",
            &["turn_id", "generation"],
        ),
        (
            Event::AgentMessageChunk {
                turn_id: t(),
                text: "he".into(),
            },
            "agent_message_chunk",
            &["turn_id", "text"],
        ),
        (
            Event::AgentThoughtChunk {
                turn_id: t(),
                text: "hmm".into(),
            },
            "agent_thought_chunk",
            &["turn_id", "text"],
        ),
        (
            Event::ToolCall {
                turn_id: t(),
                tool_call_id: "c1".into(),
                name: "ls".into(),
                input: json!({"dir": "."}),
            },
            "tool_call",
            &["turn_id", "tool_call_id", "name", "input"],
        ),
        (
            Event::ToolResult {
                turn_id: t(),
                tool_call_id: "c1".into(),
                output: json!("a\nb"),
                is_error: false,
            },
            "tool_result",
            &["turn_id", "tool_call_id", "output", "is_error"],
        ),
        (
            Event::Request {
                turn_id: t(),
                request_id: RequestId::from("r1"),
                kind: RequestKind::Permission,
                prompt: "run ls?".into(),
                options: json!(["allow", "deny"]),
            },
            "request",
            &["turn_id", "request_id", "kind", "prompt", "options"],
        ),
        (
            Event::RequestResolved {
                request_id: RequestId::from("r1"),
                response: json!("allow"),
                by_tui_id: Some(TuiId::from("tui-1")),
            },
            "request_resolved",
            &["request_id", "response", "by_tui_id"],
        ),
        (
            Event::TurnComplete {
                verdict: verdict(StopReason::Cancelled, Some(CancelCause::Superseded)),
            },
            "turn_complete",
            &["verdict"],
        ),
        (
            Event::OverridesChanged {
                overrides: overrides(),
            },
            "overrides_changed",
            &["overrides"],
        ),
        (
            Event::OwnerChanged {
                owner_tui_id: Some(TuiId::from("tui-2")),
                previous_owner_tui_id: None,
            },
            "owner_changed",
            &["owner_tui_id", "previous_owner_tui_id"],
        ),
        (
            Event::UploadAdded {
                entry: upload_entry(),
            },
            "upload_added",
            &["entry"],
        ),
        (
            Event::SessionClosed {
                reason: CloseReason::Evicted,
            },
            "session_closed",
            &["reason"],
        ),
        (Event::Resync { from_seq: 17 }, "resync", &["from_seq"]),
        (
            Event::ReplayComplete { head_seq: 18 },
            "replay_complete",
            &["head_seq"],
        ),
        (
            Event::TitleChanged {
                title: "renamed".into(),
            },
            "title_changed",
            &["title"],
        ),
        (
            Event::Plan {
                turn_id: t(),
                entries: json!([{"content": "read", "priority": "high", "status": "pending"}]),
            },
            "plan",
            &["turn_id", "entries"],
        ),
        (
            Event::AgentUpdate {
                turn_id: t(),
                kind: "current_mode_update".into(),
                data: json!({"currentModeId": "ask"}),
            },
            "agent_update",
            &["turn_id", "kind", "data"],
        ),
    ]
}

fn tag_of(e: &Event) -> &'static str {
    match e {
        Event::UserMessage { .. } => methods::event::USER_MESSAGE,
        Event::TurnStarted { .. } => methods::event::TURN_STARTED,
        Event::AgentMessageChunk { .. } => methods::event::AGENT_MESSAGE_CHUNK,
        Event::AgentThoughtChunk { .. } => methods::event::AGENT_THOUGHT_CHUNK,
        Event::ToolCall { .. } => methods::event::TOOL_CALL,
        Event::ToolResult { .. } => methods::event::TOOL_RESULT,
        Event::Request { .. } => methods::event::REQUEST,
        Event::RequestResolved { .. } => methods::event::REQUEST_RESOLVED,
        Event::TurnComplete { .. } => methods::event::TURN_COMPLETE,
        Event::OverridesChanged { .. } => methods::event::OVERRIDES_CHANGED,
        Event::OwnerChanged { .. } => methods::event::OWNER_CHANGED,
        Event::UploadAdded { .. } => methods::event::UPLOAD_ADDED,
        Event::SessionClosed { .. } => methods::event::SESSION_CLOSED,
        Event::Resync { .. } => methods::event::RESYNC,
        Event::ReplayComplete { .. } => methods::event::REPLAY_COMPLETE,
        Event::TitleChanged { .. } => methods::event::TITLE_CHANGED,
        Event::Plan { .. } => methods::event::PLAN,
        Event::AgentUpdate { .. } => methods::event::AGENT_UPDATE,
    }
}

#[test]
fn every_event_variant_round_trips_inside_an_envelope() {
    let samples = event_samples();
    let tags: BTreeSet<&str> = samples.iter().map(|(_, t, _)| *t).collect();
    assert_eq!(tags.len(), 18, "one sample per variant");
    for (seq, (event, tag, fields)) in samples.into_iter().enumerate() {
        let env = EventEnvelope {
            session_id: SessionId::from("s-1"),
            seq: seq as u64 + 1,
            at: T0.into(),
            event,
        };
        let v = roundtrip(&env, &["session_id", "seq", "at", "event"]);
        assert_eq!(v["seq"], seq as u64 + 1);
        assert_eq!(v["session_id"], "s-1");
        let ev = v["event"].as_object().unwrap();
        assert_eq!(ev["type"], tag);
        let mut want: BTreeSet<&str> = fields.iter().copied().collect();
        want.insert("type");
        let got: BTreeSet<&str> = ev.keys().map(String::as_str).collect();
        assert_eq!(got, want, "fields of {tag}");
        assert_eq!(env.event.type_name(), tag);
        assert_eq!(tag_of(&env.event), tag);
        // snake_case: lowercase ASCII and underscores only.
        assert!(
            tag.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{tag}"
        );
    }
}

#[test]
fn event_payloads_keep_their_nested_shapes() {
    let find = |tag: &str| {
        event_samples()
            .into_iter()
            .find(|(_, t, _)| *t == tag)
            .map(|(e, _, _)| serde_json::to_value(e).unwrap())
            .unwrap()
    };
    let tc = find("turn_complete");
    assert_eq!(tc["verdict"]["cancel_cause"], "superseded");
    assert_eq!(tc["verdict"]["stop_reason"], "cancelled");
    assert_eq!(find("session_closed")["reason"], "evicted");
    assert_eq!(find("request")["kind"], "permission");
    assert_eq!(find("owner_changed")["previous_owner_tui_id"], Value::Null);
    assert_eq!(find("upload_added")["entry"]["size_bytes"], 1234);
}

#[test]
fn unknown_event_types_are_rejected() {
    let bad = json!({"session_id": "s", "seq": 1, "at": T0, "event": {"type": "bogus"}});
    assert!(serde_json::from_value::<EventEnvelope>(bad).is_err());
    let camel = json!({"session_id": "s", "seq": 1, "at": T0,
        "event": {"type": "sessionClosed", "reason": "closed"}});
    assert!(serde_json::from_value::<EventEnvelope>(camel).is_err());
}

#[test]
fn daemon_updates_are_tagged_by_type() {
    let changed = DaemonUpdate::SessionChanged {
        session: Box::new(session_info(None)),
    };
    let v = roundtrip(&changed, &["type", "session"]);
    assert_eq!(v["type"], "session_changed");
    assert_eq!(v["session"]["watchers"], 2);
    let deleted = DaemonUpdate::SessionDeleted {
        session_id: SessionId::from("s-1"),
    };
    let v = roundtrip(&deleted, &["type", "session_id"]);
    assert_eq!(v["type"], "session_deleted");
    assert_eq!(deleted.session_id().as_str(), "s-1");
}

#[test]
fn a_partial_message_says_so_and_a_stored_one_omits_the_flag() {
    let m = Message {
        index: 3,
        role: Role::Assistant,
        content: "so far".into(),
        turn_id: Some(TurnId::from("t-1")),
        created_at: T0.into(),
        partial: true,
    };
    let v = roundtrip(
        &m,
        &[
            "index",
            "role",
            "content",
            "turn_id",
            "created_at",
            "partial",
        ],
    );
    assert_eq!(v["partial"], true);
    // A result without `seq` (an older daemon) parses with seq 0.
    let r: MessagesResult = parse(json!({"messages": [], "total": 0}));
    assert_eq!(r.seq, 0);
}
