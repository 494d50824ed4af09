//! Requests to the client (PROTOCOL.md section 4): a turn of a `command` agent pauses
//! on questions, the owner answers them with `session/respond`, cancel resolves them,
//! and they survive the owner's disconnect.
//!
//! The agent is `tests/fixtures/asker.py`: the prompt "ask N" makes it ask N questions
//! (r1..rN), then echo every answer it receives as the chunk `rI=<json>;`.

use serde_json::{json, Value};
use sessiond_client::{Client, Error, EventStream};
use sessiond_protocol::params::NewSessionParams;
use sessiond_protocol::{
    codes, CancelCause, Event, RequestId, RequestKind, SessionId, StopReason, TuiId, TurnId,
    TurnState, TurnVerdict,
};
use sessiond_tests::{wait_for, Daemon, WAIT};

const ASKER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/asker.py");

fn config() -> String {
    format!(
        "[agents.asker]\nkind = \"command\"\ncommand = [\"python3\", {}]\ncancel_grace_ms = 500\n",
        Value::String(ASKER.to_owned())
    )
}

async fn start() -> Daemon {
    Daemon::start_with(&config()).await
}

async fn new_asker(c: &Client) -> SessionId {
    c.new_session(NewSessionParams {
        agent: Some("asker".into()),
        keep_siblings: Some(true),
        ..Default::default()
    })
    .await
    .unwrap()
    .session
    .session_id
}

/// The next event of the stream, bounded by [`WAIT`].
async fn next(events: &mut EventStream) -> Event {
    match tokio::time::timeout(WAIT, events.next_event()).await {
        Ok(Some(Ok(env))) => env.event,
        Ok(Some(Err(e))) => panic!("event stream error: {e}"),
        Ok(None) => panic!("event stream ended: {:?}", events.end_reason()),
        Err(_) => panic!("timed out waiting for an event"),
    }
}

/// A `request` event as the test sees it.
#[derive(Debug, Clone, PartialEq)]
struct Asked {
    turn_id: TurnId,
    request_id: RequestId,
    kind: RequestKind,
    prompt: String,
    options: Value,
}

/// Skips to the next `request` event (failing on `turn_complete`).
async fn next_request(events: &mut EventStream) -> Asked {
    loop {
        match next(events).await {
            Event::Request {
                turn_id,
                request_id,
                kind,
                prompt,
                options,
            } => {
                return Asked {
                    turn_id,
                    request_id,
                    kind,
                    prompt,
                    options,
                }
            }
            Event::TurnComplete { verdict } => {
                panic!("the turn ended before asking: {verdict:?}")
            }
            _ => {}
        }
    }
}

/// Skips to the next `request_resolved` event.
async fn next_resolved(events: &mut EventStream) -> (RequestId, Value, Option<TuiId>) {
    loop {
        match next(events).await {
            Event::RequestResolved {
                request_id,
                response,
                by_tui_id,
            } => return (request_id, response, by_tui_id),
            Event::TurnComplete { verdict } => {
                panic!("the turn ended before a request was resolved: {verdict:?}")
            }
            _ => {}
        }
    }
}

/// Skips to the next `turn_complete` event.
async fn next_verdict(events: &mut EventStream) -> TurnVerdict {
    loop {
        if let Event::TurnComplete { verdict } = next(events).await {
            return verdict;
        }
    }
}

fn rid(s: &str) -> RequestId {
    RequestId::from(s.to_owned())
}

fn tui_id(c: &Client) -> TuiId {
    c.identity().expect("an initialized tui").tui_id
}

/// The error code of a failed call.
fn code<T: std::fmt::Debug>(r: Result<T, Error>) -> i32 {
    let err = r.expect_err("the call should fail");
    err.code()
        .unwrap_or_else(|| panic!("not a JSON-RPC error: {err}"))
}

fn expected_request(turn_id: &TurnId, i: u32) -> Asked {
    Asked {
        turn_id: turn_id.clone(),
        request_id: rid(&format!("r{i}")),
        kind: if i % 2 == 1 {
            RequestKind::Question
        } else {
            RequestKind::Permission
        },
        prompt: format!("question {i}?"),
        options: json!(["yes", "no"]),
    }
}

#[tokio::test]
async fn one_pending_request_is_announced_answered_and_reaches_the_agent() {
    let d = start().await;
    let c = d.tui().await;
    let id = new_asker(&c).await;
    let mut events = c.subscribe(&id, None).await.unwrap();
    let gate = d.dirs.path().join("gate-one");
    let accepted = c
        .prompt_text(&id, format!("ask 1 gate {}", gate.display()))
        .await
        .unwrap();

    let asked = next_request(&mut events).await;
    assert_eq!(asked, expected_request(&accepted.turn_id, 1));
    let info = c.get_session(&id).await.unwrap();
    let turn = info.turn.expect("a running turn");
    assert_eq!(turn.turn_id, accepted.turn_id);
    assert_eq!(turn.state, TurnState::AwaitingResponse);
    assert_eq!(info.pending_requests, 1);

    // The one pending request is answered without naming it.
    let r = c.respond(&id, None, json!("yes")).await.unwrap();
    assert_eq!(r.remaining, 0);
    let (request_id, response, by) = next_resolved(&mut events).await;
    assert_eq!(request_id, rid("r1"));
    assert_eq!(response, json!("yes"));
    assert_eq!(by, Some(tui_id(&c)));

    // The agent got the answer (its chunk says so) and the turn runs on: it waits for
    // the gate file before finishing.
    loop {
        match next(&mut events).await {
            Event::AgentMessageChunk { turn_id, text } => {
                assert_eq!(turn_id, accepted.turn_id);
                assert_eq!(text, "r1=\"yes\";");
                break;
            }
            Event::TurnComplete { verdict } => panic!("the turn ended too early: {verdict:?}"),
            _ => {}
        }
    }
    let info = c.get_session(&id).await.unwrap();
    let turn = info.turn.expect("the turn is still running");
    assert_eq!(turn.turn_id, accepted.turn_id);
    assert_eq!(turn.state, TurnState::Running);
    assert_eq!(info.pending_requests, 0);

    std::fs::write(&gate, b"").unwrap();
    let verdict = next_verdict(&mut events).await;
    assert_eq!(verdict.turn_id, accepted.turn_id);
    assert_eq!(verdict.stop_reason, StopReason::EndTurn, "{verdict:?}");
    assert!(verdict.content.contains("r1=\"yes\";"), "{verdict:?}");
    let info = c.get_session(&id).await.unwrap();
    assert_eq!(info.turn, None);
    assert_eq!(info.pending_requests, 0);
}

#[tokio::test]
async fn several_pending_requests_must_be_named_and_each_answer_counts_down() {
    let d = start().await;
    let c = d.tui().await;
    let id = new_asker(&c).await;
    let mut events = c.subscribe(&id, None).await.unwrap();
    let accepted = c.prompt_text(&id, "ask 3").await.unwrap();
    for i in 1..=3 {
        let asked = next_request(&mut events).await;
        assert_eq!(asked, expected_request(&accepted.turn_id, i));
    }
    let info = c.get_session(&id).await.unwrap();
    assert_eq!(info.pending_requests, 3);
    assert_eq!(
        info.turn.as_ref().map(|t| t.state),
        Some(TurnState::AwaitingResponse)
    );

    // Without request_id, which one is meant is ambiguous: INVALID_PARAMS naming 3.
    let err = c.respond(&id, None, json!("yes")).await.unwrap_err();
    assert_eq!(err.code(), Some(codes::INVALID_PARAMS), "{err}");
    let Error::Rpc { message, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        message
            .split(|ch: char| !ch.is_ascii_digit())
            .any(|n| n == "3"),
        "the message names the count: {message:?}"
    );
    assert_eq!(c.get_session(&id).await.unwrap().pending_requests, 3);

    // Answered by id, out of order; each answer says how many remain.
    let answers = [
        ("r2", json!({"choice": "no"})),
        ("r3", json!("no")),
        ("r1", json!("yes")),
    ];
    for (n, (request_id, response)) in answers.iter().enumerate() {
        let r = c
            .respond(&id, Some(rid(request_id)), response.clone())
            .await
            .unwrap();
        let remaining = 2 - n as u32;
        assert_eq!(r.remaining, remaining, "after answering {request_id}");
        let (resolved, got, by) = next_resolved(&mut events).await;
        assert_eq!(resolved, rid(request_id));
        assert_eq!(&got, response);
        assert_eq!(by, Some(tui_id(&c)));
        if remaining > 0 {
            // The agent still waits for the rest: the turn is still awaiting answers.
            let info = c.get_session(&id).await.unwrap();
            assert_eq!(info.pending_requests, remaining);
            assert_eq!(
                info.turn.as_ref().map(|t| t.state),
                Some(TurnState::AwaitingResponse)
            );
        }
    }

    let verdict = next_verdict(&mut events).await;
    assert_eq!(verdict.turn_id, accepted.turn_id);
    assert_eq!(verdict.stop_reason, StopReason::EndTurn, "{verdict:?}");
    for (request_id, response) in &answers {
        // What the fixture writes: `{request_id}={json.dumps(response)};`.
        let dumped = match response {
            Value::String(s) => format!("{s:?}"),
            _ => r#"{"choice": "no"}"#.to_owned(),
        };
        let expected = format!("{request_id}={dumped};");
        assert!(
            verdict.content.contains(&expected),
            "{expected:?} in {:?}",
            verdict.content
        );
    }
    assert_eq!(
        verdict.content, r#"r2={"choice": "no"};r3="no";r1="yes";"#,
        "the agent received the answers in the order they were given"
    );
}

#[tokio::test]
async fn respond_with_nothing_pending_or_an_unknown_id_is_no_pending_request() {
    let d = start().await;
    let c = d.tui().await;
    let id = new_asker(&c).await;

    // No turn at all.
    assert_eq!(
        code(c.respond(&id, None, json!("yes")).await),
        codes::NO_PENDING_REQUEST
    );
    assert_eq!(
        code(c.respond(&id, Some(rid("r1")), json!("yes")).await),
        codes::NO_PENDING_REQUEST
    );

    let mut events = c.subscribe(&id, None).await.unwrap();

    // A running turn that asks nothing.
    let gate = d.dirs.path().join("gate-none");
    let quiet = c
        .prompt_text(&id, format!("ask 0 gate {}", gate.display()))
        .await
        .unwrap();
    loop {
        match next(&mut events).await {
            Event::TurnStarted { turn_id, .. } if turn_id == quiet.turn_id => break,
            Event::TurnComplete { verdict } => panic!("the turn ended too early: {verdict:?}"),
            _ => {}
        }
    }
    let info = c.get_session(&id).await.unwrap();
    assert_eq!(
        info.turn.as_ref().map(|t| t.state),
        Some(TurnState::Running)
    );
    assert_eq!(
        code(c.respond(&id, None, json!("yes")).await),
        codes::NO_PENDING_REQUEST
    );
    std::fs::write(&gate, b"").unwrap();
    let verdict = next_verdict(&mut events).await;
    assert_eq!(verdict.turn_id, quiet.turn_id);
    assert_eq!(verdict.stop_reason, StopReason::EndTurn, "{verdict:?}");

    // One pending request; an unknown id answers nothing.
    let accepted = c.prompt_text(&id, "ask 1").await.unwrap();
    let asked = next_request(&mut events).await;
    assert_eq!(asked, expected_request(&accepted.turn_id, 1));
    assert_eq!(
        code(c.respond(&id, Some(rid("nope")), json!("yes")).await),
        codes::NO_PENDING_REQUEST
    );
    let info = c.get_session(&id).await.unwrap();
    assert_eq!(info.pending_requests, 1, "the real request stays pending");
    assert_eq!(
        info.turn.as_ref().map(|t| t.state),
        Some(TurnState::AwaitingResponse)
    );

    // The real one is still answerable, and it is the next thing resolved.
    let r = c.respond(&id, Some(rid("r1")), json!("no")).await.unwrap();
    assert_eq!(r.remaining, 0);
    match next(&mut events).await {
        Event::RequestResolved {
            request_id,
            response,
            ..
        } => {
            assert_eq!(request_id, rid("r1"));
            assert_eq!(response, json!("no"));
        }
        other => panic!("expected request_resolved for r1, got {other:?}"),
    }
    let verdict = next_verdict(&mut events).await;
    assert_eq!(verdict.turn_id, accepted.turn_id);
    assert_eq!(verdict.stop_reason, StopReason::EndTurn, "{verdict:?}");
    assert_eq!(verdict.content, "r1=\"no\";");

    // And once it is answered, nothing is pending any more.
    assert_eq!(
        code(c.respond(&id, Some(rid("r1")), json!("yes")).await),
        codes::NO_PENDING_REQUEST
    );
}

#[tokio::test]
async fn cancel_while_awaiting_resolves_the_request_as_cancelled() {
    let d = start().await;
    let c = d.tui().await;
    let id = new_asker(&c).await;
    let mut events = c.subscribe(&id, None).await.unwrap();
    let accepted = c.prompt_text(&id, "ask 1").await.unwrap();
    next_request(&mut events).await;
    assert_eq!(
        c.get_session(&id).await.unwrap().turn.map(|t| t.state),
        Some(TurnState::AwaitingResponse)
    );

    let r = c.cancel(&id).await.unwrap();
    assert!(r.cancelled);
    assert_eq!(r.turn_id, Some(accepted.turn_id.clone()));

    let mut resolved = None;
    let verdict = loop {
        match next(&mut events).await {
            Event::RequestResolved {
                request_id,
                response,
                by_tui_id,
            } => {
                assert!(resolved.is_none(), "resolved twice");
                resolved = Some((request_id, response, by_tui_id));
            }
            Event::TurnComplete { verdict } => break verdict,
            _ => {}
        }
    };
    assert_eq!(
        resolved,
        Some((rid("r1"), json!({"outcome": "cancelled"}), None)),
        "the pending request is resolved as cancelled, by no TUI, before turn_complete"
    );
    assert_eq!(verdict.turn_id, accepted.turn_id);
    assert_eq!(verdict.stop_reason, StopReason::Cancelled, "{verdict:?}");
    assert_eq!(verdict.cancel_cause, Some(CancelCause::ClientRpc));

    let info = c.get_session(&id).await.unwrap();
    assert_eq!(info.turn, None);
    assert_eq!(info.pending_requests, 0);
    assert_eq!(
        code(c.respond(&id, None, json!("yes")).await),
        codes::NO_PENDING_REQUEST
    );
    assert_eq!(
        code(c.respond(&id, Some(rid("r1")), json!("yes")).await),
        codes::NO_PENDING_REQUEST
    );
}

#[tokio::test]
async fn only_the_owner_may_respond() {
    let d = start().await;
    let owner = d.tui().await;
    let other = d.tui().await;
    let anon = d.client().await;
    let id = new_asker(&owner).await;
    let mut events = owner.subscribe(&id, None).await.unwrap();
    let accepted = owner.prompt_text(&id, "ask 1").await.unwrap();
    next_request(&mut events).await;

    assert_eq!(
        code(other.respond(&id, None, json!("yes")).await),
        codes::SESSION_NOT_OWNED
    );
    assert_eq!(
        code(other.respond(&id, Some(rid("r1")), json!("yes")).await),
        codes::SESSION_NOT_OWNED
    );
    assert_eq!(
        code(anon.respond(&id, Some(rid("r1")), json!("yes")).await),
        codes::SESSION_NOT_OWNED
    );
    let info = other.get_session(&id).await.unwrap();
    assert_eq!(info.pending_requests, 1, "the request stays pending");
    assert_eq!(
        info.turn.as_ref().map(|t| t.state),
        Some(TurnState::AwaitingResponse)
    );

    // The owner's answer is the one that resolves it.
    let r = owner.respond(&id, None, json!("no")).await.unwrap();
    assert_eq!(r.remaining, 0);
    match next(&mut events).await {
        Event::RequestResolved {
            request_id,
            response,
            by_tui_id,
        } => {
            assert_eq!(request_id, rid("r1"));
            assert_eq!(response, json!("no"));
            assert_eq!(by_tui_id, Some(tui_id(&owner)));
        }
        ev => panic!("expected request_resolved, got {ev:?}"),
    }
    let verdict = next_verdict(&mut events).await;
    assert_eq!(verdict.turn_id, accepted.turn_id);
    assert_eq!(verdict.stop_reason, StopReason::EndTurn, "{verdict:?}");
    assert_eq!(verdict.content, "r1=\"no\";");
}

#[tokio::test]
async fn a_pending_request_survives_the_owners_disconnect_and_is_delivered_again() {
    let d = start().await;
    let admin = d.client().await;
    let owner = d.tui().await;
    let identity = owner.identity().expect("identity");
    let id = new_asker(&owner).await;
    let mut events = owner.subscribe(&id, None).await.unwrap();
    let accepted = owner.prompt_text(&id, "ask 1").await.unwrap();
    let asked = next_request(&mut events).await;
    assert_eq!(asked, expected_request(&accepted.turn_id, 1));

    // The owner goes away (the stream holds the connection too).
    drop(events);
    drop(owner);
    wait_for("the owner's connection to close", || async {
        admin
            .admin_tuis()
            .await
            .unwrap()
            .tuis
            .is_empty()
            .then_some(())
    })
    .await;
    let info = admin.get_session(&id).await.unwrap();
    assert_eq!(
        info.pending_requests, 1,
        "the request survives the disconnect"
    );
    assert_eq!(
        info.turn.as_ref().map(|t| (t.turn_id.clone(), t.state)),
        Some((accepted.turn_id.clone(), TurnState::AwaitingResponse))
    );

    // The same TUI comes back and subscribes again: the request is delivered again.
    let back = d.client().await;
    let init = back
        .initialize("test-tui", Some(identity.clone()))
        .await
        .unwrap();
    assert_eq!(init.tui_id, identity.tui_id);
    let mut events = back.subscribe(&id, None).await.unwrap();
    let again = next_request(&mut events).await;
    assert_eq!(again, asked);

    let r = back.respond(&id, None, json!("yes")).await.unwrap();
    assert_eq!(r.remaining, 0);
    let (request_id, response, by) = next_resolved(&mut events).await;
    assert_eq!(request_id, rid("r1"));
    assert_eq!(response, json!("yes"));
    assert_eq!(by, Some(identity.tui_id.clone()));
    let verdict = next_verdict(&mut events).await;
    assert_eq!(verdict.turn_id, accepted.turn_id);
    assert_eq!(verdict.stop_reason, StopReason::EndTurn, "{verdict:?}");
    assert_eq!(verdict.content, "r1=\"yes\";");
}
