//! Reloading the configuration file at run time (SIGHUP, `admin/reload`): the agents,
//! the limits (`max_live_sessions`, `max_queued_turns`, `max_turn_secs`,
//! `session_ttl_secs`) and the log filter change; an invalid file is refused with every problem and the
//! running configuration is kept. A reload never stops the daemon.

use crate::agent::Agents;
use crate::state::Daemon;
use sessiond_config::{Config, LoadOptions};
use sessiond_protocol::params::ReloadResult;
use std::sync::{Mutex, OnceLock};

/// How the running configuration was loaded (file, flags), to load it again.
static SOURCE: OnceLock<LoadOptions> = OnceLock::new();
/// The configuration last applied (the start-up one until a reload).
static CURRENT: Mutex<Option<Config>> = Mutex::new(None);

/// Remembers how `serve` loaded its configuration.
pub fn set_source(opts: LoadOptions) {
    let _ = SOURCE.set(opts);
}

/// Reads the configuration again and applies what can change at run time.
pub fn reload(d: &Daemon) -> ReloadResult {
    let opts = SOURCE.get().cloned().unwrap_or_default();
    let new = match Config::load(&opts) {
        Ok(loaded) => loaded.config,
        Err(e) => return refused(e),
    };
    let directive = crate::logging::directive(&new);
    if let Err(p) = crate::logging::check_filter(&directive) {
        return refused_with(vec![p]);
    }
    let mut current = CURRENT.lock().unwrap_or_else(|p| p.into_inner());
    let old = current.clone().unwrap_or_else(|| (*d.cfg).clone());
    let mut result = ReloadResult {
        reloaded: true,
        ..Default::default()
    };
    if old.agents != new.agents {
        d.store.agents.replace(Agents::from_config(&new));
        result.changed.push("agents".into());
    }
    if crate::logging::directive(&old) != directive {
        if let Err(p) = crate::logging::set_filter(&directive) {
            return refused_with(vec![p]);
        }
        result.changed.push("log".into());
    }
    let limits = [
        (
            "max_live_sessions",
            old.max_live_sessions != new.max_live_sessions,
        ),
        (
            "max_queued_turns",
            old.max_queued_turns != new.max_queued_turns,
        ),
        ("max_turn_secs", old.max_turn_secs != new.max_turn_secs),
        (
            "session_ttl_secs",
            old.session_ttl_secs != new.session_ttl_secs,
        ),
    ];
    if limits.iter().any(|(_, changed)| *changed) {
        d.store.limits.set(&new);
        result.changed.extend(
            limits
                .iter()
                .filter(|(_, changed)| *changed)
                .map(|(k, _)| (*k).to_owned()),
        );
    }
    result.restart_needed = restart_needed(&old, &new);
    tracing::info!(
        changed = ?result.changed,
        restart_needed = ?result.restart_needed,
        "configuration reloaded"
    );
    *current = Some(new);
    result
}

fn refused(e: sessiond_config::ConfigError) -> ReloadResult {
    let problems = if e.problems().is_empty() {
        vec![e.to_string()]
    } else {
        e.problems().iter().map(|p| p.to_string()).collect()
    };
    refused_with(problems)
}

fn refused_with(problems: Vec<String>) -> ReloadResult {
    for p in &problems {
        tracing::error!(problem = %p, "configuration refused; keeping the running one");
    }
    ReloadResult {
        reloaded: false,
        problems,
        ..Default::default()
    }
}

/// The keys that differ but are read only at start-up.
fn restart_needed(old: &Config, new: &Config) -> Vec<String> {
    let mut keys = Vec::new();
    let mut check = |key: &str, differs: bool| {
        if differs {
            keys.push(key.to_owned());
        }
    };
    check("socket", old.socket != new.socket);
    check("data_dir", old.data_dir != new.data_dir);
    check("default_agent", old.default_agent != new.default_agent);
    check(
        "max_upload_bytes",
        old.max_upload_bytes != new.max_upload_bytes,
    );
    check("event_window", old.event_window != new.event_window);
    check(
        "subscriber_buffer",
        old.subscriber_buffer != new.subscriber_buffer,
    );
    check("log_format", old.log_format != new.log_format);
    check("ws", old.ws != new.ws);
    check("retention", old.retention != new.retention);
    keys
}
