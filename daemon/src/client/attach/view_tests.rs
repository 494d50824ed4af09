//! View tests: the reducer is fed events and each screen and dialog is rendered on
//! ratatui's `TestBackend` and compared with its snapshot (`snapshots/`).

use super::app::{draw_attach, AttachScreen, Confirm};
use super::dialog::{Dialog, DialogView};
use super::picker::{Ask, Picker, PickerView};
use super::state::{Attached, Link};
use super::status::state_words;
use super::theme::Theme;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use sessiond_protocol::params::MessagesResult;
use sessiond_protocol::*;
use std::time::{Duration, Instant};

const TH: Theme = Theme { color: false };

fn info(id: &str, title: &str, owner: Option<&str>) -> SessionInfo {
    SessionInfo {
        session_id: SessionId(id.into()),
        agent: "echo".into(),
        mode: Mode::Chat,
        title: Some(title.into()),
        cwd: Some("/work".into()),
        owner_tui_id: owner.map(|o| TuiId(o.into())),
        status: SessionStatus::Active,
        live: true,
        turn: None,
        queued_turns: 0,
        pending_requests: 0,
        overrides: Overrides::default(),
        created_at: "2026-11-30T10:00:00Z".into(),
        updated_at: "2026-11-30T10:05:00Z".into(),
        last_active_at: "2026-11-30T10:05:00Z".into(),
        message_count: 0,
        round_count: 0,
        usage: Usage::default(),
        ttl_secs: None,
        watchers: 1,
    }
}

fn env(seq: u64, event: Event) -> EventEnvelope {
    EventEnvelope {
        session_id: SessionId("ses_0123456789abcdef".into()),
        seq,
        at: "2026-11-30T10:05:00Z".into(),
        event,
    }
}

fn t(s: &str) -> TurnId {
    TurnId(s.into())
}

/// A finished turn with a tool call and a code block, and a second one streaming.
fn events() -> Vec<EventEnvelope> {
    vec![
        env(
            1,
            Event::UserMessage {
                turn_id: t("t1"),
                text: "list the files".into(),
                attachments: vec![],
            },
        ),
        env(
            2,
            Event::TurnStarted {
                turn_id: t("t1"),
                generation: 1,
            },
        ),
        env(
            3,
            Event::AgentThoughtChunk {
                turn_id: t("t1"),
                text: "the user wants ls".into(),
            },
        ),
        env(
            4,
            Event::ToolCall {
                turn_id: t("t1"),
                tool_call_id: "c1".into(),
                name: "ls".into(),
                input: serde_json::json!({"dir": "."}),
            },
        ),
        env(
            5,
            Event::ToolResult {
                turn_id: t("t1"),
                tool_call_id: "c1".into(),
                output: serde_json::json!("a.txt b.txt"),
                is_error: false,
            },
        ),
        env(
            6,
            Event::AgentMessageChunk {
                turn_id: t("t1"),
                text: "Two files:\n```\na.txt\n".into(),
            },
        ),
        env(
            7,
            Event::AgentMessageChunk {
                turn_id: t("t1"),
                text: "b.txt\n```".into(),
            },
        ),
        env(
            8,
            Event::TurnComplete {
                verdict: TurnVerdict {
                    turn_id: t("t1"),
                    stop_reason: StopReason::EndTurn,
                    cancel_cause: None,
                    error: None,
                    usage: Usage {
                        input_tokens: 3,
                        output_tokens: 5,
                    },
                    content: "Two files:\n```\na.txt\nb.txt\n```".into(),
                },
            },
        ),
        env(
            9,
            Event::UserMessage {
                turn_id: t("t2"),
                text: "and now?".into(),
                attachments: vec![],
            },
        ),
        env(
            10,
            Event::TurnStarted {
                turn_id: t("t2"),
                generation: 2,
            },
        ),
        env(
            11,
            Event::AgentMessageChunk {
                turn_id: t("t2"),
                text: "Still str".into(),
            },
        ),
    ]
}

fn attached(owner: Option<&str>, watch: bool) -> Attached {
    let mut st = Attached::new(
        info("ses_0123456789abcdef", "files", owner),
        TuiId("tui_me".into()),
        watch,
    );
    for e in events() {
        st.apply(&e);
    }
    st
}

fn render_attach(a: &AttachScreen, now: Instant) -> String {
    let mut term = Terminal::new(TestBackend::new(80, 22)).unwrap();
    term.draw(|f| draw_attach(f, f.area(), a, &TH, now))
        .unwrap();
    format!("{}", term.backend())
}

fn started(a: &mut Attached) -> Instant {
    let t0 = Instant::now();
    if let Some((_, at)) = a.running.as_mut() {
        *at = t0;
    }
    t0
}

#[test]
fn attach_screen_while_a_turn_streams() {
    let mut st = attached(Some("tui_me"), false);
    let t0 = started(&mut st);
    let a = AttachScreen::new(st);
    insta::assert_snapshot!(render_attach(&a, t0 + Duration::from_secs(12)));
}

#[test]
fn attach_screen_with_expanded_tools_and_a_multi_line_input() {
    let mut st = attached(Some("tui_me"), false);
    let t0 = started(&mut st);
    let mut a = AttachScreen::new(st);
    a.view.expand_tools = true;
    a.input.insert_str("first line\nsecond line");
    insta::assert_snapshot!(render_attach(&a, t0));
}

#[test]
fn attach_screen_read_only_when_another_profile_owns_it() {
    let mut st = attached(Some("tui_someone"), false);
    let t0 = started(&mut st);
    st.link = Link::Reconnecting;
    let a = AttachScreen::new(st);
    insta::assert_snapshot!(render_attach(&a, t0));
}

fn request(kind: RequestKind, options: serde_json::Value) -> EventEnvelope {
    env(
        12,
        Event::Request {
            turn_id: t("t2"),
            request_id: RequestId("r1".into()),
            kind,
            prompt: "run `rm -rf build`?".into(),
            options,
        },
    )
}

#[test]
fn permission_dialog() {
    let mut st = attached(Some("tui_me"), false);
    let t0 = started(&mut st);
    st.apply(&request(
        RequestKind::Permission,
        serde_json::json!([
            {"option_id": "once", "label": "Allow once", "kind": "allow_once"},
            {"option_id": "always", "label": "Allow always", "kind": "allow_always"},
            "deny"
        ]),
    ));
    let mut a = AttachScreen::new(st);
    a.sync_dialog();
    let d = a.dialog.as_mut().expect("a dialog");
    d.down();
    assert_eq!(
        d.pick(1),
        Some(serde_json::json!({"outcome": "selected", "option_id": "always"}))
    );
    assert_eq!(
        d.pick(2),
        Some(serde_json::json!({"outcome": "selected", "option_id": "deny"}))
    );
    insta::assert_snapshot!(render_attach(&a, t0));
}

#[test]
fn question_dialog() {
    let mut st = attached(Some("tui_me"), false);
    let t0 = started(&mut st);
    st.apply(&request(RequestKind::Question, serde_json::Value::Null));
    let mut a = AttachScreen::new(st);
    a.sync_dialog();
    a.dialog.as_mut().unwrap().answer.insert_str("only build/");
    assert_eq!(
        a.dialog.as_ref().unwrap().enter(),
        Some(serde_json::json!({"outcome": "answered", "text": "only build/"}))
    );
    insta::assert_snapshot!(render_attach(&a, t0));
}

#[test]
fn take_over_confirmation() {
    let mut st = attached(Some("tui_someone"), false);
    let t0 = started(&mut st);
    let mut a = AttachScreen::new(st);
    a.confirm = Some(Confirm::TakeOver);
    insta::assert_snapshot!(render_attach(&a, t0));
}

fn picker() -> Picker {
    let mut a = info("ses_aaaa1111", "refactor the parser", Some("tui_me"));
    a.last_active_at = "2026-11-30T09:00:00Z".into();
    let mut b = info("ses_bbbb2222", "write the docs", Some("tui_other"));
    b.turn = Some(TurnInfo {
        turn_id: t("t"),
        generation: 1,
        started_at: "x".into(),
        state: TurnState::Running,
    });
    b.queued_turns = 2;
    let mut c = info("ses_cccc3333", "old chat", None);
    c.live = false;
    c.mode = Mode::Code;
    c.last_active_at = "2026-11-29T08:00:00Z".into();
    Picker::new(TuiId("tui_me".into()), vec![a, c, b])
}

fn render_picker(p: &Picker) -> String {
    let mut term = Terminal::new(TestBackend::new(100, 12)).unwrap();
    term.draw(|f| {
        f.render_widget(
            PickerView {
                picker: p,
                theme: &TH,
            },
            f.area(),
        )
    })
    .unwrap();
    format!("{}", term.backend())
}

#[test]
fn picker_lists_newest_first_and_filters_by_title() {
    let mut p = picker();
    insta::assert_snapshot!("picker_all", render_picker(&p));
    p.type_char('D');
    p.type_char('o');
    assert_eq!(p.visible().len(), 1);
    assert_eq!(p.current().unwrap().session_id.as_str(), "ses_bbbb2222");
    p.backspace();
    p.backspace();
    assert_eq!(p.visible().len(), 3);
}

#[test]
fn picker_updates_live_and_asks_before_deleting() {
    let mut p = picker();
    p.down();
    let mut moved = info("ses_cccc3333", "old chat, renamed", None);
    moved.last_active_at = "2026-11-30T11:00:00Z".into();
    p.upsert(moved);
    p.remove(&SessionId("ses_bbbb2222".into()));
    assert_eq!(
        p.current().unwrap().session_id.as_str(),
        "ses_aaaa1111",
        "the selection stays"
    );
    p.ask = Some(Ask::Delete(SessionId("ses_aaaa1111".into())));
    insta::assert_snapshot!(render_picker(&p));
}

#[test]
fn picker_new_session_dialog() {
    let mut p = picker();
    p.ask = Some(Ask::New {
        agents: vec!["echo".into(), "claude".into()],
        agent: 1,
        mode: Mode::Code,
    });
    insta::assert_snapshot!(render_picker(&p));
}

#[test]
fn the_dialog_view_alone() {
    let st = {
        let mut st = attached(Some("tui_me"), false);
        st.apply(&request(
            RequestKind::Permission,
            serde_json::json!(["yes", "no"]),
        ));
        st
    };
    let d = Dialog::new(st.requests[0].clone());
    let mut term = Terminal::new(TestBackend::new(50, 10)).unwrap();
    term.draw(|f| {
        f.render_widget(
            DialogView {
                dialog: &d,
                theme: &TH,
                more: 1,
            },
            f.area(),
        )
    })
    .unwrap();
    insta::assert_snapshot!(format!("{}", term.backend()));
}

#[test]
fn the_reducer_is_idempotent() {
    let once = attached(Some("tui_me"), false);
    let mut twice = attached(Some("tui_me"), false);
    for e in events() {
        twice.apply(&e);
    }
    assert_eq!(once.items, twice.items);
    // A snapshot taken mid-turn, then a replay that overlaps it, gives the same screen.
    let snap = MessagesResult {
        messages: vec![
            Message {
                index: 0,
                role: Role::User,
                content: "and now?".into(),
                turn_id: Some(t("t2")),
                created_at: "x".into(),
                partial: false,
            },
            Message {
                index: 1,
                role: Role::Assistant,
                content: "Still str".into(),
                turn_id: Some(t("t2")),
                created_at: "x".into(),
                partial: true,
            },
        ],
        total: 1,
        seq: 11,
    };
    let mut a = Attached::new(
        info("ses_0123456789abcdef", "files", Some("tui_me")),
        TuiId("tui_me".into()),
        false,
    );
    a.load_snapshot(&snap);
    for e in events() {
        a.apply(&e);
    }
    a.apply(&env(
        12,
        Event::AgentMessageChunk {
            turn_id: t("t2"),
            text: "eaming".into(),
        },
    ));
    a.apply(&env(
        12,
        Event::AgentMessageChunk {
            turn_id: t("t2"),
            text: "eaming".into(),
        },
    ));
    let texts: Vec<String> = a
        .items
        .iter()
        .filter_map(|i| match i {
            super::state::Item::Assistant { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, vec!["Still streaming".to_owned()]);
    assert!(a.running.is_some());
}

#[test]
fn the_state_words() {
    let mut st = attached(Some("tui_me"), false);
    let t0 = started(&mut st);
    assert_eq!(state_words(&st, t0 + Duration::from_secs(3)), "running 3s");
    st.info.queued_turns = 2;
    assert_eq!(state_words(&st, t0), "running 0s, 2 queued");
    st.apply(&request(RequestKind::Question, serde_json::Value::Null));
    assert_eq!(state_words(&st, t0), "awaiting your answer, 2 queued");
    st.link = Link::Reconnecting;
    st.watch = true;
    assert_eq!(
        state_words(&st, t0),
        "awaiting your answer, 2 queued, read-only"
    );
    let line = super::status::status_text(&st, t0);
    assert!(
        line.contains("awaiting your answer, 2 queued, read-only · reconnecting · owner: you"),
        "{line}"
    );
    let idle = Attached::new(info("s", "x", None), TuiId("tui_me".into()), false);
    assert_eq!(state_words(&idle, t0), "idle");
}
