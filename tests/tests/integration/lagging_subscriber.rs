//! A subscriber that stops reading while a turn streams is cut off by the hub and
//! catches up from the replay window when it reads again, with no gap and no
//! duplicate, even when the session was closed while it was behind.

use sessiond_protocol::params::NewSessionParams;
use sessiond_protocol::{CloseReason, Event};
use sessiond_tests::raw_ws::RawWs;
use sessiond_tests::{Daemon, WAIT};

/// Far more events than the socket, the connection's message buffer and the
/// subscriber's queue hold together, so the stalled subscriber is cut off.
const CHUNKS: usize = 40_000;

#[tokio::test]
async fn a_cut_off_subscriber_catches_up_to_session_closed() {
    let d = Daemon::start_with(
        "default_agent = \"tiny\"\nevent_window = 100000\nsubscriber_buffer = 16\n\
         [agents.tiny]\nkind = \"echo\"\nchunk_chars = 1\n",
    )
    .await;
    let owner = d.tui().await;
    let id = owner
        .new_session(NewSessionParams::default())
        .await
        .unwrap()
        .session
        .session_id;

    let mut stalled = RawWs::connect(&d.socket()).await.unwrap();
    stalled.subscribe(id.as_str(), Some(0)).await.unwrap();

    // The turn runs to its end and the session closes while the subscriber reads nothing.
    let verdict = owner.prompt_wait(&id, "x".repeat(CHUNKS)).await.unwrap();
    assert_eq!(verdict.content.len(), CHUNKS);
    owner.close_session(&id).await.unwrap();

    let mut seqs = Vec::new();
    let mut chunks = 0;
    let last = loop {
        let env = tokio::time::timeout(WAIT, stalled.next_event())
            .await
            .expect("the subscriber gets every event")
            .unwrap();
        seqs.push(env.seq);
        match env.event {
            Event::AgentMessageChunk { .. } => chunks += 1,
            Event::SessionClosed { reason } => break reason,
            Event::Resync { .. } => panic!("the window holds every event: {env:?}"),
            _ => {}
        }
    };
    assert_eq!(last, CloseReason::Closed);
    assert_eq!(chunks, CHUNKS, "every chunk arrives exactly once");
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "no gap and no duplicate");
}
