//! The integration tests, as one test binary: each module drives a real `sessiond`
//! (started on temp dirs by `sessiond_tests`) over a real socket, pty or agent.
//!
//! One binary instead of one per file: every test binary links the whole client
//! stack (jsonrpsee, reqwest, the ACP crate, portable-pty), and forty-six of them
//! took ~4.6 GB of disk and a link each. Run one group with
//! `cargo test -p sessiond-tests --test integration multi_tui::`.

mod acp_acpx;
mod acp_agent;
mod acp_agent_process;
mod acp_bridge;
mod acp_python_agent;
mod agent_reaping;
mod agents;
mod attach_protocol;
mod attach_tui;
mod cli;
mod cli_daemon;
mod cli_pty;
mod cli_verbs;
mod crash_writers;
mod daemon_lifecycle;
mod data_at_rest;
mod discovery;
mod disk_full;
mod fd_limits;
mod fresh_start;
mod fuzz_frames;
mod handler_panics;
mod install;
mod jsonrpc_edges;
mod lagging_subscriber;
mod list_json;
mod listing;
mod logging;
mod metrics;
mod migration;
mod multi_tui;
mod ownership_and_eviction;
mod persistence;
mod races;
mod rename_and_agents;
mod reply_bounds;
mod requests;
mod retention;
mod rpc_span;
mod sessions_and_turns;
mod shutdown_many;
mod store_defects;
mod systemd;
mod turn_rules;
mod upload_bounds;
mod write_failures;
mod ws_edges;
mod ws_tcp;
