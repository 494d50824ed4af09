//! Layering tests: defaults < file < environment < flags, and how the file is found.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use sessiond_config::{Config, ConfigError, LoadOptions};

/// An environment lookup backed by a map, standing in for the process environment.
fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create config dir");
    }
    fs::write(&path, text).expect("write config file");
    path
}

const FILE: &str = r#"
socket = "/from/file.sock"
data_dir = "/from/file/data"
max_live_sessions = 7
max_turn_secs = 30
log = "debug"
[ws]
listen = "127.0.0.1:1000"
"#;

#[test]
fn env_overrides_file_and_flags_override_env() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "c.toml", FILE);
    let file_str = file.to_str().expect("utf-8 temp path");

    // File only.
    let only_file = env_of(&[("SESSIOND_CONFIG", file_str)]);
    let loaded = Config::load_with_env(&LoadOptions::default(), &only_file).expect("loads");
    assert_eq!(loaded.source.as_deref(), Some(file.as_path()));
    assert_eq!(loaded.config.socket, Some(PathBuf::from("/from/file.sock")));
    assert_eq!(loaded.config.max_live_sessions, 7);
    assert_eq!(
        loaded.config.max_queued_turns, 32,
        "untouched keys keep defaults"
    );

    // Environment over file.
    let env = env_of(&[
        ("SESSIOND_CONFIG", file_str),
        ("SESSIOND_SOCKET", "/from/env.sock"),
        ("SESSIOND_DATA_DIR", "/from/env/data"),
        ("SESSIOND_MAX_LIVE_SESSIONS", "9"),
        ("SESSIOND_MAX_QUEUED_TURNS", "3"),
        ("SESSIOND_MAX_UPLOAD_BYTES", "4096"),
        ("SESSIOND_MAX_TURN_SECS", "60"),
        ("SESSIOND_SESSION_TTL_SECS", "120"),
        ("SESSIOND_LOG", "trace"),
        ("SESSIOND_DEFAULT_AGENT", "echo"),
        ("SESSIOND_WS_LISTEN", "127.0.0.1:2000"),
    ]);
    let c = Config::load_with_env(&LoadOptions::default(), &env)
        .expect("loads")
        .config;
    assert_eq!(c.socket, Some(PathBuf::from("/from/env.sock")));
    assert_eq!(c.data_dir, Some(PathBuf::from("/from/env/data")));
    assert_eq!(c.max_live_sessions, 9);
    assert_eq!(c.max_queued_turns, 3);
    assert_eq!(c.max_upload_bytes, 4096);
    assert_eq!(c.max_turn_secs, 60);
    assert_eq!(c.session_ttl_secs, 120);
    assert_eq!(c.log, "trace");
    assert_eq!(c.ws.listen.as_deref(), Some("127.0.0.1:2000"));

    // Flags over environment.
    let flags = LoadOptions {
        socket: Some(PathBuf::from("/from/flag.sock")),
        data_dir: Some(PathBuf::from("/from/flag/data")),
        ws_listen: Some("127.0.0.1:3000".into()),
        ..LoadOptions::default()
    };
    let c = Config::load_with_env(&flags, &env).expect("loads").config;
    assert_eq!(c.socket, Some(PathBuf::from("/from/flag.sock")));
    assert_eq!(c.data_dir, Some(PathBuf::from("/from/flag/data")));
    assert_eq!(c.ws.listen.as_deref(), Some("127.0.0.1:3000"));
    assert_eq!(
        c.max_live_sessions, 9,
        "env still applies where no flag is given"
    );
    assert_eq!(c.socket_path(), PathBuf::from("/from/flag.sock"));
}

#[test]
fn config_flag_beats_sessiond_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let by_env = write(dir.path(), "env.toml", "max_live_sessions = 1\n");
    let by_flag = write(dir.path(), "flag.toml", "max_live_sessions = 2\n");
    let env = env_of(&[("SESSIOND_CONFIG", by_env.to_str().expect("utf-8"))]);
    let opts = LoadOptions {
        config_file: Some(by_flag.clone()),
        ..LoadOptions::default()
    };
    let loaded = Config::load_with_env(&opts, &env).expect("loads");
    assert_eq!(loaded.source, Some(by_flag));
    assert_eq!(loaded.config.max_live_sessions, 2);
}

#[test]
fn a_named_missing_file_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.toml");
    let opts = LoadOptions {
        config_file: Some(missing.clone()),
        ..LoadOptions::default()
    };
    match Config::load_with_env(&opts, &env_of(&[])) {
        Err(ConfigError::Io { path, source }) => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected an io error, got {other:?}"),
    }
    let env = env_of(&[("SESSIOND_CONFIG", missing.to_str().expect("utf-8"))]);
    let err = Config::load_with_env(&LoadOptions::default(), &env).expect_err("named by env");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read config file {}: ", missing.display())),
        "{err}"
    );
}

#[test]
fn a_missing_default_file_is_fine_and_a_present_one_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let xdg = dir.path().to_str().expect("utf-8").to_owned();
    let env = env_of(&[
        ("XDG_CONFIG_HOME", xdg.as_str()),
        ("HOME", "/nonexistent-home"),
    ]);
    let loaded = Config::load_with_env(&LoadOptions::default(), &env).expect("defaults");
    assert_eq!(loaded.source, None);
    assert_eq!(loaded.config, Config::default());

    let path = write(dir.path(), "sessiond/config.toml", "max_queued_turns = 5\n");
    let loaded = Config::load_with_env(&LoadOptions::default(), &env).expect("reads default");
    assert_eq!(loaded.source, Some(path));
    assert_eq!(loaded.config.max_queued_turns, 5);
}

#[test]
fn home_is_used_when_xdg_config_home_is_unset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        ".config/sessiond/config.toml",
        "event_window = 20\n",
    );
    let env = env_of(&[("HOME", dir.path().to_str().expect("utf-8"))]);
    let loaded = Config::load_with_env(&LoadOptions::default(), &env).expect("reads home");
    assert_eq!(loaded.source, Some(path));
    assert_eq!(loaded.config.event_window, 20);
}

#[test]
fn a_bad_env_number_names_its_variable() {
    let env = env_of(&[
        ("HOME", "/nonexistent-home"),
        ("SESSIOND_MAX_UPLOAD_BYTES", "10MB"),
    ]);
    match Config::load_with_env(&LoadOptions::default(), &env) {
        Err(ConfigError::Env { var, message }) => {
            assert_eq!(var, "SESSIOND_MAX_UPLOAD_BYTES");
            assert!(message.contains("10MB"), "{message}");
        }
        other => panic!("expected an env error, got {other:?}"),
    }
    let env = env_of(&[
        ("HOME", "/nonexistent-home"),
        ("SESSIOND_MAX_TURN_SECS", "-1"),
    ]);
    let err = Config::load_with_env(&LoadOptions::default(), &env).expect_err("negative");
    assert!(
        err.to_string()
            .starts_with("environment variable SESSIOND_MAX_TURN_SECS: "),
        "{err}"
    );
}

#[test]
fn layered_values_are_validated_together() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "c.toml", "event_window = 1\n");
    let env = env_of(&[
        ("SESSIOND_CONFIG", file.to_str().expect("utf-8")),
        ("SESSIOND_MAX_LIVE_SESSIONS", "0"),
    ]);
    let flags = LoadOptions {
        ws_listen: Some("10.0.0.1:7777".into()),
        ..LoadOptions::default()
    };
    let err = Config::load_with_env(&flags, &env).expect_err("invalid");
    let mut keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["event_window", "max_live_sessions", "ws.listen"]);
}

#[test]
fn a_malformed_file_names_the_file_and_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "c.toml",
        "[ws]\nlisten = \"127.0.0.1:1\"\nport = 3\n",
    );
    let opts = LoadOptions {
        config_file: Some(file.clone()),
        ..LoadOptions::default()
    };
    match Config::load_with_env(&opts, &env_of(&[])) {
        Err(err @ ConfigError::Parse { .. }) => {
            let shown = err.to_string();
            assert!(
                shown.starts_with(&format!(
                    "cannot parse config file {}: line 3",
                    file.display()
                )),
                "{shown}"
            );
            assert!(shown.contains("unknown field `port`"), "{shown}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}
