//! The `command` agent against real programs (tests/fixtures): the line protocol,
//! requests and responses, failures with stderr, and that cancel and the end of a
//! turn leave no process behind.

mod support;

use sessiond::agent::command::CommandAgent;
use sessiond::agent::{Agents, HistoryMessage, RequestResponse};
use sessiond_config::AgentConfig;
use sessiond_protocol::{Event, Overrides, RequestId, RequestKind, Role};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::{input, run, start};

const LIMIT: Duration = Duration::from_secs(20);

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn config(command: &[&str], grace_ms: u64) -> sessiond_config::CommandAgent {
    sessiond_config::CommandAgent {
        command: command.iter().map(|s| s.to_string()).collect(),
        cancel_grace_ms: grace_ms,
        env: BTreeMap::new(),
    }
}

fn agent(script: &str, grace_ms: u64) -> CommandAgent {
    CommandAgent::new(&config(&[&fixture(script)], grace_ms)).expect("valid config")
}

fn chunk_text(e: &Event) -> &str {
    match e {
        Event::AgentMessageChunk { text, .. } => text,
        other => panic!("expected a chunk, got {other:?}"),
    }
}

/// Whether `pid` is a running process (a zombie counts as gone).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
    }
}

/// The running (not zombie) members of process group `pgid`.
fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields.len() > 2 && fields[2] == pgid.to_string() && !matches!(fields[0], "Z" | "X")
        })
        .collect()
}

async fn wait_group_gone(pgid: i32) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let members = group_members(pgid);
        if members.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "group {pgid} still has {members:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wait_gone(pid: i32) {
    let deadline = Instant::now() + LIMIT;
    while alive(pid) {
        assert!(Instant::now() < deadline, "process {pid} still runs");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn chunks_and_done_end_the_turn() {
    let (result, events, emit) = run(&agent("chunks.py", 2000), input("hi")).await;
    assert_eq!(result, Ok(()));
    let types: Vec<_> = events.iter().map(Event::type_name).collect();
    assert_eq!(
        types,
        [
            "agent_thought_chunk",
            "agent_message_chunk",
            "agent_message_chunk"
        ]
    );
    assert!(matches!(&events[0], Event::AgentThoughtChunk { text, .. } if text == "thinking"));
    assert_eq!(emit.snapshot().content, "Hello, world");
}

#[tokio::test]
async fn tool_calls_results_and_usage_are_published() {
    let (result, events, emit) = run(&agent("tools.py", 2000), input("read a.txt")).await;
    assert_eq!(result, Ok(()));
    match &events[0] {
        Event::ToolCall {
            tool_call_id,
            name,
            input,
            turn_id,
        } => {
            assert_eq!(
                (tool_call_id.as_str(), name.as_str(), turn_id.as_str()),
                ("c1", "read_file", "turn-1")
            );
            assert_eq!(input, &serde_json::json!({"path": "a.txt"}));
        }
        other => panic!("expected a tool call, got {other:?}"),
    }
    match &events[1] {
        Event::ToolResult {
            tool_call_id,
            output,
            is_error,
            ..
        } => {
            assert_eq!(tool_call_id, "c1");
            assert_eq!(output, &serde_json::json!("file contents"));
            assert!(!is_error);
        }
        other => panic!("expected a tool result, got {other:?}"),
    }
    assert_eq!(chunk_text(&events[2]), "read it");
    let usage = emit.snapshot().usage;
    assert_eq!((usage.input_tokens, usage.output_tokens), (11, 7));
}

#[tokio::test]
async fn a_request_is_answered_through_the_response_channel() {
    let mut r = start(&agent("request.py", 2000), input("list files"));
    match r.next().await {
        Event::Request {
            request_id,
            kind,
            prompt,
            options,
            ..
        } => {
            assert_eq!(request_id.as_str(), "r1");
            assert_eq!(kind, RequestKind::Permission);
            assert_eq!(prompt, "run ls?");
            assert_eq!(options, serde_json::json!(["allow", "deny"]));
        }
        other => panic!("expected a request, got {other:?}"),
    }
    r.responses
        .send(RequestResponse {
            request_id: RequestId::from("r1"),
            response: serde_json::json!({"outcome": "allow"}),
        })
        .expect("turn listens");
    let (result, events) = r.end().await;
    assert_eq!(result, Ok(()));
    let echoed: serde_json::Value =
        serde_json::from_str(chunk_text(&events[0])).expect("the response line");
    assert_eq!(
        echoed,
        serde_json::json!({"type": "response", "request_id": "r1", "response": {"outcome": "allow"}})
    );
}

#[tokio::test]
async fn the_turn_line_carries_history_overrides_env_and_cwd() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&[&fixture("echo_turn.py")], 2000);
    cfg.env.insert("EXTRA_VAR".into(), "extra value".into());
    let agent = CommandAgent::new(&cfg).expect("valid config");
    let mut turn = input("and now?");
    turn.history = vec![
        HistoryMessage {
            role: Role::User,
            content: "first question".into(),
        },
        HistoryMessage {
            role: Role::Assistant,
            content: "first answer".into(),
        },
    ];
    turn.overrides = Overrides {
        model: Some("big-model".into()),
        model_provider: Some("local".into()),
        temperature: Some(0.5),
    };
    turn.cwd = Some(dir.path().to_string_lossy().into_owned());
    let (result, events, _) = run(&agent, turn).await;
    assert_eq!(result, Ok(()));
    let seen: serde_json::Value = serde_json::from_str(chunk_text(&events[0])).expect("json reply");
    let t = &seen["turn"];
    assert_eq!(t["type"], "turn");
    assert_eq!(t["session_id"], "sess-1");
    assert_eq!(t["turn_id"], "turn-1");
    assert_eq!(t["text"], "and now?");
    assert_eq!(t["attachments"], serde_json::json!([]));
    assert_eq!(
        t["history"],
        serde_json::json!([
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"}
        ])
    );
    assert_eq!(
        t["overrides"],
        serde_json::json!({"model": "big-model", "model_provider": "local", "temperature": 0.5})
    );
    assert_eq!(
        seen["env"],
        serde_json::json!({"SESSIOND_SESSION_ID": "sess-1", "SESSIOND_TURN_ID": "turn-1", "EXTRA_VAR": "extra value"})
    );
    let cwd = std::fs::canonicalize(dir.path()).expect("canonical");
    assert_eq!(seen["cwd"], cwd.to_string_lossy().as_ref());
}

#[tokio::test]
async fn an_error_line_fails_the_turn_with_its_message() {
    let (result, events, _) = run(&agent("error.sh", 2000), input("hi")).await;
    assert_eq!(result, Err("model overloaded".to_owned()));
    assert_eq!(chunk_text(&events[0]), "partial");
}

#[tokio::test]
async fn a_crash_fails_with_its_status_and_stderr_tail() {
    let (result, _, _) = run(&agent("crash.sh", 2000), input("hi")).await;
    let err = result.expect_err("a crash fails the turn");
    assert!(err.contains("without finishing the turn"), "{err}");
    assert!(err.contains("exit status: 3"), "{err}");
    assert!(
        err.contains("warming up\nboom: could not load weights"),
        "{err}"
    );
}

#[tokio::test]
async fn exiting_without_done_fails() {
    let (result, events, _) = run(&agent("no_done.sh", 2000), input("hi")).await;
    let err = result.expect_err("no done");
    assert_eq!(
        err,
        "the agent program exited without finishing the turn (exit status: 0)"
    );
    assert_eq!(chunk_text(&events[0]), "hi");
}

#[tokio::test]
async fn a_line_that_is_not_json_fails_and_stops_the_program() {
    let started = Instant::now();
    let (result, _, _) = run(&agent("garbage.sh", 10_000), input("hi")).await;
    let err = result.expect_err("garbage fails the turn");
    assert!(
        err.starts_with("agent wrote an invalid line: this is not json"),
        "{err}"
    );
    assert!(err.contains("stderr: note: this is not json"), "{err}");
    // SIGTERM was enough: the grace period was not needed.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_chatty_stderr_never_blocks_the_program() {
    let (result, events, _) = run(&agent("chatty.py", 2000), input("hi")).await;
    assert_eq!(result, Ok(()));
    assert_eq!(chunk_text(&events[0]), "still here");
}

#[tokio::test]
async fn a_missing_program_fails_the_turn() {
    let agent =
        CommandAgent::new(&config(&["/nonexistent/sessiond-agent"], 2000)).expect("valid config");
    let (result, _, _) = run(&agent, input("hi")).await;
    let err = result.expect_err("no program");
    assert!(err.starts_with("cannot start the agent program"), "{err}");
}

#[tokio::test]
async fn cancel_sends_sigterm_to_the_group() {
    let mut r = start(&agent("polite.sh", 10_000), input("hi"));
    let pid: i32 = chunk_text(&r.next().await).parse().expect("pid");
    assert!(alive(pid));
    let cancelled = Instant::now();
    r.cancel.cancel();
    let (result, _) = r.end().await;
    assert_eq!(result, Ok(()));
    assert!(
        cancelled.elapsed() < Duration::from_secs(8),
        "{:?}",
        cancelled.elapsed()
    );
    wait_gone(pid).await;
}

#[tokio::test]
async fn cancel_kills_a_group_that_ignores_sigterm_after_the_grace_period() {
    let grace = Duration::from_millis(300);
    let mut r = start(&agent("stubborn.sh", grace.as_millis() as u64), input("hi"));
    let pids: Vec<i32> = chunk_text(&r.next().await)
        .split_whitespace()
        .map(|p| p.parse().expect("pid"))
        .collect();
    assert_eq!(pids.len(), 2);
    let cancelled = Instant::now();
    r.cancel.cancel();
    let (result, _) = r.end().await;
    assert_eq!(result, Ok(()));
    let took = cancelled.elapsed();
    assert!(took >= grace, "returned before the grace period: {took:?}");
    for &pid in &pids {
        wait_gone(pid).await;
    }
    // Nothing of its process group runs (the leader's pid is the group's id).
    wait_group_gone(pids[0]).await;
}

#[tokio::test]
async fn nothing_is_left_behind_after_a_normal_turn() {
    let mut r = start(&agent("background.sh", 2000), input("hi"));
    let child: i32 = chunk_text(&r.next().await).parse().expect("pid");
    let (result, _) = r.end().await;
    assert_eq!(result, Ok(()));
    wait_gone(child).await;
}

#[tokio::test]
async fn configs_that_cannot_work_are_unavailable() {
    let mut cfg = sessiond_config::Config::default();
    cfg.agents
        .insert("empty".into(), AgentConfig::Command(config(&[], 2000)));
    cfg.agents
        .insert("blank".into(), AgentConfig::Command(config(&["  "], 2000)));
    cfg.agents.insert(
        "good".into(),
        AgentConfig::Command(config(&[&fixture("chunks.py")], 2000)),
    );
    let agents = Agents::from_config(&cfg);
    for alias in ["empty", "blank"] {
        let err = agents.get(alias).err().expect("unavailable").to_string();
        assert!(err.contains("command must name a program"), "{err}");
    }
    let good = agents.get("good").expect("available");
    assert_eq!(good.kind(), "command");
    let (result, _, _) = run(good.as_ref(), input("hi")).await;
    assert_eq!(result, Ok(()));
}

#[tokio::test]
async fn output_lines_are_bounded_and_split() {
    use sessiond::agent::command::read_line_bounded;
    let data: &[u8] = b"one\r\ntwo\n\nlast";
    let mut r = tokio::io::BufReader::with_capacity(3, data);
    let mut buf = Vec::new();
    let mut got = Vec::new();
    while let Some(line) = read_line_bounded(&mut r, &mut buf, 16).await.expect("read") {
        got.push(String::from_utf8(line).expect("utf-8"));
    }
    assert_eq!(got, vec!["one", "two", "", "last"]);

    let data: &[u8] = b"short\nmuch too long a line\n";
    let mut r = tokio::io::BufReader::with_capacity(4, data);
    let mut buf = Vec::new();
    assert_eq!(
        read_line_bounded(&mut r, &mut buf, 8).await,
        Ok(Some(b"short".to_vec()))
    );
    let err = read_line_bounded(&mut r, &mut buf, 8)
        .await
        .expect_err("too long");
    assert_eq!(err, "agent wrote a line longer than 8 bytes");
}

#[test]
fn the_stderr_tail_keeps_the_last_lines() {
    use sessiond::agent::command::Tail;
    let mut t = Tail::default();
    for i in 0..100 {
        t.push(format!("line {i}\n").as_bytes());
    }
    let r = t.render();
    assert_eq!(r.lines().count(), 20);
    assert!(r.starts_with("line 80\n") && r.ends_with("line 99"), "{r}");
    let mut t = Tail::default();
    t.push(&[b'x'; 10_000]);
    t.push(b"\nthe end\n");
    assert_eq!(t.render(), "the end");
}
