//! The turn runner: one task per session with work, running its turns in order.

pub mod emitter;
pub mod runner;
