//! Session events: sequence numbers, a bounded replay window, and fan-out to
//! subscribers through bounded per-subscriber queues.

pub mod feed;
mod hub;
pub mod partial;
mod published;
mod window;

pub use feed::Feed;
pub use hub::{EventHub, EventSink, HubClosed, Subscription};
pub use partial::PartialTurn;
pub use published::Published;

/// The tool calls the running turn `turn_id` made so far (empty for another turn).
pub fn tools_of(hub: &EventHub, turn_id: &sessiond_protocol::TurnId) -> Vec<partial::ToolEntry> {
    match hub.snapshot().1 {
        Some(p) if &p.turn_id == turn_id => p.tools,
        _ => Vec::new(),
    }
}
