//! Slow provider turns: `max_turn_secs` ends them with cause `timeout`, a cancel
//! drops the connection and ends the program; and an alias that cannot be built.

use super::*;

#[tokio::test]
async fn max_turn_secs_ends_slow_provider_turns_with_cause_timeout() {
    let mut llm = FakeLlm::start().await;
    let records = Records::new();
    // Long enough for python to start on a busy machine, so the recorder has
    // written its pid before the limit ends the turn.
    let d = Daemon::start_with(&config(&llm, &records, "max_turn_secs = 3")).await;
    let c = d.tui().await;
    let via_http = new_session(&c, "llm").await;
    let via_program = new_session(&c, "script").await;

    let (a, b) = tokio::join!(
        turn(&c, &via_http, "stall"),
        turn(&c, &via_program, "stall")
    );
    for v in [&a, &b] {
        assert_eq!(v.stop_reason, StopReason::Cancelled, "{v:?}");
        assert_eq!(v.cancel_cause, Some(CancelCause::Timeout), "{v:?}");
        assert_eq!(v.error, None);
        assert_eq!(v.content, "stalling", "the partial reply is kept");
    }
    llm.connection_closed().await;
    let seen = records.all();
    assert_eq!(seen.len(), 1, "{seen:?}");
    wait_gone(seen[0]["pid"].as_i64().expect("pid")).await;
    let stats = d.client().await.admin_stats().await.unwrap();
    assert_eq!(stats.cancels_by_cause[&CancelCause::Timeout], 2);
}

#[tokio::test]
async fn cancel_drops_the_provider_connection_and_ends_the_program() {
    let mut llm = FakeLlm::start().await;
    let records = Records::new();
    let d = Daemon::start_with(&config(&llm, &records, "")).await;
    let c = d.tui().await;
    for agent in ["llm", "script"] {
        let id = new_session(&c, agent).await;
        let mut events = c.subscribe(&id, None).await.unwrap();
        c.prompt_text(&id, "stall").await.unwrap();
        assert_eq!(first_chunk(&mut events).await, "stalling", "{agent}");
        c.cancel(&id).await.unwrap();
        let v = verdict(&mut events).await;
        assert_eq!(v.stop_reason, StopReason::Cancelled, "{agent}: {v:?}");
        assert_eq!(v.cancel_cause, Some(CancelCause::ClientRpc), "{agent}");
    }
    llm.connection_closed().await;
    let seen = records.all();
    assert_eq!(seen.len(), 1, "{seen:?}");
    wait_gone(seen[0]["pid"].as_i64().expect("pid")).await;
}

// ---- aliases that cannot be built ----

#[tokio::test]
async fn an_unbuildable_alias_is_unavailable_and_cannot_be_selected() {
    let llm = FakeLlm::start().await;
    let records = Records::new();
    let d = Daemon::start_with(&config(&llm, &records, "")).await;
    let c = d.tui().await;
    let err = c
        .new_session(NewSessionParams {
            agent: Some("broken".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::AGENT_UNAVAILABLE), "{err}");
    assert!(err.to_string().contains("base_url"), "{err}");

    let id = new_session(&c, "llm").await;
    let err = c
        .configure(
            &id,
            OverridesPatch {
                model_provider: Patch::Set("broken".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::INVALID_PARAMS), "{err}");
    let err = c
        .new_session(NewSessionParams {
            agent: Some("llm".into()),
            overrides: Some(Overrides {
                model_provider: Some("broken".into()),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::INVALID_PARAMS), "{err}");
    let info = c.get_session(&id).await.unwrap();
    assert_eq!(info.overrides, Overrides::default());
}
