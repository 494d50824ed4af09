//! Every wire type of the protocol round-trips through JSON text, with the exact field
//! names, tags and strings of PROTOCOL.md; error codes and method names match the
//! contract.

use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use sessiond_protocol::error::{code_name, codes};
use sessiond_protocol::events::{Event, EventEnvelope};
use sessiond_protocol::methods;
use sessiond_protocol::params::*;
use sessiond_protocol::patch::Patch;
use sessiond_protocol::types::*;
use sessiond_protocol::{DaemonUpdate, RequestId, SessionId, TuiId, TurnId, PROTOCOL_VERSION};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

// ---------------------------------------------------------------------------------
// helpers

/// Serializes `v` to JSON text, checks the top-level keys are exactly `keys`, parses the
/// text back and checks it equals `v`. Returns the JSON value.
#[track_caller]
fn roundtrip<T>(v: &T, keys: &[&str]) -> Value
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
fn roundtrip_scalar<T>(v: &T, want: Value)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let value = serde_json::to_value(v).unwrap();
    assert_eq!(value, want);
    let back: T = serde_json::from_str(&serde_json::to_string(v).unwrap()).unwrap();
    assert_eq!(&back, v);
}

#[track_caller]
fn parse<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("parse")
}

const T0: &str = "2025-01-02T03:04:05Z";

fn usage(i: u64, o: u64) -> Usage {
    Usage {
        input_tokens: i,
        output_tokens: o,
    }
}

fn overrides() -> Overrides {
    Overrides {
        model: Some("gpt-x".into()),
        model_provider: Some("openai".into()),
        temperature: Some(0.25),
    }
}

fn session_info(turn: Option<TurnInfo>) -> SessionInfo {
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

fn turn_info() -> TurnInfo {
    TurnInfo {
        turn_id: TurnId::from("t-1"),
        generation: 42,
        started_at: T0.into(),
        state: TurnState::AwaitingResponse,
    }
}

fn verdict(stop_reason: StopReason, cancel_cause: Option<CancelCause>) -> TurnVerdict {
    TurnVerdict {
        turn_id: TurnId::from("t-1"),
        stop_reason,
        cancel_cause,
        error: (stop_reason == StopReason::Failed).then(|| "agent exited".to_owned()),
        usage: usage(3, 4),
        content: "partial answer".into(),
    }
}

fn upload_entry() -> UploadEntry {
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

const SESSION_INFO_KEYS: &[&str] = &[
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
const VERDICT_KEYS: &[&str] = &[
    "turn_id",
    "stop_reason",
    "cancel_cause",
    "error",
    "usage",
    "content",
];
const UPLOAD_KEYS: &[&str] = &[
    "ref_id",
    "marker",
    "workspace_path",
    "size_bytes",
    "deduplicated",
    // Additions to PROTOCOL.md.
    "name",
    "mime_type",
];
const OVERRIDES_KEYS: &[&str] = &["model", "model_provider", "temperature"];
const USAGE_KEYS: &[&str] = &["input_tokens", "output_tokens"];

// ---------------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------------
// params and results

#[test]
fn initialize_params_and_result() {
    let p = InitializeParams {
        protocol_version: PROTOCOL_VERSION,
        client: Some(ClientInfo {
            name: "tui".into(),
            version: Some("1.2".into()),
        }),
        tui_id: Some(TuiId::from("tui-1")),
        tui_sig: Some("sig".into()),
    };
    let v = roundtrip(&p, &["protocol_version", "client", "tui_id", "tui_sig"]);
    assert_eq!(v["client"], json!({"name": "tui", "version": "1.2"}));
    assert_eq!(v["protocol_version"], 1);
    let bare: InitializeParams = parse(json!({"protocol_version": 1}));
    assert_eq!(bare.client, None);
    assert_eq!(bare.tui_id, None);
    let ci: ClientInfo = parse(json!({"name": "x"}));
    assert_eq!(ci.version, None);

    let r = InitializeResult {
        protocol_version: 1,
        server_version: "0.1.0".into(),
        server_pid: 99,
        daemon_id: "d".into(),
        tui_id: TuiId::from("tui-1"),
        tui_sig: "sig".into(),
        capabilities: methods::ALL.iter().map(|s| s.to_string()).collect(),
    };
    let v = roundtrip(
        &r,
        &[
            "protocol_version",
            "server_version",
            "server_pid",
            "daemon_id",
            "tui_id",
            "tui_sig",
            "capabilities",
        ],
    );
    assert_eq!(v["capabilities"][0], "initialize");
}

#[test]
fn daemon_status_result() {
    let s = DaemonStatus {
        server_version: "0.1.0".into(),
        protocol_version: 1,
        pid: 5,
        uptime_secs: 60,
        socket: "/run/s.sock".into(),
        ws_listen: Some("127.0.0.1:7000".into()),
        data_dir: "/data".into(),
        sessions_live: 1,
        sessions_total: 3,
    };
    let keys = [
        "server_version",
        "protocol_version",
        "pid",
        "uptime_secs",
        "socket",
        "ws_listen",
        "data_dir",
        "sessions_live",
        "sessions_total",
    ];
    roundtrip(&s, &keys);
    let v = roundtrip(
        &DaemonStatus {
            ws_listen: None,
            ..s
        },
        &keys,
    );
    assert_eq!(v["ws_listen"], Value::Null);
}

#[test]
fn new_load_and_session_result() {
    let keys = [
        "agent",
        "mode",
        "cwd",
        "title",
        "overrides",
        "ttl_secs",
        "keep_siblings",
    ];
    let p = NewSessionParams {
        agent: Some("echo".into()),
        mode: Some(Mode::Chat),
        cwd: Some("/w".into()),
        title: Some("t".into()),
        overrides: Some(overrides()),
        ttl_secs: Some(30),
        keep_siblings: Some(true),
    };
    let v = roundtrip(&p, &keys);
    assert_eq!(v["mode"], "chat");
    roundtrip(&NewSessionParams::default(), &keys);
    // Every field is optional.
    assert_eq!(
        parse::<NewSessionParams>(json!({})),
        NewSessionParams::default()
    );

    let l = LoadSessionParams {
        session_id: SessionId::from("s-1"),
        take_over: Some(true),
        keep_siblings: Some(false),
    };
    roundtrip(&l, &["session_id", "take_over", "keep_siblings"]);
    let bare: LoadSessionParams = parse(json!({"session_id": "s-1"}));
    assert_eq!((bare.take_over, bare.keep_siblings), (None, None));
    assert!(serde_json::from_value::<LoadSessionParams>(json!({})).is_err());

    let r = SessionResult {
        session: session_info(Some(turn_info())),
        evicted: vec![Evicted {
            session_id: SessionId::from("s-0"),
            agent: "echo".into(),
        }],
    };
    let v = roundtrip(&r, &["session", "evicted"]);
    assert_eq!(
        v["evicted"],
        json!([{"session_id": "s-0", "agent": "echo"}])
    );
}

#[test]
fn list_params_and_result() {
    let keys = [
        "owner",
        "mode",
        "live",
        "status",
        "limit",
        "cursor",
        "cwd",
        "title_contains",
    ];
    let p = ListParams {
        owner: Some("me".into()),
        mode: Some(Mode::Code),
        live: Some(false),
        status: Some(SessionStatus::Expired),
        limit: Some(10),
        cursor: Some("c".into()),
        cwd: Some("/w".into()),
        title_contains: Some("fix".into()),
    };
    let v = roundtrip(&p, &keys);
    assert_eq!(v["status"], "expired");
    assert_eq!(parse::<ListParams>(json!({})), ListParams::default());

    let r = ListResult {
        sessions: vec![session_info(None)],
        next_cursor: Some("c2".into()),
    };
    roundtrip(&r, &["sessions", "next_cursor"]);
    let v = roundtrip(
        &ListResult {
            sessions: vec![],
            next_cursor: None,
        },
        &["sessions", "next_cursor"],
    );
    assert_eq!(v["next_cursor"], Value::Null);
}

#[test]
fn session_id_messages_params_and_results() {
    roundtrip(
        &SessionIdParams {
            session_id: SessionId::from("s-1"),
        },
        &["session_id"],
    );
    let p = MessagesParams {
        session_id: SessionId::from("s-1"),
        from: Some(5),
        limit: Some(50),
    };
    roundtrip(&p, &["session_id", "from", "limit"]);
    let bare: MessagesParams = parse(json!({"session_id": "s-1"}));
    assert_eq!((bare.from, bare.limit), (None, None));

    let r = MessagesResult {
        messages: vec![Message {
            index: 0,
            role: Role::User,
            content: "hi".into(),
            turn_id: Some(TurnId::from("t-1")),
            created_at: T0.into(),
            partial: false,
        }],
        total: 1,
        seq: 9,
    };
    let v = roundtrip(&r, &["messages", "total", "seq"]);
    assert_eq!(v["messages"][0]["role"], "user");
}

#[test]
fn configure_close_delete() {
    let p = ConfigureParams {
        session_id: SessionId::from("s-1"),
        overrides: OverridesPatch {
            model: Patch::Set("m".into()),
            model_provider: Patch::Clear,
            temperature: Patch::Absent,
        },
    };
    let v = roundtrip(&p, &["session_id", "overrides"]);
    assert_eq!(
        v["overrides"],
        json!({"model": "m", "model_provider": null})
    );

    let v = roundtrip(
        &ConfigureResult {
            overrides: overrides(),
        },
        &["overrides"],
    );
    assert_eq!(v["overrides"]["model_provider"], "openai");

    let v = roundtrip(
        &CloseResult {
            closed: true,
            cancelled_turn: Some(TurnId::from("t-1")),
        },
        &["closed", "cancelled_turn"],
    );
    assert_eq!(v["cancelled_turn"], "t-1");
    roundtrip(
        &CloseResult {
            closed: true,
            cancelled_turn: None,
        },
        &["closed", "cancelled_turn"],
    );
    roundtrip(&DeleteResult { deleted: true }, &["deleted"]);
}

#[test]
fn prompt_cancel_respond() {
    let keys = ["session_id", "text", "attachments", "interrupt", "wait"];
    let p = PromptParams {
        session_id: SessionId::from("s-1"),
        text: "hello".into(),
        attachments: Some(vec!["sha256:00".into()]),
        interrupt: Some(true),
        wait: Some(false),
    };
    roundtrip(&p, &keys);
    let bare: PromptParams = parse(json!({"session_id": "s-1", "text": "x"}));
    assert_eq!(
        (bare.attachments, bare.interrupt, bare.wait),
        (None, None, None)
    );
    assert!(serde_json::from_value::<PromptParams>(json!({"session_id": "s-1"})).is_err());

    let a = PromptAccepted {
        turn_id: TurnId::from("t-2"),
        queued_behind: 1,
    };
    roundtrip(&a, &["turn_id", "queued_behind"]);

    roundtrip(
        &CancelResult {
            cancelled: true,
            turn_id: Some(TurnId::from("t-1")),
        },
        &["cancelled", "turn_id"],
    );
    let v = roundtrip(
        &CancelResult {
            cancelled: false,
            turn_id: None,
        },
        &["cancelled", "turn_id"],
    );
    assert_eq!(v, json!({"cancelled": false, "turn_id": null}));

    let r = RespondParams {
        session_id: SessionId::from("s-1"),
        request_id: Some(RequestId::from("r-1")),
        response: json!({"choice": "allow"}),
    };
    roundtrip(&r, &["session_id", "request_id", "response"]);
    let bare: RespondParams = parse(json!({"session_id": "s-1", "response": true}));
    assert_eq!(bare.request_id, None);
    assert_eq!(bare.response, json!(true));
    roundtrip(&RespondResult { remaining: 2 }, &["remaining"]);
}

#[test]
fn prompt_result_is_untagged() {
    // A verdict parses as Finished ...
    for (reason, cause) in [
        (StopReason::EndTurn, None),
        (StopReason::Cancelled, Some(CancelCause::Timeout)),
        (StopReason::Failed, None),
    ] {
        let v = verdict(reason, cause);
        let text = serde_json::to_string(&v).unwrap();
        let parsed: PromptResult = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, PromptResult::Finished(v.clone()));
        let v2 = roundtrip(&PromptResult::Finished(v), VERDICT_KEYS);
        assert!(v2.get("Finished").is_none());
    }
    // ... and {turn_id, queued_behind} as Accepted.
    let parsed: PromptResult = parse(json!({"turn_id": "t-3", "queued_behind": 2}));
    assert_eq!(
        parsed,
        PromptResult::Accepted(PromptAccepted {
            turn_id: TurnId::from("t-3"),
            queued_behind: 2
        })
    );
    let v = roundtrip(&parsed, &["turn_id", "queued_behind"]);
    assert_eq!(v, json!({"turn_id": "t-3", "queued_behind": 2}));
    assert!(serde_json::from_value::<PromptResult>(json!({"turn_id": "t"})).is_err());
}

#[test]
fn upload_params_and_results() {
    let keys = ["session_id", "name", "mime_type", "data_b64", "path"];
    let p = UploadParams {
        session_id: SessionId::from("s-1"),
        name: "a.txt".into(),
        mime_type: Some("text/plain".into()),
        data_b64: Some("aGk=".into()),
        path: None,
    };
    roundtrip(&p, &keys);
    let bare: UploadParams = parse(json!({"session_id": "s-1", "name": "a", "path": "/p"}));
    assert_eq!(bare.path.as_deref(), Some("/p"));
    assert_eq!((bare.mime_type, bare.data_b64), (None, None));

    let r = UploadsResult {
        uploads: vec![upload_entry()],
    };
    let v = roundtrip(&r, &["uploads"]);
    let entry_keys: BTreeSet<&str> = v["uploads"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(entry_keys, UPLOAD_KEYS.iter().copied().collect());
}

#[test]
fn subscribe_params() {
    let p = SubscribeParams {
        session_id: SessionId::from("s-1"),
        since_seq: Some(41),
    };
    roundtrip(&p, &["session_id", "since_seq"]);
    let bare: SubscribeParams = parse(json!({"session_id": "s-1"}));
    assert_eq!(bare.since_seq, None);
}

#[test]
fn admin_results() {
    let k = KillResult {
        killed: true,
        cancelled_turn: Some(TurnId::from("t-1")),
    };
    roundtrip(&k, &["killed", "cancelled_turn"]);

    let mut by_agent = BTreeMap::new();
    by_agent.insert("echo".to_owned(), 2);
    let mut cancels = BTreeMap::new();
    cancels.insert(CancelCause::ClientRpc, 3);
    cancels.insert(CancelCause::AdminKill, 1);
    let s = StatsResult {
        connections: 4,
        tuis: 2,
        sessions_live: 2,
        sessions_total: 9,
        by_agent,
        turns_running: 1,
        turns_queued: 0,
        cancels_by_cause: cancels,
        rss_bytes: 1 << 20,
    };
    let v = roundtrip(
        &s,
        &[
            "connections",
            "tuis",
            "sessions_live",
            "sessions_total",
            "by_agent",
            "turns_running",
            "turns_queued",
            "cancels_by_cause",
            "rss_bytes",
        ],
    );
    assert_eq!(v["by_agent"], json!({"echo": 2}));
    assert_eq!(
        v["cancels_by_cause"],
        json!({"client_rpc": 3, "admin_kill": 1})
    );

    let t = TuisResult {
        tuis: vec![TuiInfo {
            tui_id: TuiId::from("tui-1"),
            connected_at: T0.into(),
            transport: "unix".into(),
            peer: "uid:1000 pid:5".into(),
        }],
    };
    let v = roundtrip(&t, &["tuis"]);
    let keys: BTreeSet<&str> = v["tuis"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["tui_id", "connected_at", "transport", "peer"])
    );

    roundtrip(
        &ShutdownParams {
            grace_secs: Some(5),
        },
        &["grace_secs"],
    );
    assert_eq!(
        parse::<ShutdownParams>(json!({})),
        ShutdownParams::default()
    );
    let v = roundtrip(&OkResult { ok: true }, &["ok"]);
    assert_eq!(v, json!({"ok": true}));
}

// ---------------------------------------------------------------------------------
// OverridesPatch: absent vs null vs value

#[test]
fn overrides_patch_empty_object_is_all_absent() {
    let p: OverridesPatch = parse(json!({}));
    assert_eq!(p.model, Patch::Absent);
    assert_eq!(p.model_provider, Patch::Absent);
    assert_eq!(p.temperature, Patch::Absent);
    assert_eq!(serde_json::to_value(&p).unwrap(), json!({}));
}

#[test]
fn overrides_patch_null_clears_and_value_sets() {
    let p: OverridesPatch = parse(json!({"model": null}));
    assert_eq!(p.model, Patch::Clear);
    assert_eq!(p.model_provider, Patch::Absent);
    assert_eq!(p.temperature, Patch::Absent);

    let p: OverridesPatch = parse(json!({"model": "x"}));
    assert_eq!(p.model, Patch::Set("x".to_owned()));
    assert_eq!(p.temperature, Patch::Absent);

    let p: OverridesPatch =
        parse(json!({"model": "x", "model_provider": null, "temperature": 1.5}));
    assert_eq!(p.model, Patch::Set("x".to_owned()));
    assert_eq!(p.model_provider, Patch::Clear);
    assert_eq!(p.temperature, Patch::Set(1.5));
    // ... and back to the same JSON.
    assert_eq!(
        serde_json::to_value(&p).unwrap(),
        json!({"model": "x", "model_provider": null, "temperature": 1.5})
    );
}

#[test]
fn overrides_patch_rejects_unknown_fields_and_wrong_types() {
    assert!(serde_json::from_value::<OverridesPatch>(json!({"modle": "x"})).is_err());
    assert!(serde_json::from_value::<OverridesPatch>(json!({"temperature": "hot"})).is_err());
    assert!(serde_json::from_value::<OverridesPatch>(json!({"model": 3})).is_err());
}

#[test]
fn patch_applies_to_a_current_value() {
    let mut cur = Some("a".to_owned());
    Patch::Absent.apply_to(&mut cur);
    assert_eq!(cur.as_deref(), Some("a"));
    Patch::Set("b".to_owned()).apply_to(&mut cur);
    assert_eq!(cur.as_deref(), Some("b"));
    Patch::<String>::Clear.apply_to(&mut cur);
    assert_eq!(cur, None);
    assert!(Patch::<u8>::Absent.is_absent());
    assert!(!Patch::<u8>::Clear.is_absent());
    assert_eq!(Patch::Set(3).as_set(), Some(&3));
    assert_eq!(Patch::<u8>::Clear.as_set(), None);
}

// ---------------------------------------------------------------------------------
// error codes and method names

#[test]
fn error_codes_match_the_contract_table() {
    let table = [
        (-32040, "UNSUPPORTED_PROTOCOL", codes::UNSUPPORTED_PROTOCOL),
        (-32041, "SESSION_NOT_FOUND", codes::SESSION_NOT_FOUND),
        (
            -32042,
            "SESSION_LIMIT_REACHED",
            codes::SESSION_LIMIT_REACHED,
        ),
        (-32043, "SESSION_BUSY", codes::SESSION_BUSY),
        (-32044, "SESSION_NOT_OWNED", codes::SESSION_NOT_OWNED),
        (-32045, "SESSION_TERMINATED", codes::SESSION_TERMINATED),
        (-32046, "ADMIN_REQUIRED", codes::ADMIN_REQUIRED),
        (
            -32047,
            "INVALID_TUI_SIGNATURE",
            codes::INVALID_TUI_SIGNATURE,
        ),
        (-32048, "UPLOAD_TOO_LARGE", codes::UPLOAD_TOO_LARGE),
        (-32049, "NO_PENDING_REQUEST", codes::NO_PENDING_REQUEST),
        (-32050, "AGENT_UNAVAILABLE", codes::AGENT_UNAVAILABLE),
        (-32051, "SHUTTING_DOWN", codes::SHUTTING_DOWN),
        // Standard JSON-RPC codes.
        (-32700, "PARSE_ERROR", codes::PARSE_ERROR),
        (-32600, "INVALID_REQUEST", codes::INVALID_REQUEST),
        (-32601, "METHOD_NOT_FOUND", codes::METHOD_NOT_FOUND),
        (-32602, "INVALID_PARAMS", codes::INVALID_PARAMS),
        (-32603, "INTERNAL_ERROR", codes::INTERNAL_ERROR),
    ];
    let mut seen = BTreeSet::new();
    for (code, name, constant) in table {
        assert_eq!(constant, code, "{name}");
        assert_eq!(code_name(code), name);
        assert!(seen.insert(code), "duplicate code {code}");
    }
    assert_eq!(code_name(-32000), "ERROR");
}

#[test]
fn error_helpers_build_the_given_object() {
    let e = sessiond_protocol::error::rpc_error(
        codes::SESSION_BUSY,
        "queue is full",
        Some(json!({"session_id": "s-1"})),
    );
    assert_eq!(e.code(), codes::SESSION_BUSY);
    assert_eq!(e.message(), "queue is full");
    let data: Value = serde_json::from_str(e.data().unwrap().get()).unwrap();
    assert_eq!(data, json!({"session_id": "s-1"}));
    let e = sessiond_protocol::error::rpc_error_plain(codes::SESSION_NOT_FOUND, "no such session");
    assert!(e.data().is_none());
    assert_eq!(e.code(), -32041);
}

#[test]
fn method_names_are_the_contract_names() {
    let want = [
        "initialize",
        "daemon/status",
        "session/new",
        "session/load",
        "session/list",
        "session/get",
        "session/messages",
        "session/configure",
        "session/close",
        "session/delete",
        "session/prompt",
        "session/cancel",
        "session/respond",
        "session/upload",
        "session/uploads",
        "session/subscribe",
        "session/unsubscribe",
        "session/rename",
        "daemon/agents",
        "admin/kill",
        "admin/sessions",
        "admin/stats",
        "admin/tuis",
        "admin/shutdown",
        "daemon/subscribe",
        "daemon/unsubscribe",
        "admin/reload",
        "rpc.discover",
    ];
    let all: BTreeSet<&str> = methods::ALL.iter().copied().collect();
    assert_eq!(all.len(), methods::ALL.len(), "duplicates in methods::ALL");
    assert_eq!(all, want.into_iter().collect());
    assert_eq!(methods::SESSION_UPDATE, "session/update");
    assert!(
        !all.contains(methods::SESSION_UPDATE),
        "a notification is not a method"
    );
}

/// `methods::ALL` against what the `#[rpc]` traits actually register.
mod trait_methods {
    use super::*;
    use jsonrpsee::core::{async_trait, RpcResult, SubscriptionResult};
    use jsonrpsee::{Extensions, PendingSubscriptionSink};
    use sessiond_protocol::api::*;

    /// A server that registers every method and serves none (only the names matter).
    struct Nothing;

    fn not_served<T>() -> RpcResult<T> {
        Err(jsonrpsee::types::ErrorObjectOwned::owned::<()>(
            -32601,
            "not served in this test",
            None,
        ))
    }

    #[async_trait]
    impl DaemonApiServer for Nothing {
        async fn initialize(
            &self,
            _: &Extensions,
            _: u32,
            _: Option<ClientInfo>,
            _: Option<TuiId>,
            _: Option<String>,
        ) -> RpcResult<InitializeResult> {
            not_served()
        }
        async fn daemon_status(&self, _: &Extensions) -> RpcResult<DaemonStatus> {
            not_served()
        }
        async fn daemon_agents(&self, _: &Extensions) -> RpcResult<AgentsResult> {
            not_served()
        }
    }

    #[async_trait]
    impl SessionApiServer for Nothing {
        async fn session_new(
            &self,
            _: &Extensions,
            _: Option<String>,
            _: Option<Mode>,
            _: Option<String>,
            _: Option<String>,
            _: Option<Overrides>,
            _: Option<u64>,
            _: Option<bool>,
        ) -> RpcResult<SessionResult> {
            not_served()
        }
        async fn session_load(
            &self,
            _: &Extensions,
            _: SessionId,
            _: Option<bool>,
            _: Option<bool>,
        ) -> RpcResult<SessionResult> {
            not_served()
        }
        async fn session_list(
            &self,
            _: &Extensions,
            _: Option<String>,
            _: Option<Mode>,
            _: Option<bool>,
            _: Option<SessionStatus>,
            _: Option<u32>,
            _: Option<String>,
            _: Option<String>,
            _: Option<String>,
        ) -> RpcResult<ListResult> {
            not_served()
        }
        async fn session_get(&self, _: &Extensions, _: SessionId) -> RpcResult<SessionInfo> {
            not_served()
        }
        async fn session_messages(
            &self,
            _: &Extensions,
            _: SessionId,
            _: Option<u64>,
            _: Option<u32>,
        ) -> RpcResult<MessagesResult> {
            not_served()
        }
        async fn session_configure(
            &self,
            _: &Extensions,
            _: SessionId,
            _: OverridesPatch,
        ) -> RpcResult<ConfigureResult> {
            not_served()
        }
        async fn session_rename(
            &self,
            _: &Extensions,
            _: SessionId,
            _: String,
        ) -> RpcResult<SessionInfo> {
            not_served()
        }
        async fn session_close(&self, _: &Extensions, _: SessionId) -> RpcResult<CloseResult> {
            not_served()
        }
        async fn session_delete(&self, _: &Extensions, _: SessionId) -> RpcResult<DeleteResult> {
            not_served()
        }
        async fn session_subscribe(
            &self,
            _: PendingSubscriptionSink,
            _: &Extensions,
            _: SessionId,
            _: Option<u64>,
        ) -> SubscriptionResult {
            Err("not served in this test".into())
        }
    }

    #[async_trait]
    impl TurnApiServer for Nothing {
        async fn session_prompt(
            &self,
            _: &Extensions,
            _: SessionId,
            _: String,
            _: Option<Vec<String>>,
            _: Option<bool>,
            _: Option<bool>,
        ) -> RpcResult<PromptResult> {
            not_served()
        }
        async fn session_cancel(&self, _: &Extensions, _: SessionId) -> RpcResult<CancelResult> {
            not_served()
        }
        async fn session_respond(
            &self,
            _: &Extensions,
            _: SessionId,
            _: Option<RequestId>,
            _: Value,
        ) -> RpcResult<RespondResult> {
            not_served()
        }
    }

    #[async_trait]
    impl UploadApiServer for Nothing {
        async fn session_upload(
            &self,
            _: &Extensions,
            _: SessionId,
            _: String,
            _: Option<String>,
            _: Option<String>,
            _: Option<String>,
        ) -> RpcResult<UploadEntry> {
            not_served()
        }
        async fn session_uploads(&self, _: &Extensions, _: SessionId) -> RpcResult<UploadsResult> {
            not_served()
        }
    }

    #[async_trait]
    impl AdminApiServer for Nothing {
        async fn admin_kill(&self, _: &Extensions, _: SessionId) -> RpcResult<KillResult> {
            not_served()
        }
        async fn admin_sessions(
            &self,
            _: &Extensions,
            _: Option<String>,
            _: Option<Mode>,
            _: Option<bool>,
            _: Option<SessionStatus>,
            _: Option<u32>,
            _: Option<String>,
            _: Option<String>,
            _: Option<String>,
        ) -> RpcResult<ListResult> {
            not_served()
        }
        async fn admin_stats(&self, _: &Extensions) -> RpcResult<StatsResult> {
            not_served()
        }
        async fn admin_tuis(&self, _: &Extensions) -> RpcResult<TuisResult> {
            not_served()
        }
        async fn admin_shutdown(&self, _: &Extensions, _: Option<u64>) -> RpcResult<OkResult> {
            not_served()
        }
        async fn admin_reload(&self, _: &Extensions) -> RpcResult<ReloadResult> {
            not_served()
        }
    }

    #[async_trait]
    impl FeedApiServer for Nothing {
        async fn daemon_subscribe(
            &self,
            _: PendingSubscriptionSink,
            _: &Extensions,
        ) -> SubscriptionResult {
            Ok(())
        }
    }

    #[test]
    fn methods_all_is_exactly_what_the_traits_register() {
        let mut module = DaemonApiServer::into_rpc(Nothing);
        module.merge(SessionApiServer::into_rpc(Nothing)).unwrap();
        module.merge(TurnApiServer::into_rpc(Nothing)).unwrap();
        module.merge(UploadApiServer::into_rpc(Nothing)).unwrap();
        module.merge(AdminApiServer::into_rpc(Nothing)).unwrap();
        module.merge(FeedApiServer::into_rpc(Nothing)).unwrap();
        let mut registered: BTreeSet<&str> = module.method_names().collect();
        // `rpc.discover` is registered by the daemon beside the traits.
        registered.insert(methods::RPC_DISCOVER);
        let all: BTreeSet<&str> = methods::ALL.iter().copied().collect();
        assert_eq!(registered, all);
    }
}

// ---------------------------------------------------------------------------------
// property tests

fn arb_usage() -> impl Strategy<Value = Usage> {
    (any::<u64>(), any::<u64>()).prop_map(|(i, o)| usage(i, o))
}

/// Temperatures as people write them: short decimals, in and out of the valid 0..=2.
fn arb_temperature() -> impl Strategy<Value = f64> {
    (-5000i32..=5000).prop_map(|k| f64::from(k) / 1000.0)
}

/// Any finite temperature (the daemon rejects others; JSON has no NaN or infinity),
/// including 17-significant-digit ones such as 1.7181895301203323.
fn arb_any_temperature() -> impl Strategy<Value = f64> {
    prop_oneof![
        0.0..=2.0f64,
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
    ]
}

fn arb_overrides() -> impl Strategy<Value = Overrides> {
    (
        proptest::option::of(any::<String>()),
        proptest::option::of(any::<String>()),
        proptest::option::of(arb_temperature()),
    )
        .prop_map(|(model, model_provider, temperature)| Overrides {
            model,
            model_provider,
            temperature,
        })
}

fn arb_stop() -> impl Strategy<Value = (StopReason, Option<CancelCause>)> {
    prop_oneof![
        Just((StopReason::EndTurn, None)),
        Just((StopReason::Failed, None)),
        proptest::sample::select(CancelCause::ALL.to_vec())
            .prop_map(|c| (StopReason::Cancelled, Some(c))),
    ]
}

fn arb_verdict() -> impl Strategy<Value = TurnVerdict> {
    (
        "[a-zA-Z0-9_-]{1,40}",
        arb_stop(),
        proptest::option::of(any::<String>()),
        arb_usage(),
        any::<String>(),
    )
        .prop_map(
            |(id, (stop_reason, cancel_cause), error, usage, content)| TurnVerdict {
                turn_id: TurnId::from(id),
                stop_reason,
                cancel_cause,
                error,
                usage,
                content,
            },
        )
}

fn arb_patch<T: Debug + Clone + 'static>(
    inner: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Patch<T>> {
    prop_oneof![
        Just(Patch::Absent),
        Just(Patch::Clear),
        inner.prop_map(Patch::Set),
    ]
}

proptest! {
    #[test]
    fn usage_round_trips(u in arb_usage()) {
        let v = roundtrip(&u, USAGE_KEYS);
        prop_assert_eq!(v["input_tokens"].as_u64(), Some(u.input_tokens));
        prop_assert_eq!(v["output_tokens"].as_u64(), Some(u.output_tokens));
    }

    #[test]
    fn overrides_round_trip(o in arb_overrides()) {
        let v = roundtrip(&o, OVERRIDES_KEYS);
        prop_assert_eq!(v["model"].as_str(), o.model.as_deref());
        prop_assert_eq!(v["temperature"].as_f64(), o.temperature);
    }

    #[test]
    fn turn_verdicts_round_trip(t in arb_verdict()) {
        let v = roundtrip(&t, VERDICT_KEYS);
        prop_assert_eq!(v["stop_reason"].as_str(), Some(t.stop_reason.as_str()));
        prop_assert_eq!(v["cancel_cause"].as_str(), t.cancel_cause.map(|c| c.as_str()));
        // Inside turn_complete, and as a waited prompt's result.
        let ev = Event::TurnComplete { verdict: t.clone() };
        let back: Event = serde_json::from_str(&serde_json::to_string(&ev).unwrap()).unwrap();
        prop_assert_eq!(back, ev);
        let pr: PromptResult = serde_json::from_value(v).unwrap();
        prop_assert_eq!(pr, PromptResult::Finished(t));
    }

    #[test]
    fn overrides_patches_round_trip(
        model in arb_patch(any::<String>()),
        model_provider in arb_patch(any::<String>()),
        temperature in arb_patch(arb_temperature()),
    ) {
        let p = OverridesPatch { model, model_provider, temperature };
        let text = serde_json::to_string(&p).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let obj = v.as_object().unwrap();
        // Absent fields are not sent, cleared ones are null.
        for (name, absent, clear) in [
            ("model", p.model.is_absent(), p.model == Patch::Clear),
            ("model_provider", p.model_provider.is_absent(), p.model_provider == Patch::Clear),
            ("temperature", p.temperature.is_absent(), p.temperature == Patch::Clear),
        ] {
            prop_assert_eq!(obj.contains_key(name), !absent, "{}", name);
            if clear {
                prop_assert_eq!(&obj[name], &Value::Null);
            }
        }
        let back: OverridesPatch = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, p);
    }
}

proptest! {
    /// serde_json parses floats exactly only with its `float_roundtrip` feature, which
    /// the workspace does not enable yet: without it 1.7181895301203323 comes back as
    /// 1.7181895301203325. The workspace enables serde_json's `float_roundtrip` for this.
    #[test]
    fn any_finite_temperature_round_trips_exactly(t in arb_any_temperature()) {
        let o = Overrides { temperature: Some(t), ..Default::default() };
        let back: Overrides = serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
        prop_assert_eq!(back.temperature.map(f64::to_bits), Some(t.to_bits()));
    }
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
