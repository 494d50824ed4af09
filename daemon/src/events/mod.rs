//! Session events: sequence numbers, a bounded replay window, and fan-out to
//! subscribers through bounded per-subscriber queues.

mod hub;

pub use hub::{EventHub, EventSink, HubClosed, Subscription};
