//! Helpers for the ACP tests: the crate-written test agent (`acp-test-agent`, built
//! with this package), a configuration that runs it, and its log of what it received.

use serde_json::Value;
use std::path::{Path, PathBuf};

/// The test agent binary, next to the test executables.
pub fn test_agent() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("acp-test-agent");
    assert!(
        bin.exists(),
        "{} not found: build it first (`cargo build -p sessiond-tests --bin acp-test-agent`)",
        bin.display()
    );
    bin
}

/// A `[agents.NAME]` table running the test agent with its state in `state`;
/// `extra` lines are added to the table.
pub fn agent_table(name: &str, state: &Path, extra: &str) -> String {
    format!(
        "[agents.{name}]\nkind = \"acp\"\ncommand = [{}]\ncancel_grace_ms = 1000\n{extra}\n[agents.{name}.env]\nACP_TEST_STATE = {}\n",
        Value::String(test_agent().display().to_string()),
        Value::String(state.display().to_string()),
    )
}

/// The entries the test agent logged so far.
pub fn agent_log(state: &Path) -> Vec<Value> {
    std::fs::read_to_string(state.join("log.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The logged entries of one kind (`initialize`, `new`, `load`, `prompt`, `cancel`, ...).
pub fn logged(state: &Path, event: &str) -> Vec<Value> {
    agent_log(state)
        .into_iter()
        .filter(|e| e["event"] == event)
        .collect()
}
