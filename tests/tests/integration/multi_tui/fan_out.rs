//! Several TUIs watching one session: take-over seen by every subscriber, identical
//! streams on separate connections, resuming from a last seq, and a subscriber that
//! never reads.

use super::*;

// ---- take-over and fan-out ----

#[tokio::test]
async fn take_over_among_three_tuis_is_seen_by_every_subscriber() {
    let d = Daemon::start().await;
    let a = d.tui().await;
    let b = d.tui().await;
    let (mut c, c_init) = raw_tui(&d).await;
    let id = new_session(&a, "echo").await;
    let mut a_events = a.subscribe(&id, None).await.unwrap();
    let mut b_events = b.subscribe(&id, None).await.unwrap();
    c.subscribe(id.as_str(), None).await.unwrap();

    let tuis = a.admin_tuis().await.unwrap().tuis;
    assert_eq!(tuis.len(), 3, "{tuis:?}");
    assert!(tuis
        .iter()
        .all(|t| t.transport == "unix" && t.peer.starts_with("uid:")));
    assert!(tuis
        .iter()
        .any(|t| Some(t.tui_id.as_str()) == c_init["tui_id"].as_str()));

    let loaded = b.load_session(&id, true, true).await.unwrap();
    let b_id = b.identity().unwrap().tui_id;
    let a_id = a.identity().unwrap().tui_id;
    assert_eq!(loaded.session.owner_tui_id.as_ref(), Some(&b_id));

    let from_a = next(&mut a_events).await;
    let from_b = next(&mut b_events).await;
    let from_c = c.next_event().await.unwrap();
    assert_eq!(from_a, from_b);
    assert_eq!(from_a, from_c);
    match &from_a.event {
        Event::OwnerChanged {
            owner_tui_id,
            previous_owner_tui_id,
        } => {
            assert_eq!(owner_tui_id.as_ref(), Some(&b_id));
            assert_eq!(previous_owner_tui_id.as_ref(), Some(&a_id));
        }
        other => panic!("expected owner_changed, got {other:?}"),
    }

    // The previous owner and the bystander may not mutate; the new owner may.
    assert_eq!(
        a.prompt_text(&id, "mine?").await.unwrap_err().code(),
        Some(codes::SESSION_NOT_OWNED)
    );
    let reply = c
        .call("session/prompt", json!({"session_id": id, "text": "mine?"}))
        .await
        .unwrap();
    assert_eq!(rpc_code(&reply), i64::from(codes::SESSION_NOT_OWNED));
    assert_eq!(b.prompt_wait(&id, "mine").await.unwrap().content, "mine");
}

#[tokio::test]
async fn five_subscribers_on_separate_connections_see_identical_streams() {
    let d = Daemon::start_with("[agents.small]\nkind = \"echo\"\nchunk_chars = 3\n").await;
    let owner = d.tui().await;
    let id = new_session(&owner, "small").await;
    let others = [d.client().await, d.tui().await];
    let mut sdk = vec![owner.subscribe(&id, None).await.unwrap()];
    for c in &others {
        sdk.push(c.subscribe(&id, None).await.unwrap());
    }
    let mut raw = Vec::new();
    for _ in 0..2 {
        let mut ws = RawWs::connect(&d.socket()).await.unwrap();
        ws.subscribe(id.as_str(), None).await.unwrap();
        raw.push(ws);
    }
    let prompt = text(3000);
    owner.prompt_text(&id, prompt.clone()).await.unwrap();

    let mut streams = Vec::new();
    for s in &mut sdk {
        streams.push(until_complete(s, 1).await);
    }
    for ws in &mut raw {
        streams.push(raw_until_complete(ws).await);
    }
    let first = &streams[0];
    assert_eq!(
        first.len(),
        1000 + 3,
        "user_message, turn_started, chunks, turn_complete"
    );
    assert_consecutive(first);
    assert_eq!(verdict(first.last().unwrap()).content, prompt);
    for (i, s) in streams.iter().enumerate().skip(1) {
        assert_eq!(s, first, "subscriber {i} saw a different stream");
    }
}

#[tokio::test]
async fn a_subscriber_that_comes_back_with_its_last_seq_misses_and_repeats_nothing() {
    let d = Daemon::start_with(SLOW).await;
    let owner = d.tui().await;
    let id = new_session(&owner, "slow").await;
    let mut reference = owner.subscribe(&id, None).await.unwrap();
    let mut ws = RawWs::connect(&d.socket()).await.unwrap();
    ws.subscribe(id.as_str(), None).await.unwrap();
    owner.prompt_text(&id, text(300)).await.unwrap();

    let mut got = Vec::new();
    for _ in 0..25 {
        got.push(ws.next_event().await.unwrap());
    }
    drop(ws);
    // Back on a new connection, mid-turn, from the last seq it saw.
    let last = got.last().unwrap().seq;
    let mut ws = RawWs::connect(&d.socket()).await.unwrap();
    ws.subscribe(id.as_str(), Some(last)).await.unwrap();
    got.extend(raw_until_complete(&mut ws).await);

    assert_consecutive(&got);
    assert_eq!(got, until_complete(&mut reference, 1).await);
}

// ---- a stalled subscriber ----

/// A `command` agent that streams `N` thoughts of `SIZE` characters for the prompt
/// "N SIZE". Thoughts are not part of the reply, so the daemon keeps none of them
/// beyond its event window.
const STREAMER: &str = r#"import json, sys
turn = json.loads(sys.stdin.readline())
n, size = map(int, turn["text"].split())
line = json.dumps({"type": "thought", "text": "x" * size}) + "\n"
for _ in range(n):
    sys.stdout.write(line)
sys.stdout.write(json.dumps({"type": "chunk", "text": "end"}) + "\n")
sys.stdout.write(json.dumps({"type": "done"}) + "\n")
sys.stdout.flush()
"#;

/// Thoughts streamed by the long turn, and their size: 96 MiB in all.
const THOUGHTS: u64 = 49_152;
const THOUGHT_BYTES: u64 = 2048;
/// Allowed growth of the daemon's resident memory while that turn streams to a
/// subscriber that never reads: far less than the data streamed.
const RSS_LIMIT_KIB: u64 = 40 * 1024;

/// Reads one turn's events, checking that each seq is delivered or covered by a
/// `resync`, counting thoughts and sampling the daemon's memory.
async fn read_turn(mut events: sessiond_client::EventStream, pid: u32) -> (u64, TurnVerdict, u64) {
    let mut thoughts = 0;
    let mut peak = 0;
    let mut last_seq: Option<u64> = None;
    loop {
        let env = next(&mut events).await;
        if let Some(prev) = last_seq {
            let resync = matches!(env.event, Event::Resync { from_seq } if from_seq == env.seq + 1);
            assert!(
                env.seq == prev + 1 || (resync && env.seq > prev),
                "seq {} after {prev}: {:?}",
                env.seq,
                env.event
            );
        }
        last_seq = Some(env.seq);
        match env.event {
            Event::AgentThoughtChunk { .. } => {
                thoughts += 1;
                if thoughts % 512 == 0 {
                    peak = peak.max(rss_kib(pid));
                }
            }
            Event::TurnComplete { verdict } => return (thoughts, verdict, peak),
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_subscriber_that_never_reads_slows_nobody_and_does_not_grow_the_daemon() {
    let config = format!(
        // A small window keeps the daemon's own share of the memory small.
        "event_window = 256\n[agents.stream]\nkind = \"command\"\ncommand = [\"python3\", \"-c\", {}]\n",
        Value::String(STREAMER.to_owned())
    );
    let d = Daemon::start_with(&config).await;
    let owner = d.tui().await;
    let id = new_session(&owner, "stream").await;
    let readers = [d.client().await, d.client().await];

    // The stalled subscriber: subscribes, then never reads again.
    let mut stalled = RawWs::connect(&d.socket()).await.unwrap();
    stalled.subscribe(id.as_str(), None).await.unwrap();

    // A warm-up turn, so the baseline includes caches and buffers of a streaming turn.
    let mut warm = Vec::new();
    for r in &readers {
        warm.push(r.subscribe(&id, None).await.unwrap());
    }
    owner.prompt_wait(&id, "16384 2048").await.unwrap();
    for w in &mut warm {
        until_complete(w, 1).await;
    }
    let baseline = rss_kib(d.pid());

    let mut tasks = Vec::new();
    for w in warm {
        tasks.push(tokio::spawn(read_turn(w, d.pid())));
    }
    owner
        .prompt_text(&id, format!("{THOUGHTS} {THOUGHT_BYTES}"))
        .await
        .unwrap();
    let mut peak = 0;
    for t in tasks {
        let (thoughts, verdict, sampled) = t.await.unwrap();
        assert_eq!(verdict.stop_reason, StopReason::EndTurn, "{verdict:?}");
        assert_eq!(verdict.content, "end");
        // A reader slower than the agent may be cut off and catch up with `resync`;
        // what matters is that it keeps going and ends with the turn.
        assert!(thoughts > 0 && thoughts <= THOUGHTS, "{thoughts} thoughts");
        eprintln!("a reader got {thoughts} of {THOUGHTS} thoughts");
        peak = peak.max(sampled);
    }
    peak = peak.max(rss_kib(d.pid()));
    eprintln!("daemon RSS: baseline {baseline} KiB, peak {peak} KiB");
    let streamed_kib = THOUGHTS * THOUGHT_BYTES / 1024;
    assert!(
        peak.saturating_sub(baseline) < RSS_LIMIT_KIB,
        "daemon RSS grew by {} KiB (baseline {baseline} KiB) while streaming {streamed_kib} KiB",
        peak.saturating_sub(baseline)
    );
    // The stalled connection is still open, and the daemon still answers.
    assert!(owner.status().await.is_ok());
    drop(stalled);
}
