//! Every method's params and result round-trip through JSON text with the exact
//! keys of PROTOCOL.md, and `OverridesPatch` keeps absent, null and value apart.

mod common;

use common::*;

use serde_json::{json, Value};
use sessiond_protocol::methods;
use sessiond_protocol::params::*;
use sessiond_protocol::patch::Patch;
use sessiond_protocol::types::*;
use sessiond_protocol::{RequestId, SessionId, TuiId, TurnId, PROTOCOL_VERSION};
use std::collections::{BTreeMap, BTreeSet};

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
