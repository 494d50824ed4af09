//! What each provider kind receives: overrides, the second turn's history, and the
//! alias a `model_provider` override selects (with the history carried over).

use super::*;

/// After two turns: two rounds, and twice one turn's usage.
async fn assert_two_rounds_counted(c: &Client, id: &SessionId, usage: (u64, u64)) {
    let info = c.get_session(id).await.unwrap();
    assert_eq!(info.round_count, 2);
    assert_eq!(
        (info.usage.input_tokens, info.usage.output_tokens),
        (2 * usage.0, 2 * usage.1)
    );
}

#[tokio::test]
async fn the_openai_agent_receives_overrides_and_the_history() {
    let mut llm = FakeLlm::start().await;
    let records = Records::new();
    let d = Daemon::start_with(&config(&llm, &records, "")).await;
    let c = d.tui().await;
    let id = new_session(&c, "llm").await;

    let v = turn(&c, &id, "first").await;
    assert_ended_well(&v, "reply to first", LLM_USAGE);
    let r = llm.request().await;
    assert!(
        r.head.starts_with("POST /v1/chat/completions "),
        "{}",
        r.head
    );
    assert_eq!(r.body["model"], "configured-model");
    assert_eq!(r.body["temperature"], 0.5);
    assert_eq!(r.body["stream"], true);
    assert_eq!(r.body["messages"], json!([message("user", "first")]));

    set_model_and_temperature(&c, &id).await;
    let v = turn(&c, &id, "second").await;
    assert_ended_well(&v, "reply to second", LLM_USAGE);
    let r = llm.request().await;
    assert_eq!(r.body["model"], "override-model");
    assert_eq!(r.body["temperature"], 1.25);
    assert_eq!(
        r.body["messages"],
        json!([
            message("user", "first"),
            message("assistant", "reply to first"),
            message("user", "second"),
        ])
    );

    assert_two_rounds_counted(&c, &id, LLM_USAGE).await;
}

#[tokio::test]
async fn the_command_agent_receives_overrides_and_the_history() {
    let llm = FakeLlm::start().await;
    let records = Records::new();
    let d = Daemon::start_with(&config(&llm, &records, "")).await;
    let c = d.tui().await;
    let id = new_session(&c, "script").await;

    let v1 = turn(&c, &id, "first").await;
    assert_ended_well(&v1, "reply to first", SCRIPT_USAGE);
    set_model_and_temperature(&c, &id).await;
    let v2 = turn(&c, &id, "second").await;
    assert_ended_well(&v2, "reply to second", SCRIPT_USAGE);

    let seen: Vec<Value> = records
        .all()
        .into_iter()
        .map(|r| r["turn"].clone())
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for (line, v) in seen.iter().zip([&v1, &v2]) {
        assert_eq!(line["type"], "turn");
        assert_eq!(line["session_id"], json!(id));
        assert_eq!(line["turn_id"], json!(v.turn_id));
    }
    assert_eq!(seen[0]["text"], "first");
    assert_eq!(seen[0]["history"], json!([]));
    assert_eq!(
        serde_json::from_value::<Overrides>(seen[0]["overrides"].clone()).unwrap(),
        Overrides::default()
    );
    assert_eq!(seen[1]["text"], "second");
    assert_eq!(
        seen[1]["history"],
        json!([
            message("user", "first"),
            message("assistant", "reply to first")
        ])
    );
    assert_eq!(seen[1]["overrides"]["model"], "override-model");
    assert_eq!(seen[1]["overrides"]["temperature"], 1.25);

    assert_two_rounds_counted(&c, &id, SCRIPT_USAGE).await;
}

#[tokio::test]
async fn model_provider_moves_a_session_between_kinds_with_its_history() {
    let mut llm = FakeLlm::start().await;
    let records = Records::new();
    let d = Daemon::start_with(&config(&llm, &records, "")).await;
    let c = d.tui().await;
    let id = new_session(&c, "llm").await;

    assert_ended_well(&turn(&c, &id, "first").await, "reply to first", LLM_USAGE);
    llm.request().await;

    // To the command alias, with a model for it.
    c.configure(
        &id,
        OverridesPatch {
            model_provider: Patch::Set("script".into()),
            model: Patch::Set("script-model".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let v = turn(&c, &id, "second").await;
    assert_ended_well(&v, "reply to second", SCRIPT_USAGE);
    let seen = records.all();
    assert_eq!(seen.len(), 1, "the recorder ran the second turn: {seen:?}");
    let line = &seen[0]["turn"];
    assert_eq!(line["overrides"]["model"], "script-model");
    assert_eq!(line["overrides"]["model_provider"], "script");
    assert_eq!(
        line["history"],
        json!([
            message("user", "first"),
            message("assistant", "reply to first")
        ])
    );

    // Back to the openai alias: the provider switch cleared the model.
    c.configure(
        &id,
        OverridesPatch {
            model_provider: Patch::Set("llm".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_ended_well(&turn(&c, &id, "third").await, "reply to third", LLM_USAGE);
    let r = llm.request().await;
    assert_eq!(r.body["model"], "configured-model");
    assert_eq!(
        r.body["messages"],
        json!([
            message("user", "first"),
            message("assistant", "reply to first"),
            message("user", "second"),
            message("assistant", "reply to second"),
            message("user", "third"),
        ])
    );

    let info = c.get_session(&id).await.unwrap();
    assert_eq!(info.agent, "llm");
    assert_eq!(info.round_count, 3);
    assert_eq!(
        (info.usage.input_tokens, info.usage.output_tokens),
        (
            2 * LLM_USAGE.0 + SCRIPT_USAGE.0,
            2 * LLM_USAGE.1 + SCRIPT_USAGE.1
        )
    );
}
