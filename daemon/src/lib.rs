//! sessiond: the long-running daemon that owns AI agent sessions for terminal UIs,
//! the way the tmux server owns shells. `main.rs` only parses the command line.

pub mod agent;
pub mod client;
pub mod data_dir;
pub mod events;
pub mod identity;
pub mod logging;
pub mod metrics;
pub mod persist;
pub mod record;
pub mod reload;
pub mod rpc;
pub mod server;
pub mod state;
pub mod store;
pub mod systemd;
pub mod transport;
pub mod turn;
pub mod uploads;
pub mod util;
