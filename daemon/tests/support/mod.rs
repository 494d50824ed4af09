//! Running one provider turn in a test, observed through a real event hub: shared
//! by the provider tests (`agent_command.rs`, `agent_openai.rs`).
// Each test crate includes this module and uses a different part of it.
#![allow(dead_code)]

use sessiond::agent::{Agent, RequestResponse, TurnInput, TurnIo};
use sessiond::events::{EventHub, Subscription};
use sessiond::turn::emitter::Emitter;
use sessiond_protocol::{Event, Overrides, SessionId, TurnId};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a turn may take to produce an event or to end.
pub const TURN_LIMIT: Duration = Duration::from_secs(20);

/// A turn of session `sess-1` with nothing but `text`.
pub fn input(text: &str) -> TurnInput {
    TurnInput {
        session_id: SessionId::from("sess-1"),
        turn_id: TurnId::from("turn-1"),
        text: text.to_owned(),
        attachments: vec![],
        history: vec![],
        overrides: Overrides::default(),
        cwd: None,
    }
}

/// A turn running in the background, observed through its hub.
pub struct Running {
    pub sub: Subscription,
    pub emit: Emitter,
    pub responses: mpsc::UnboundedSender<RequestResponse>,
    pub cancel: CancellationToken,
    pub handle: JoinHandle<Result<(), String>>,
    _hub: Arc<EventHub>,
}

pub fn start(agent: &dyn Agent, input: TurnInput) -> Running {
    let hub = Arc::new(EventHub::new(
        input.session_id.clone(),
        0,
        vec![],
        4096,
        4096,
        None,
    ));
    let sub = hub.subscribe(None).expect("subscribe");
    let emit = Emitter::detached(input.turn_id.clone(), hub.clone());
    let (responses, rx) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let io = TurnIo {
        emit: emit.clone(),
        responses: rx,
        cancel: cancel.clone(),
    };
    let handle = tokio::spawn(agent.run(input, io));
    Running {
        sub,
        emit,
        responses,
        cancel,
        handle,
        _hub: hub,
    }
}

impl Running {
    /// Waits for the next event.
    pub async fn next(&mut self) -> Event {
        let env = tokio::time::timeout(TURN_LIMIT, self.sub.rx.recv())
            .await
            .expect("an event in time")
            .expect("hub open");
        env.event.clone()
    }

    /// Waits for the turn to end; returns its result and every event not yet read.
    pub async fn end(mut self) -> (Result<(), String>, Vec<Event>) {
        let result = tokio::time::timeout(TURN_LIMIT, &mut self.handle)
            .await
            .expect("the turn ends in time")
            .expect("no panic");
        let mut events = Vec::new();
        while let Ok(env) = self.sub.rx.try_recv() {
            events.push(env.event.clone());
        }
        (result, events)
    }
}

/// Runs a turn to its end: its result, its events and its emitter.
pub async fn run(agent: &dyn Agent, input: TurnInput) -> (Result<(), String>, Vec<Event>, Emitter) {
    let r = start(agent, input);
    let emit = r.emit.clone();
    let (result, events) = r.end().await;
    (result, events, emit)
}
