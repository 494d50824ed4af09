//! Identity and ownership across dropped connections, a turn that runs on without its
//! TUI, a pending request answered after a reconnect, and the `ReconnectingClient`
//! through daemon restarts.

use super::*;

// ---- identity and reconnect ----

#[tokio::test]
async fn a_reconnecting_tui_survives_a_dropped_connection_mid_turn_and_keeps_ownership() {
    let d = Daemon::start_with(SLOW).await;
    let relay = Relay::start(d.socket()).await;
    let rc = reconnecting(relay.path(), "tui-a").await;
    let id = new_session(&rc.client().await.unwrap(), "slow").await;
    let watcher = d.client().await;
    let mut reference = watcher.subscribe(&id, None).await.unwrap();
    let mut events = rc.subscribe(&id, None).await.unwrap();
    let prompt = text(400);
    rc.client()
        .await
        .unwrap()
        .prompt_text(&id, prompt.clone())
        .await
        .unwrap();

    let mut got = Vec::new();
    for _ in 0..20 {
        got.push(next(&mut events).await);
    }
    // The connection drops mid-turn; the stream goes on by itself.
    relay.cut();
    got.extend(until_complete(&mut events, 1).await);
    assert!(events.resumes() >= 1, "the stream subscribed again");
    assert!(rc.generation() >= 2, "the client reconnected");
    assert_eq!(verdict(got.last().unwrap()).content, prompt);

    // Same identity after the reconnect: still the owner, listed as connected.
    let tui_id = rc.identity().tui_id.clone();
    wait_for("the tui to be listed again", || async {
        let tuis = watcher.admin_tuis().await.unwrap().tuis;
        tuis.iter().any(|t| t.tui_id == tui_id).then_some(())
    })
    .await;
    let again = rc
        .client()
        .await
        .unwrap()
        .prompt_wait(&id, "mine still")
        .await
        .unwrap();
    assert_eq!(again.content, "mine still");
    got.extend(until_complete(&mut events, 1).await);

    // Nothing missed, nothing repeated: exactly what a never-disconnected watcher saw.
    let seen = until_complete(&mut reference, 2).await;
    assert_consecutive(&got);
    assert_eq!(got, seen);
    assert_eq!(events.last_seq(), Some(seen.last().unwrap().seq));
}

#[tokio::test]
async fn forged_or_missing_signatures_are_refused_and_the_genuine_pair_is_accepted() {
    let d = Daemon::start().await;
    let rc = reconnecting(&d.socket(), "genuine").await;
    let genuine = rc.identity().clone();

    let mut forged = genuine.clone();
    forged.tui_sig = "0".repeat(64);
    let err = ReconnectingClient::connect(
        Endpoint::unix(d.socket()),
        ConnectOptions::default(),
        quick(),
        ClientInfo::default(),
        Some(forged),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Some(codes::INVALID_TUI_SIGNATURE), "{err}");

    // Raw clients: a missing signature, and another TUI's signature.
    let (_other, other_init) = raw_tui(&d).await;
    for params in [
        json!({"protocol_version": 1, "tui_id": genuine.tui_id}),
        json!({"protocol_version": 1, "tui_id": genuine.tui_id, "tui_sig": other_init["tui_sig"]}),
    ] {
        let mut ws = RawWs::connect(&d.socket()).await.unwrap();
        let reply = ws.call("initialize", params).await.unwrap();
        assert_eq!(
            rpc_code(&reply),
            i64::from(codes::INVALID_TUI_SIGNATURE),
            "{reply}"
        );
    }

    let mut ws = RawWs::connect(&d.socket()).await.unwrap();
    let back = ws
        .ok(
            "initialize",
            json!({"protocol_version": 1, "tui_id": genuine.tui_id, "tui_sig": genuine.tui_sig}),
        )
        .await
        .unwrap();
    assert_eq!(back["tui_id"], json!(genuine.tui_id));
}

#[tokio::test]
async fn a_turn_runs_on_after_its_tui_disconnects_and_a_later_subscriber_sees_it_complete() {
    let d = Daemon::start_with(SLOW).await;
    let admin = d.client().await;
    let (mut ws, init) = raw_tui(&d).await;
    let created = ws
        .ok(
            "session/new",
            json!({"agent": "slow", "keep_siblings": true}),
        )
        .await
        .unwrap();
    let id = created["session"]["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ws.subscribe(&id, None).await.unwrap();
    let prompt = text(600);
    ws.ok("session/prompt", json!({"session_id": id, "text": prompt}))
        .await
        .unwrap();
    // Disconnect once the reply is streaming.
    loop {
        let env = ws.next_event().await.unwrap();
        if matches!(env.event, Event::AgentMessageChunk { .. }) {
            break;
        }
    }
    drop(ws);
    wait_for("the tui's connection to close", || async {
        admin
            .admin_tuis()
            .await
            .unwrap()
            .tuis
            .is_empty()
            .then_some(())
    })
    .await;

    let sid = SessionId::from(id.as_str());
    let later = d.client().await;
    let mut events = later.subscribe(&sid, Some(0)).await.unwrap();
    let seen = until_complete(&mut events, 1).await;
    assert_eq!(seen[0].seq, 1, "replay from the first event");
    assert!(matches!(&seen[0].event, Event::UserMessage { text, .. } if *text == prompt));
    assert_consecutive(&seen);
    let v = verdict(seen.last().unwrap());
    assert_eq!(v.stop_reason, StopReason::EndTurn, "{v:?}");
    assert_eq!(v.cancel_cause, None);
    assert_eq!(v.content, prompt);

    // Nothing was unloaded and the gone TUI still owns the session.
    let info = admin.get_session(&sid).await.unwrap();
    assert!(info.live);
    assert_eq!(
        info.owner_tui_id.as_ref().map(|t| t.as_str()),
        init["tui_id"].as_str()
    );
}

// ---- pending requests across a reconnect ----

const ASKER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/asker.py");

#[tokio::test]
async fn a_pending_request_survives_a_dropped_connection_and_is_answered_after_the_reconnect() {
    let config = format!(
        "[agents.asker]\nkind = \"command\"\ncommand = [\"python3\", {}]\n",
        Value::String(ASKER.to_owned())
    );
    let d = Daemon::start_with(&config).await;
    let admin = d.client().await;
    let relay = Relay::start(d.socket()).await;
    let rc = reconnecting(relay.path(), "asker-tui").await;
    let id = new_session(&rc.client().await.unwrap(), "asker").await;
    let mut events = rc.subscribe(&id, None).await.unwrap();
    rc.client()
        .await
        .unwrap()
        .prompt_text(&id, "ask 1")
        .await
        .unwrap();
    let mut got = Vec::new();
    while !matches!(
        got.last().map(|e: &EventEnvelope| &e.event),
        Some(Event::Request { .. })
    ) {
        got.push(next(&mut events).await);
    }

    let before = rc.generation();
    relay.cut();
    wait_for("the reconnect", || async {
        (rc.generation() > before).then_some(())
    })
    .await;
    let info = admin.get_session(&id).await.unwrap();
    assert_eq!(info.pending_requests, 1, "the request survived the drop");

    let answered = rc
        .client()
        .await
        .unwrap()
        .respond(&id, None, json!("yes"))
        .await
        .unwrap();
    assert_eq!(answered.remaining, 0);
    got.extend(until_complete(&mut events, 1).await);

    // The daemon delivered the request again on the new subscription; the consumer
    // saw it once, and every other event once, in order.
    let requests = got
        .iter()
        .filter(|e| matches!(e.event, Event::Request { .. }))
        .count();
    assert_eq!(requests, 1);
    assert_consecutive(&got);
    assert!(events.resumes() >= 1);
    assert!(got.iter().any(|e| matches!(&e.event,
        Event::RequestResolved { by_tui_id, .. } if by_tui_id.as_ref() == Some(&rc.identity().tui_id))));
    let v = verdict(got.last().unwrap());
    assert_eq!(v.stop_reason, StopReason::EndTurn, "{v:?}");
    assert_eq!(v.content, "r1=\"yes\";");
}

// ---- daemon restarts ----

#[tokio::test]
async fn the_reconnecting_client_goes_on_through_a_crash_and_a_graceful_restart() {
    let d = Daemon::start().await;
    let rc = reconnecting(&d.socket(), "survivor").await;
    let id = new_session(&rc.client().await.unwrap(), "echo").await;
    let mut events = rc.subscribe(&id, None).await.unwrap();
    let c = rc.client().await.unwrap();
    c.prompt_wait(&id, "before the crash").await.unwrap();
    let mut got = until_complete(&mut events, 1).await;
    // An awaited write commits the events appended before it (see docs/protocol.md,
    // section 12, on kill -9).
    new_session(&c, "echo").await;

    let g = rc.generation();
    let d = d.crash_and_restart().await;
    wait_for("the reconnect after kill -9", || async {
        (rc.generation() > g && rc.is_connected()).then_some(())
    })
    .await;
    let after = rc
        .client()
        .await
        .unwrap()
        .prompt_wait(&id, "after the crash")
        .await
        .expect("still the owner after the restart");
    assert_eq!(after.content, "after the crash");
    got.extend(until_complete(&mut events, 1).await);
    // Seqs reserved but unused before the crash are skipped, announced by `resync`.
    assert_continuous(&got);
    assert!(events.resumes() >= 1);
    assert!(matches!(&got[0].event, Event::UserMessage { text, .. } if text == "before the crash"));
    assert_eq!(verdict(got.last().unwrap()).content, "after the crash");

    // A graceful stop ends subscriptions without closing the session: the same
    // stream goes on after the restart, with the next seq and no `resync`.
    let g = rc.generation();
    let _d = d.restart().await;
    wait_for("the reconnect after the restart", || async {
        (rc.generation() > g && rc.is_connected()).then_some(())
    })
    .await;
    rc.client()
        .await
        .unwrap()
        .prompt_wait(&id, "after the restart")
        .await
        .expect("still the owner after a graceful restart");
    let more = until_complete(&mut events, 1).await;
    assert_eq!(more[0].seq, got.last().unwrap().seq + 1, "{:?}", more[0]);
    assert_consecutive(&more);
    assert!(more
        .iter()
        .all(|e| !matches!(e.event, Event::SessionClosed { .. } | Event::Resync { .. })));
    assert_eq!(verdict(more.last().unwrap()).content, "after the restart");
    assert!(events.resumes() >= 2);
}
