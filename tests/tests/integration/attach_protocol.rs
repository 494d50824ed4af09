//! What attaching relies on (PROTOCOL.md 11.1 and 11.2): the replay boundary, a
//! `session/messages` snapshot that a subscription continues exactly (also mid-turn
//! and beyond the replay window), tool calls in the transcript, watchers, and the
//! daemon-wide session feed.

use serde_json::{json, Value};
use sessiond_client::{Client, EventStream, FeedStream};
use sessiond_protocol::{DaemonUpdate, Event, Role, SessionId, StopReason, TurnState};
use sessiond_tests::{new_session, wait_for, Daemon, WAIT};

const TOOLS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../daemon/tests/fixtures/tools.py"
);

async fn next(events: &mut EventStream) -> sessiond_protocol::EventEnvelope {
    match tokio::time::timeout(WAIT, events.next_event()).await {
        Ok(Some(Ok(env))) => env,
        other => panic!("no event: {other:?}"),
    }
}

async fn next_update(feed: &mut FeedStream) -> DaemonUpdate {
    match tokio::time::timeout(WAIT, feed.next_update()).await {
        Ok(Some(Ok(u))) => u,
        other => panic!("no update: {other:?}"),
    }
}

#[tokio::test]
async fn replay_complete_follows_the_replay_and_precedes_live_events() {
    let d = Daemon::start().await;
    let c = d.tui().await;
    let id = new_session(&c, "echo").await;
    c.prompt_wait(&id, "one two").await.unwrap();
    let head = c.messages(&id, None, None).await.unwrap().seq;
    assert!(head > 0);

    let mut replayed = c
        .subscribe(&id, Some(0))
        .await
        .unwrap()
        .with_replay_boundary();
    let mut seqs = Vec::new();
    let boundary = loop {
        let env = next(&mut replayed).await;
        match env.event {
            Event::ReplayComplete { head_seq } => break head_seq,
            _ => seqs.push(env.seq),
        }
    };
    assert_eq!(boundary, head);
    assert_eq!(seqs, (1..=head).collect::<Vec<_>>());

    // Without since_seq the replay is empty: the boundary comes first.
    let mut live = c.subscribe(&id, None).await.unwrap().with_replay_boundary();
    let first = next(&mut live).await;
    assert_eq!(first.event, Event::ReplayComplete { head_seq: head });
    c.prompt_text(&id, "three").await.unwrap();
    let after = next(&mut live).await;
    assert_eq!(after.seq, head + 1);
    assert!(matches!(after.event, Event::UserMessage { .. }));
    // It is not stored: a later replay does not contain it.
    let again = c.subscribe(&id, Some(head - 1)).await.unwrap();
    let mut again = again;
    assert_eq!(next(&mut again).await.seq, head);
    assert!(matches!(
        next(&mut again).await.event,
        Event::UserMessage { .. }
    ));
}

/// The answer so far, read mid-turn with a replay window of 16 events, followed by
/// a subscription from the snapshot's seq, is the whole answer exactly once.
#[tokio::test]
async fn a_snapshot_mid_turn_continues_without_gap_beyond_the_replay_window() {
    let d = Daemon::start_with(
        "default_agent = \"slow\"\nevent_window = 16\n\
         [agents.slow]\nkind = \"echo\"\nchunk_chars = 1\nchunk_delay_ms = 5\n",
    )
    .await;
    let c = d.tui().await;
    let id = new_session(&c, "slow").await;
    let text: String = (0..400)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    c.prompt_text(&id, text.clone()).await.unwrap();

    let snap = wait_for("60 characters streamed", || async {
        let m = c.messages(&id, None, None).await.unwrap();
        let last = m.messages.last()?;
        (last.partial && last.content.len() >= 60).then_some(m)
    })
    .await;
    let user = &snap.messages[snap.messages.len() - 2];
    assert_eq!(
        (user.role, user.content.as_str()),
        (Role::User, text.as_str())
    );
    let partial = snap.messages.last().unwrap();
    assert_eq!(partial.role, Role::Assistant);
    assert!(text.starts_with(&partial.content));
    assert!(snap.seq > 32, "far beyond the window of 16");

    let mut events = c
        .subscribe(&id, Some(snap.seq))
        .await
        .unwrap()
        .with_replay_boundary();
    let mut answer = partial.content.clone();
    let mut expected_seq = snap.seq + 1;
    loop {
        let env = next(&mut events).await;
        match env.event {
            Event::ReplayComplete { .. } => continue,
            Event::Resync { .. } => panic!("no resync expected: {env:?}"),
            _ => {}
        }
        assert_eq!(env.seq, expected_seq, "no gap and no duplicate");
        expected_seq += 1;
        match env.event {
            Event::AgentMessageChunk { text, .. } => answer.push_str(&text),
            Event::TurnComplete { verdict } => {
                assert_eq!(verdict.stop_reason, StopReason::EndTurn);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(answer, text);
    let done = c.messages(&id, None, None).await.unwrap();
    assert!(done.messages.iter().all(|m| !m.partial));
    assert_eq!(done.messages.last().unwrap().content, text);
}

#[tokio::test]
async fn tool_calls_are_stored_as_tool_messages() {
    let config = format!(
        "[agents.tools]\nkind = \"command\"\ncommand = [\"python3\", {}]\n",
        Value::String(TOOLS.to_owned())
    );
    let d = Daemon::start_with(&config).await;
    let c = d.tui().await;
    let id = new_session(&c, "tools").await;
    c.prompt_wait(&id, "go").await.unwrap();
    // A client that attaches later (another connection) reads them too.
    let other = d.client().await;
    let m = other.messages(&id, None, None).await.unwrap();
    let roles: Vec<Role> = m.messages.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::User, Role::Tool, Role::Assistant]);
    let tool: Value = serde_json::from_str(&m.messages[1].content).unwrap();
    assert_eq!(
        tool,
        json!({"tool_call_id": "c1", "name": "read_file", "input": {"path": "a.txt"},
               "output": "file contents", "is_error": false})
    );
    assert_eq!(m.messages[2].content, "read it");
    assert_eq!(m.total, 3);
}

async fn watchers(c: &Client, id: &SessionId) -> u32 {
    c.get_session(id).await.unwrap().watchers
}

#[tokio::test]
async fn watchers_count_open_subscriptions() {
    let d = Daemon::start().await;
    let c = d.tui().await;
    let id = new_session(&c, "echo").await;
    assert_eq!(watchers(&c, &id).await, 0);
    let a = c.subscribe(&id, None).await.unwrap();
    let other = d.client().await;
    let b = other.subscribe(&id, None).await.unwrap();
    wait_for("two watchers", || async {
        (watchers(&c, &id).await == 2).then_some(())
    })
    .await;
    b.unsubscribe().await.unwrap();
    wait_for("one watcher", || async {
        (watchers(&c, &id).await == 1).then_some(())
    })
    .await;
    drop(other);
    drop(a);
    wait_for("no watcher", || async {
        (watchers(&c, &id).await == 0).then_some(())
    })
    .await;
}

/// Updates for `id` until `pred` holds on one; returns it.
async fn until(
    feed: &mut FeedStream,
    id: &SessionId,
    pred: impl Fn(&DaemonUpdate) -> bool,
) -> DaemonUpdate {
    loop {
        let u = next_update(feed).await;
        if u.session_id() == id && pred(&u) {
            return u;
        }
    }
}

fn changed(u: &DaemonUpdate) -> Option<&sessiond_protocol::SessionInfo> {
    match u {
        DaemonUpdate::SessionChanged { session } => Some(session),
        DaemonUpdate::SessionDeleted { .. } => None,
    }
}

#[tokio::test]
async fn the_daemon_feed_reports_creation_turns_owner_and_deletion() {
    let d = Daemon::start_with(
        "default_agent = \"slow\"\n[agents.slow]\nkind = \"echo\"\nchunk_chars = 1\nchunk_delay_ms = 20\n",
    )
    .await;
    // An anonymous client may watch the feed.
    let watcher = d.client().await;
    let mut feed = watcher.subscribe_daemon().await.unwrap();
    let owner = d.tui().await;
    let id = new_session(&owner, "slow").await;
    until(&mut feed, &id, |u| changed(u).is_some_and(|s| s.live)).await;

    owner
        .prompt_text(&id, "a long enough answer")
        .await
        .unwrap();
    until(&mut feed, &id, |u| {
        changed(u).is_some_and(|s| s.turn.as_ref().map(|t| t.state) == Some(TurnState::Running))
    })
    .await;
    until(&mut feed, &id, |u| {
        changed(u).is_some_and(|s| s.turn.is_none() && s.round_count == 1)
    })
    .await;

    let other = d.tui().await;
    other.load_session(&id, true, true).await.unwrap();
    let who = other.identity().unwrap().tui_id;
    until(&mut feed, &id, |u| {
        changed(u).is_some_and(|s| s.owner_tui_id.as_ref() == Some(&who))
    })
    .await;

    other.delete_session(&id).await.unwrap();
    let gone = until(&mut feed, &id, |u| changed(u).is_none()).await;
    assert_eq!(gone, DaemonUpdate::SessionDeleted { session_id: id });
}

/// A feed subscriber that reads nothing while a session changes many times gets
/// that session's latest state, not an unbounded backlog.
#[tokio::test]
async fn a_lagging_feed_subscriber_gets_the_latest_state() {
    let d = Daemon::start().await;
    let owner = d.tui().await;
    let id = new_session(&owner, "echo").await;
    let watcher = d.client().await;
    let mut feed = watcher.subscribe_daemon().await.unwrap();
    for i in 0..=200u32 {
        let t = f64::from(i) / 100.0;
        let patch: sessiond_protocol::params::OverridesPatch =
            serde_json::from_value(json!({"temperature": t})).unwrap();
        owner.configure(&id, patch).await.unwrap();
    }
    let last = until(&mut feed, &id, |u| {
        changed(u).is_some_and(|s| s.overrides.temperature == Some(2.0))
    })
    .await;
    assert!(changed(&last).is_some());
}
