//! `sessiond attach` end to end: the real binary in a real pseudo-terminal against a
//! real daemon; keys are typed and the screen is read through a terminal emulator.

use serde_json::Value;
use sessiond_client::Client;
use sessiond_protocol::params::ListParams;
use sessiond_protocol::{SessionId, SessionInfo};
use sessiond_tests::pty::Tui;
use sessiond_tests::{new_session, wait_for, Daemon};

const GATED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/gated.py");
const TOOLS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../daemon/tests/fixtures/tools.py"
);
const REQUEST: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../daemon/tests/fixtures/request.py"
);

fn config() -> String {
    format!(
        "default_agent = \"slow\"\nevent_window = 16\n\
         [agents.slow]\nkind = \"echo\"\nchunk_chars = 2\nchunk_delay_ms = 40\n\
         [agents.fast]\nkind = \"echo\"\n\
         [agents.gated]\nkind = \"command\"\ncommand = [\"python3\", {}]\n\
         [agents.asker]\nkind = \"command\"\ncommand = [\"python3\", {}]\n\
         [agents.tools]\nkind = \"command\"\ncommand = [\"python3\", {}]\n",
        Value::String(GATED.into()),
        Value::String(REQUEST.into()),
        Value::String(TOOLS.into()),
    )
}

async fn sessions(c: &Client) -> Vec<SessionInfo> {
    c.list_sessions(ListParams {
        owner: Some("any".into()),
        ..Default::default()
    })
    .await
    .unwrap()
    .sessions
}

/// The one session of the daemon, once it exists.
async fn only_session(c: &Client) -> SessionId {
    wait_for("the session", || async {
        let s = sessions(c).await;
        (s.len() == 1).then(|| s[0].session_id.clone())
    })
    .await
}

fn has_row(rows: &[String], row: &str) -> bool {
    rows.iter().any(|r| r.trim() == row)
}

/// Runs blocking pty work off the test's runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("pty task")
}

#[tokio::test]
async fn a_prompt_streams_its_answer_and_ctrl_d_detaches_while_the_turn_goes_on() {
    let d = Daemon::start_with(&config()).await;
    let mut tui = Tui::spawn(&d.dirs, &["attach", "--new"]);
    tui.wait_for("idle");
    tui.send("hello from the pty\r");
    let rows = tui.wait_for("── end_turn");
    assert!(has_row(&rows, "> hello from the pty"), "{rows:?}");
    assert!(has_row(&rows, "hello from the pty"), "the answer: {rows:?}");
    assert!(rows[0].contains("slow") && rows[0].contains("owner: you"));

    // A long answer: detach while it streams; the turn goes on without the TUI.
    let long = "one two three four five six seven eight nine ten ".repeat(4);
    tui.send(&format!("{}\r", long.trim()));
    tui.wait_for("running");
    tui.send("\x04");
    let code = blocking(move || tui.wait_exit()).await;
    assert_eq!(code, 0, "a detach exits 0");

    let c = d.client().await;
    let id = only_session(&c).await;
    wait_for("the turn to finish without the TUI", || async {
        let s = c.get_session(&id).await.unwrap();
        (s.round_count == 2 && s.turn.is_none()).then_some(())
    })
    .await;
    let stored = c.messages(&id, None, None).await.unwrap();
    assert_eq!(stored.messages.last().unwrap().content, long.trim());

    // Reattach from another terminal of the same profile by a prefix of the id.
    let prefix = &id.as_str()[..10];
    let tui = Tui::spawn(&d.dirs, &["attach", prefix]);
    let rows = tui.wait_for("> hello from the pty");
    assert!(has_row(&rows, "hello from the pty"), "{rows:?}");
    tui.wait_for("owner: you");
}

#[tokio::test]
async fn esc_cancels_the_running_turn_with_client_rpc() {
    let d = Daemon::start_with(&config()).await;
    let mut tui = Tui::spawn(&d.dirs, &["attach", "--new"]);
    tui.wait_for("idle");
    tui.send(&format!("{}\r", "slowly ".repeat(60).trim()));
    tui.wait_for("running");
    tui.send("\x1b");
    tui.wait_for("── cancelled (client_rpc)");
    tui.wait_for("idle");
}

#[tokio::test]
async fn attaching_mid_turn_beyond_the_replay_window_shows_the_answer_from_its_start() {
    let d = Daemon::start_with(&config()).await;
    let owner = d.tui().await;
    let id = new_session(&owner, "gated").await;
    let gate = d.dirs.path().join("gate");
    owner
        .prompt_text(&id, format!("gated {}", gate.display()))
        .await
        .unwrap();
    // 100 chunks streamed: far beyond the window of 16 events.
    wait_for("the first half of the answer", || async {
        let m = owner.messages(&id, None, None).await.unwrap();
        let last = m.messages.last()?;
        (last.partial && last.content.len() == 100).then_some(())
    })
    .await;

    let tui = Tui::spawn(&d.dirs, &["attach", "--watch", id.as_str()]);
    let rows = tui.wait_for("running");
    let first = rows
        .iter()
        .position(|r| r.starts_with("BEGIN"))
        .expect("answer start");
    assert_eq!(rows[first].len(), 100, "the first 100 characters: {rows:?}");

    std::fs::write(&gate, "").unwrap();
    let rows = tui.wait_for("── end_turn");
    let first = rows
        .iter()
        .position(|r| r.starts_with("BEGIN"))
        .expect("answer start");
    let answer: String = rows[first..]
        .iter()
        .take_while(|r| !r.starts_with("──"))
        .map(String::as_str)
        .collect();
    let expected = format!("BEGIN{}END", "abcdefghij".repeat(20));
    assert!(answer.starts_with(&expected), "{answer}");
    assert_eq!(answer.len(), expected.len(), "nothing twice: {rows:?}");
}

#[tokio::test]
async fn a_permission_answered_with_2_reaches_the_command_agent() {
    let d = Daemon::start_with(&config()).await;
    let tui = Tui::spawn_sized(&d.dirs, &["attach", "--new", "--agent", "asker"], 30, 160);
    let mut tui = tui;
    tui.wait_for("idle");
    tui.send("may I?\r");
    tui.wait_for("permission");
    let rows = tui.wait_for("2. deny");
    assert!(rows.iter().any(|r| r.contains("run ls?")));
    assert!(rows.iter().any(|r| r.contains("1. allow")));
    tui.send("2");
    let rows = tui.wait_for("── end_turn");
    assert!(
        rows.iter()
            .any(|r| r.contains(r#""option_id":"deny""#) && r.contains(r#""outcome":"selected""#)),
        "{rows:?}"
    );
}

#[tokio::test]
async fn watch_mode_refuses_input() {
    let d = Daemon::start_with(&config()).await;
    let owner = d.tui().await;
    let id = new_session(&owner, "fast").await;
    let mut tui = Tui::spawn(&d.dirs, &["attach", "--watch", id.as_str()]);
    tui.wait_for("read-only");
    tui.send("let me in\r");
    tui.wait_for("read-only: you are watching this session");
    let s = owner.get_session(&id).await.unwrap();
    assert_eq!((s.message_count, s.round_count), (0, 0));
    // The owner's prompt shows in the watcher's screen as it happens.
    owner.prompt_text(&id, "from the owner").await.unwrap();
    let rows = tui.wait_for("── end_turn");
    assert!(has_row(&rows, "> from the owner"));
    assert!(has_row(&rows, "from the owner"));
}

#[tokio::test]
async fn take_over_flips_both_screens() {
    let d = Daemon::start_with(&config()).await;
    let mut alice = Tui::spawn(&d.dirs, &["--profile", "alice", "attach", "--new"]);
    alice.wait_for("owner: you");
    let c = d.client().await;
    let id = only_session(&c).await;

    let mut bob = Tui::spawn(&d.dirs, &["--profile", "bob", "attach", id.as_str()]);
    bob.wait_for("owner: another profile");
    bob.wait_for("read-only");
    bob.send("/take-over\r");
    bob.wait_for("Take this session over");
    bob.send("y");
    bob.wait_until("bob owns it", |rows| {
        rows[0].contains("owner: you") && !rows[0].contains("read-only")
    });
    let rows = alice.wait_for("taken over by another profile");
    let _ = rows;
    alice.wait_until("alice is read-only", |rows| rows[0].contains("read-only"));
    alice.send("still mine?\r");
    alice.wait_for("read-only: owned by another profile");
    bob.send("now mine\r");
    bob.wait_for("── end_turn");
    alice.wait_for("> now mine");
}

/// A turn running when the daemon stops is cancelled (`shutdown`); its verdict,
/// published while the TUI was losing its connection, still reaches the screen after
/// the restart, and the session goes on.
#[tokio::test]
async fn a_daemon_restart_while_attached_goes_on_without_a_gap() {
    let d = Daemon::start_with(&config()).await;
    let mut tui = Tui::spawn(&d.dirs, &["attach", "--new"]);
    tui.wait_for("idle");
    tui.send("before the restart\r");
    tui.wait_for("── end_turn");
    tui.send(&format!(
        "{}\r",
        "interrupted by the stop ".repeat(20).trim()
    ));
    tui.wait_for("running");
    let d = d.restart().await;
    tui.wait_for("── cancelled (shutdown)");
    // Typed while the TUI may still be reconnecting: the prompt waits for the link.
    tui.send("after\r");
    let rows = tui.wait_until("the third turn's answer", |rows| {
        rows.iter().filter(|r| r.starts_with("── end_turn")).count() == 2
    });
    assert!(has_row(&rows, "before the restart"));
    assert!(has_row(&rows, "after"));
    tui.wait_until("connected", |rows| {
        rows[0].contains("connected") && !rows[0].contains("reconnecting")
    });
    drop(d);
}

#[tokio::test]
async fn a_pending_request_comes_back_as_a_dialog_after_reattaching() {
    let d = Daemon::start_with(&config()).await;
    let mut tui = Tui::spawn_sized(&d.dirs, &["attach", "--new", "--agent", "asker"], 30, 160);
    tui.wait_for("idle");
    tui.send("may I?\r");
    tui.wait_for("2. deny");
    tui.send("\x04");
    assert_eq!(blocking(move || tui.wait_exit()).await, 0);

    let c = d.client().await;
    let id = only_session(&c).await;
    let mut tui = Tui::spawn_sized(&d.dirs, &["attach", id.as_str()], 30, 160);
    tui.wait_for("1. allow");
    tui.wait_for("awaiting your answer");
    tui.send("1");
    let rows = tui.wait_for("── end_turn");
    assert!(
        rows.iter().any(|r| r.contains(r#""option_id":"allow""#)),
        "{rows:?}"
    );
}

#[tokio::test]
async fn slash_commands_configure_and_rename_the_session() {
    let d = Daemon::start_with(&config()).await;
    let mut tui = Tui::spawn(&d.dirs, &["attach", "--new", "--agent", "fast"]);
    tui.wait_for("idle");
    tui.send("/model m-42\r");
    tui.wait_until("the model in the status line", |rows| {
        rows[0].contains("m-42")
    });
    tui.send("/temp");
    tui.send("\t");
    tui.wait_for("/temperature");
    tui.send("0.5\r");
    tui.wait_until("the temperature", |rows| rows[0].contains("t=0.5"));
    tui.send("/title a better name\r");
    tui.wait_until("the title", |rows| rows[0].starts_with(" a better name"));
    tui.send("/nonsense\r");
    tui.wait_for("unknown command /nonsense");
    let c = d.client().await;
    let id = only_session(&c).await;
    let s = c.get_session(&id).await.unwrap();
    assert_eq!(s.overrides.model.as_deref(), Some("m-42"));
    assert_eq!(s.overrides.temperature, Some(0.5));
    assert_eq!(s.title.as_deref(), Some("a better name"));
}

#[tokio::test]
async fn a_failed_attach_exits_1_and_an_ambiguous_prefix_lists_the_candidates() {
    let d = Daemon::start_with(&config()).await;
    let mut tui = Tui::spawn(&d.dirs, &["attach", "ses_nosuchsession"]);
    tui.wait_for("no session matches");
    assert_eq!(blocking(move || tui.wait_exit()).await, 1);

    // 17 ids: two of them share their first hex digit.
    let c = d.client().await;
    let mut ids = Vec::new();
    for _ in 0..17 {
        ids.push(new_session(&c, "fast").await);
    }
    let digit = |id: &SessionId| id.as_str()["ses_".len()..].chars().next().unwrap();
    let shared = ids
        .iter()
        .map(digit)
        .find(|d0| ids.iter().filter(|i| digit(i) == *d0).count() >= 2)
        .expect("pigeonhole");
    let prefix = format!("ses_{shared}");
    let mut tui = Tui::spawn_sized(&d.dirs, &["attach", &prefix], 30, 400);
    let rows = tui.wait_for("is ambiguous");
    let screen = rows.join(" ");
    for id in ids.iter().filter(|i| digit(i) == shared) {
        assert!(screen.contains(id.as_str()), "{id:?} listed: {screen}");
    }
    assert_eq!(blocking(move || tui.wait_exit()).await, 1);
}

#[tokio::test]
async fn a_session_killed_under_the_tui_exits_with_its_own_code() {
    let d = Daemon::start_with(&config()).await;
    let mut tui = Tui::spawn(&d.dirs, &["attach", "--new", "--agent", "fast"]);
    tui.wait_for("idle");
    let c = d.client().await;
    let id = only_session(&c).await;
    c.admin_kill(&id).await.unwrap();
    let code = blocking(move || tui.wait_exit()).await;
    assert_eq!(code, 3);
}

#[tokio::test]
async fn not_a_terminal_exits_2() {
    let d = Daemon::start_with(&config()).await;
    let (code, _out, err) = sessiond_tests::cli(&d.dirs, &["attach", "--new"]);
    assert_eq!(code, 2);
    assert!(err.contains("must be a terminal"), "{err}");
}

async fn titled(c: &Client, agent: &str, title: &str) -> SessionId {
    c.new_session(sessiond_protocol::params::NewSessionParams {
        agent: Some(agent.into()),
        title: Some(title.into()),
        keep_siblings: Some(true),
        ..Default::default()
    })
    .await
    .unwrap()
    .session
    .session_id
}

#[tokio::test]
async fn the_picker_filters_attaches_creates_deletes_and_updates_live() {
    let d = Daemon::start_with(&config()).await;
    // Unowned sessions (an anonymous client made them): any profile may claim them.
    let c = d.client().await;
    titled(&c, "fast", "alpha notes").await;
    titled(&c, "fast", "beta plan").await;
    let mut tui = Tui::spawn(&d.dirs, &["attach"]);
    tui.wait_for("alpha notes");
    let rows = tui.wait_for("beta plan");
    let beta = rows.iter().position(|r| r.contains("beta plan")).unwrap();
    let alpha = rows.iter().position(|r| r.contains("alpha notes")).unwrap();
    assert!(beta < alpha, "newest first: {rows:?}");

    // A session created elsewhere shows up while the picker is open.
    titled(&c, "fast", "gamma live").await;
    tui.wait_for("gamma live");

    tui.send("beta");
    tui.wait_until("only beta", |rows| {
        rows.iter().any(|r| r.contains("beta plan"))
            && !rows
                .iter()
                .any(|r| r.contains("alpha notes") || r.contains("gamma live"))
    });
    tui.send("\r");
    tui.wait_until("attached to beta", |rows| {
        rows[0].contains("beta plan") && rows[0].contains("owner: you")
    });

    // Back to the picker: delete gamma with confirmation.
    tui.send("/sessions\r");
    tui.wait_for("filter:");
    tui.send("gamma");
    tui.wait_until("only gamma", |rows| {
        rows.iter().any(|r| r.contains("gamma live"))
            && !rows.iter().any(|r| r.contains("beta plan"))
    });
    tui.send("\x18");
    tui.wait_for("Delete gamma live?");
    tui.send("y");
    // The footer says so once the daemon answered; the feed removes the row.
    tui.wait_until("gamma gone", |rows| {
        rows.iter().any(|r| r.trim() == "deleted") && !rows.iter().any(|r| r.contains("gamma live"))
    });
    assert_eq!(sessions(&c).await.len(), 2);

    // Ctrl-N asks for agent and mode (daemon/agents), creates and attaches.
    tui.send("\x7f\x7f\x7f\x7f\x7f");
    tui.send("\x0e");
    tui.wait_for("new session");
    tui.wait_for("fast");
    tui.send("\r");
    tui.wait_until("attached to the new one", |rows| {
        rows[0].contains("(untitled)") && rows[0].contains("owner: you")
    });
    assert_eq!(sessions(&c).await.len(), 3);
    tui.send("\x04");
    assert_eq!(blocking(move || tui.wait_exit()).await, 0);
}

#[tokio::test]
async fn tool_calls_show_live_and_again_after_reattaching() {
    let d = Daemon::start_with(&config()).await;
    let mut tui = Tui::spawn(&d.dirs, &["attach", "--new", "--agent", "tools"]);
    tui.wait_for("idle");
    tui.send("read a.txt\r");
    let rows = tui.wait_for("── end_turn");
    assert!(
        rows.iter()
            .any(|r| r.starts_with(r#"⚙ read_file({"path":"a.txt"}) → ok: file contents"#)),
        "{rows:?}"
    );
    assert!(has_row(&rows, "read it"));
    // Ctrl-O shows the call's input and output in full.
    tui.send("\x0f");
    tui.wait_for("out file contents");
    tui.send("\x04");
    assert_eq!(blocking(move || tui.wait_exit()).await, 0);

    let c = d.client().await;
    let id = only_session(&c).await;
    let tui = Tui::spawn(&d.dirs, &["attach", id.as_str()]);
    let rows = tui.wait_for("⚙ read_file");
    assert!(has_row(&rows, "read it"), "{rows:?}");
}

#[tokio::test]
async fn uploads_go_with_the_next_prompt_and_interrupt_supersedes_a_queue() {
    let d = Daemon::start_with(&config()).await;
    let file = d.dirs.path().join("notes.txt");
    std::fs::write(&file, "some notes").unwrap();
    let mut tui = Tui::spawn(&d.dirs, &["attach", "--new", "--agent", "fast"]);
    tui.wait_for("idle");
    tui.send(&format!("/upload {}\r", file.display()));
    tui.wait_for("notes.txt attached to the next prompt");
    tui.wait_for("prompt + 1 attachment(s)");
    tui.send("see the file\r");
    let rows = tui.wait_for("── end_turn");
    let answer = rows
        .iter()
        .position(|r| r == "see the file")
        .expect("the answer");
    assert!(
        rows[answer + 1].contains("notes.txt"),
        "the marker follows: {rows:?}"
    );

    // A slow turn, two prompts queued behind it, then an interrupt.
    tui.send("/model x\r");
    tui.wait_until("configured", |rows| rows[0].contains(" x "));
    tui.send("/provider slow\r");
    tui.wait_until("slow provider", |rows| rows[0].contains("via slow"));
    tui.send(&format!("{}\r", "long running turn ".repeat(30).trim()));
    tui.wait_for("running");
    tui.send("queued one\r");
    tui.send("queued two\r");
    tui.wait_for("2 queued");
    tui.send("/interrupt right now\r");
    tui.wait_for("── cancelled (superseded)");
    let rows = tui.wait_until("the interrupt's answer", |rows| has_row(rows, "right now"));
    assert!(
        !has_row(&rows, "queued one"),
        "interrupt runs next: {rows:?}"
    );
}

#[tokio::test]
async fn colours_follow_the_palette_and_no_color_turns_them_off() {
    let d = Daemon::start_with(&config()).await;
    for (no_color, coloured) in [("", true), ("1", false)] {
        let mut tui = Tui::spawn_env(
            &d.dirs,
            &["attach", "--new", "--agent", "fast"],
            30,
            120,
            &[("NO_COLOR", no_color)],
        );
        tui.wait_for("idle");
        tui.send("colour me\r");
        tui.wait_for("── end_turn");
        assert_eq!(
            tui.row_is_coloured("> colour me"),
            Some(coloured),
            "NO_COLOR={no_color:?}"
        );
        tui.send("\x04");
        assert_eq!(blocking(move || tui.wait_exit()).await, 0);
    }
}
