//! The sessiond wire contract: types, method and event names, error codes and the
//! JSON-RPC API as jsonrpsee `#[rpc]` traits. No transport and no I/O live here.

pub mod api;
mod buffered;
pub mod error;
pub mod events;
pub mod feed;
pub mod ids;
pub mod methods;
pub mod params;
pub mod patch;
pub mod request;
pub mod schema;
pub mod types;

pub use error::codes;
pub use events::{Event, EventEnvelope};
pub use feed::DaemonUpdate;
pub use ids::{RequestId, SessionId, TuiId, TurnId};
pub use patch::Patch;
pub use request::{OptionKind, RequestAnswer, RequestOption};
pub use types::*;

/// The protocol version this crate describes.
pub const PROTOCOL_VERSION: u32 = 1;
