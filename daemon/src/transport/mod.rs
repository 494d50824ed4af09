//! Transports: the Unix socket (WebSocket and plain HTTP POST on one socket, peer uid
//! checked before any call) and the opt-in, token-protected TCP WebSocket.

pub mod accept;
pub mod gate;
pub mod http_edges;
pub mod ids;
pub mod json_skim;
pub mod peer;
pub mod socket;
pub mod tcp;
pub mod token;
pub mod unix;
pub mod ws_frames;
pub mod ws_ids;
pub mod ws_stream;
