//! Typed client for sessiond: connect over the Unix socket (or the TCP WebSocket),
//! call every protocol method with the `sessiond-protocol` types, and follow a
//! session's events as a `Stream`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sessiond_client::Error> {
//! use sessiond_client::{Client, ConnectOptions};
//! use sessiond_client::protocol::params::NewSessionParams;
//!
//! let client = Client::connect_unix("/run/user/1000/sessiond/sessiond.sock", ConnectOptions::default()).await?;
//! client.initialize("my-tui", None).await?;
//! let session = client.new_session(NewSessionParams::default()).await?.session;
//! let mut events = client.subscribe(&session.session_id, None).await?;
//! let verdict = client.prompt_wait(&session.session_id, "hello").await?;
//! while let Some(ev) = events.next_event().await {
//!     let ev = ev?;
//!     if ev.event.type_name() == "turn_complete" { break; }
//! }
//! # let _ = verdict; Ok(()) }
//! ```

pub mod client;
pub mod connect;
pub mod error;
pub mod events;

pub use client::{Client, Identity};
pub use connect::{ConnectOptions, Endpoint, RpcClient};
pub use error::{Error, Result};
pub use events::{EventStream, StreamEnd};

/// The wire types, re-exported.
pub use sessiond_protocol as protocol;
pub use sessiond_protocol::{Event, EventEnvelope, RequestId, SessionId, TuiId, TurnId};
