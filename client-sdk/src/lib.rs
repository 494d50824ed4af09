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
//!
//! # Reconnecting
//!
//! [`ReconnectingClient`] does what a TUI needs when its connection drops or the daemon
//! restarts, without the TUI writing it: it dials again with exponential backoff
//! ([`ReconnectOptions`]), repeats `initialize` with the same identity (so the TUI still
//! owns its sessions), and each [`ResumingEventStream`] subscribes again with the last
//! `seq` it yielded, dropping anything it already yielded: the consumer's stream goes
//! on with no gap and no duplicate. A pending `request` the daemon delivers again is
//! yielded once. [`ReconnectingClient::next_reconnect`] and
//! [`ReconnectingClient::generation`] signal reconnects; `resync` events pass through.
//!
//! ```no_run
//! # async fn demo(session: sessiond_client::SessionId) -> Result<(), sessiond_client::Error> {
//! use sessiond_client::ReconnectingClient;
//!
//! let rc = ReconnectingClient::connect_unix("/run/user/1000/sessiond/sessiond.sock", "my-tui", None).await?;
//! let mut events = rc.subscribe(&session, None).await?;
//! rc.client().await?.prompt_text(&session, "hello").await?;
//! while let Some(ev) = events.next_event().await {
//!     let ev = ev?; // goes on across reconnects
//!     if ev.event.type_name() == "turn_complete" { break; }
//! }
//! // Keep `rc.identity()` to be the same TUI in a later process.
//! # Ok(()) }
//! ```

pub mod backoff;
pub mod client;
pub mod connect;
pub mod error;
pub mod events;
pub mod feed;
pub mod reconnect;
pub mod resume;
pub mod trust;

pub use backoff::ReconnectOptions;
pub use client::{Client, Identity};
pub use connect::{ConnectOptions, Endpoint, RpcClient};
pub use error::{Error, Result};
pub use events::{EventStream, StreamEnd};
pub use feed::FeedStream;
pub use reconnect::ReconnectingClient;
pub use resume::ResumingEventStream;

/// The wire types, re-exported.
pub use sessiond_protocol as protocol;
pub use sessiond_protocol::{
    DaemonUpdate, Event, EventEnvelope, RequestId, SessionId, TuiId, TurnId,
};
