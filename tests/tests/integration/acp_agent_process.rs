//! The process of a `kind = "acp"` agent (the crate-written `acp-test-agent` over
//! real stdio): an agent that ignores a cancel, dies mid-turn or between turns,
//! cannot load its session, or outlives its session in memory; daemon restarts
//! followed by a turn that loads the agent's session; and a stop while the agent
//! ignores its cancel.

use sessiond_protocol::{CancelCause, Event, StopReason};
use sessiond_tests::acp_support::{
    agent_table, chunks, first_chunk, logged, new_acp, start, turn_events, wait_logged,
    waiting_turn,
};
use sessiond_tests::{wait_for, Daemon, Dirs};

#[tokio::test]
async fn an_agent_ignoring_cancel_is_ended_and_the_next_turn_loads_its_session() {
    let (d, state) = start("", "").await;
    let c = d.tui().await;
    let id = new_acp(&c, d.dirs.path()).await;
    let mut events = c.subscribe(&id, None).await.unwrap();
    let turn = c.prompt_text(&id, "hello").await.unwrap().turn_id;
    turn_events(&mut events, &turn).await;

    let turn = c.prompt_text(&id, "stubborn").await.unwrap().turn_id;
    assert_eq!(first_chunk(&mut events, &turn).await, "not stopping");
    c.cancel(&id).await.unwrap();
    let (_, verdict) = turn_events(&mut events, &turn).await;
    assert_eq!(verdict.stop_reason, StopReason::Cancelled);
    assert_eq!(verdict.cancel_cause, Some(CancelCause::ClientRpc));
    let first_pid = logged(&state, "initialize")[0]["pid"].as_i64().unwrap();
    wait_for("the stubborn agent's process to be gone", || async {
        // SAFETY: signal 0 only checks that the process exists.
        (unsafe { libc::kill(first_pid as i32, 0) } != 0).then_some(())
    })
    .await;

    let turn = c.prompt_text(&id, "still there?").await.unwrap().turn_id;
    let (_, verdict) = turn_events(&mut events, &turn).await;
    assert_eq!(verdict.content, "echo: still there? (prompt #2)");
    assert_eq!(logged(&state, "initialize").len(), 2);
    assert_eq!(logged(&state, "load").len(), 1);
}

#[tokio::test]
async fn an_agent_dying_mid_turn_fails_the_turn_and_the_next_turn_restarts_it() {
    let (d, state) = start("", "").await;
    let c = d.tui().await;
    let id = new_acp(&c, d.dirs.path()).await;
    let mut events = c.subscribe(&id, None).await.unwrap();
    let turn = c.prompt_text(&id, "hello").await.unwrap().turn_id;
    turn_events(&mut events, &turn).await;

    // The agent exits on its own: the error carries its stderr.
    let turn = c.prompt_text(&id, "crash now").await.unwrap().turn_id;
    let (_, verdict) = turn_events(&mut events, &turn).await;
    assert_eq!(verdict.stop_reason, StopReason::Failed, "{verdict:?}");
    let error = verdict.error.clone().unwrap_or_default();
    assert!(error.contains("exited during the turn"), "{error}");
    assert!(error.contains("exit status: 3"), "{error}");
    assert!(error.contains("crashing on purpose"), "{error}");

    // The agent is killed from outside while it waits.
    let turn = waiting_turn(&c, &id, &mut events).await;
    let inits = logged(&state, "initialize");
    assert_eq!(inits.len(), 2, "the crashed agent was started again");
    let pid = inits[1]["pid"].as_i64().unwrap() as i32;
    // SAFETY: killing the test agent process this test started through the daemon.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let (_, verdict) = turn_events(&mut events, &turn).await;
    assert_eq!(verdict.stop_reason, StopReason::Failed, "{verdict:?}");
    assert!(verdict.error.unwrap_or_default().contains("signal: 9"));

    // The next turn starts it once more and loads the session it had.
    let turn = c.prompt_text(&id, "back?").await.unwrap().turn_id;
    let (_, verdict) = turn_events(&mut events, &turn).await;
    assert_eq!(verdict.stop_reason, StopReason::EndTurn, "{verdict:?}");
    assert_eq!(verdict.content, "echo: back? (prompt #2)");
    assert_eq!(logged(&state, "load").len(), 2);
}

#[tokio::test]
async fn after_a_daemon_restart_a_turn_loads_the_agent_session() {
    let (d, state) = start("", "").await;
    let c = d.tui().await;
    let id = new_acp(&c, d.dirs.path()).await;
    c.prompt_wait(&id, "remember me").await.unwrap();
    let acp_id = logged(&state, "new")[0]["session"].clone();
    drop(c);

    let d = d.restart().await;
    let c = d.tui().await;
    c.load_session(&id, true, true).await.unwrap();
    let mut events = c.subscribe(&id, None).await.unwrap();
    let turn = c.prompt_text(&id, "and now?").await.unwrap().turn_id;
    let (seen, verdict) = turn_events(&mut events, &turn).await;
    assert_eq!(verdict.stop_reason, StopReason::EndTurn, "{verdict:?}");
    assert_eq!(verdict.content, "echo: and now? (prompt #2)");
    // The history the agent replayed on load is not published again.
    assert_eq!(chunks(&seen), verdict.content);
    let loads = logged(&state, "load");
    assert_eq!(loads.len(), 1);
    assert_eq!(loads[0]["session"], acp_id);
    assert_eq!(logged(&state, "new").len(), 1);
}

#[tokio::test]
async fn an_agent_that_cannot_load_starts_fresh_and_says_so() {
    // The test agent stops advertising `loadSession` with ACP_TEST_NO_LOAD set.
    let dirs = Dirs::new();
    let state = dirs.path().join("agent-state");
    std::fs::create_dir_all(&state).unwrap();
    let table = agent_table("acp", &state, "").replace(
        "[agents.acp.env]\n",
        "[agents.acp.env]\nACP_TEST_NO_LOAD = \"1\"\n",
    );
    std::fs::write(dirs.config_path(), table).unwrap();
    let d = Daemon::start_in(dirs).await.unwrap();
    let c = d.tui().await;
    let id = new_acp(&c, d.dirs.path()).await;
    c.prompt_wait(&id, "one").await.unwrap();
    drop(c);

    let d = d.restart().await;
    let c = d.tui().await;
    c.load_session(&id, true, true).await.unwrap();
    let mut events = c.subscribe(&id, None).await.unwrap();
    let turn = c.prompt_text(&id, "two").await.unwrap().turn_id;
    let (seen, verdict) = turn_events(&mut events, &turn).await;
    assert_eq!(verdict.content, "echo: two (prompt #1)");
    assert!(
        seen.iter().any(|e| matches!(e,
            Event::AgentUpdate { kind, .. } if kind == "session_started_fresh")),
        "{seen:?}"
    );
    assert_eq!(logged(&state, "new").len(), 2);
    assert!(logged(&state, "load").is_empty());
}

/// True once `pid` has exited (gone, or a zombie waiting to be reaped).
fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

#[tokio::test]
async fn the_agent_process_ends_when_its_session_leaves_memory() {
    let (d, state) = start("", "").await;
    let c = d.tui().await;
    let mut pids = Vec::new();
    for n in 1..=3 {
        let id = new_acp(&c, d.dirs.path()).await;
        c.prompt_wait(&id, "hello").await.unwrap();
        let pid = wait_logged(&state, "initialize", n).await[n - 1]["pid"]
            .as_i64()
            .unwrap() as i32;
        assert!(!process_gone(pid), "the agent stays up between turns");
        match n {
            1 => {
                c.close_session(&id).await.unwrap();
            }
            2 => {
                c.delete_session(&id).await.unwrap();
            }
            _ => {}
        }
        pids.push(pid);
    }
    for pid in &pids[..2] {
        wait_for("the closed or deleted session's agent to end", || async {
            process_gone(*pid).then_some(())
        })
        .await;
    }
    assert!(!process_gone(pids[2]));
    let mut d = d;
    assert!(d.sigterm().success());
    wait_for("the agent to end with the daemon", || async {
        process_gone(pids[2]).then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_agent_that_died_between_turns_is_started_again_for_the_next_one() {
    let (d, state) = start("", "").await;
    let c = d.tui().await;
    let id = new_acp(&c, d.dirs.path()).await;
    c.prompt_wait(&id, "first").await.unwrap();
    let pid = logged(&state, "initialize")[0]["pid"].as_i64().unwrap() as i32;
    // SAFETY: killing the test agent process this test started through the daemon.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_for("the agent to be gone", || async {
        process_gone(pid).then_some(())
    })
    .await;
    let verdict = c.prompt_wait(&id, "second").await.unwrap();
    assert_eq!(verdict.stop_reason, StopReason::EndTurn, "{verdict:?}");
    assert_eq!(verdict.content, "echo: second (prompt #2)");
    assert_eq!(logged(&state, "load").len(), 1);
}

/// A stop does not wait for an agent that ignores the cancel longer than the
/// agent's `cancel_grace_ms`: the daemon exits, and the stubborn turn was recorded
/// cancelled with cause `shutdown` (no crash recovery needed after the restart).
#[tokio::test]
async fn a_stop_with_an_agent_ignoring_cancel_still_ends_and_records_the_turn() {
    let (mut d, _state) = start("", "").await;
    let c = d.tui().await;
    let id = new_acp(&c, d.dirs.path()).await;
    let mut events = c.subscribe(&id, None).await.unwrap();
    let turn = c.prompt_text(&id, "stubborn").await.unwrap().turn_id;
    assert_eq!(first_chunk(&mut events, &turn).await, "not stopping");
    let st = d.sigterm();
    assert!(st.success(), "exit status {st}");
    let d = d.restart().await;
    assert!(
        !d.log().contains("turn interrupted by the previous stop"),
        "{}",
        d.log()
    );
    let c = d.tui().await;
    let mut events = c.subscribe(&id, Some(0)).await.unwrap();
    let (_, verdict) = turn_events(&mut events, &turn).await;
    assert_eq!(verdict.stop_reason, StopReason::Cancelled);
    assert_eq!(verdict.cancel_cause, Some(CancelCause::Shutdown));
}
