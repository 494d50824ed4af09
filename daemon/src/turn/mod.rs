//! The turn runner: one task per session with work, running its turns in order.
//! It only runs agents: what a turn changes in its session happens through a
//! [`runner::TurnHost`] (the store), and agents publish through a sink owned by the turn.

pub mod cancel;
pub mod runner;

/// The agent-facing publisher, kept reachable under its former path.
pub use crate::agent::emit as emitter;
