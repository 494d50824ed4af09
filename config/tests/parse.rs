//! Parsing tests: defaults, a full file, unknown keys, agent kinds and the TOML round trip.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sessiond_config::{
    AgentConfig, CommandAgent, Config, ConfigError, EchoAgent, OpenAiAgent, RetentionConfig,
    WsConfig,
};

const FULL: &str = r#"
socket = "/run/user/1000/sd.sock"
data_dir = "/var/lib/sessiond"
default_agent = "gpt"
max_live_sessions = 10
max_queued_turns = 4
max_upload_bytes = 2048
max_turn_secs = 600
session_ttl_secs = 3600
event_window = 100
subscriber_buffer = 64
log = "sessiond=debug,info"

[ws]
listen = "127.0.0.1:7777"
token_file = "/etc/sessiond/ws.token"
allowed_origins = ["http://localhost:3000"]
allowed_hosts = ["localhost:7777"]
allow_remote = false
upgrade_timeout_secs = 30

[retention]
max_sessions = 500
max_age_days = 30

[agents.slow-echo]
kind = "echo"
chunk_chars = 8
chunk_delay_ms = 5

[agents.tool]
kind = "command"
command = ["python3", "agent.py", "--verbose"]
cancel_grace_ms = 500
env = { MODE = "test" }

[agents.gpt]
kind = "openai"
base_url = "https://api.openai.com/v1"
model = "gpt-4o-mini"
api_key_env = "OPENAI_API_KEY"
temperature = 0.7
connect_timeout_ms = 5000
idle_timeout_ms = 60000
"#;

fn parse_error(text: &str) -> String {
    match Config::from_toml_str(text) {
        Err(e @ ConfigError::Parse { .. }) => e.to_string(),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn defaults_match_the_protocol() {
    let c = Config::default();
    assert_eq!(c.socket, None);
    assert_eq!(c.data_dir, None);
    assert_eq!(c.default_agent, "echo");
    assert_eq!(c.max_live_sessions, 256);
    assert_eq!(c.max_queued_turns, 32);
    assert_eq!(c.max_upload_bytes, 10_485_760);
    assert_eq!(c.max_turn_secs, 0);
    assert_eq!(c.session_ttl_secs, 0);
    assert_eq!(c.event_window, 4096);
    assert_eq!(c.subscriber_buffer, 1024);
    assert_eq!(c.log, "info");
    assert_eq!(c.ws, WsConfig::default());
    assert_eq!(c.ws.listen, None);
    assert!(!c.ws.allow_remote);
    assert_eq!(c.ws.upgrade_timeout_secs, 10);
    assert_eq!(
        c.retention,
        RetentionConfig {
            max_sessions: 0,
            max_age_days: 0
        }
    );
    assert!(c.agents.is_empty());
    c.validate().expect("defaults are valid");
    assert_eq!(
        EchoAgent::default(),
        EchoAgent {
            chunk_chars: 64,
            chunk_delay_ms: 0
        }
    );
}

#[test]
fn an_empty_file_gives_the_defaults() {
    assert_eq!(
        Config::from_toml_str("").expect("empty parses"),
        Config::default()
    );
}

#[test]
fn a_full_file_parses_every_key() {
    let c = Config::from_toml_str(FULL).expect("full file parses");
    assert_eq!(c.socket, Some(PathBuf::from("/run/user/1000/sd.sock")));
    assert_eq!(c.data_dir, Some(PathBuf::from("/var/lib/sessiond")));
    assert_eq!(c.default_agent, "gpt");
    assert_eq!(c.max_live_sessions, 10);
    assert_eq!(c.max_queued_turns, 4);
    assert_eq!(c.max_upload_bytes, 2048);
    assert_eq!(c.max_turn_secs, 600);
    assert_eq!(c.session_ttl_secs, 3600);
    assert_eq!(c.event_window, 100);
    assert_eq!(c.subscriber_buffer, 64);
    assert_eq!(c.log, "sessiond=debug,info");
    assert_eq!(
        c.ws,
        WsConfig {
            listen: Some("127.0.0.1:7777".into()),
            token_file: Some(PathBuf::from("/etc/sessiond/ws.token")),
            allowed_origins: vec!["http://localhost:3000".into()],
            allowed_hosts: vec!["localhost:7777".into()],
            allow_remote: false,
            upgrade_timeout_secs: 30,
        }
    );
    assert_eq!(
        c.retention,
        RetentionConfig {
            max_sessions: 500,
            max_age_days: 30
        }
    );
    assert_eq!(
        c.agents.get("slow-echo"),
        Some(&AgentConfig::Echo(EchoAgent {
            chunk_chars: 8,
            chunk_delay_ms: 5
        }))
    );
    assert_eq!(
        c.agents.get("tool"),
        Some(&AgentConfig::Command(CommandAgent {
            command: vec!["python3".into(), "agent.py".into(), "--verbose".into()],
            cancel_grace_ms: 500,
            env: BTreeMap::from([("MODE".to_owned(), "test".to_owned())]),
        }))
    );
    assert_eq!(
        c.agents.get("gpt"),
        Some(&AgentConfig::OpenAi(OpenAiAgent {
            base_url: "https://api.openai.com/v1".into(),
            model: Some("gpt-4o-mini".into()),
            api_key_env: Some("OPENAI_API_KEY".into()),
            temperature: Some(0.7),
            connect_timeout_ms: 5000,
            idle_timeout_ms: 60000,
        }))
    );
    let kinds: Vec<&str> = c.agents.values().map(AgentConfig::kind).collect();
    assert_eq!(kinds, ["openai", "echo", "command"]);
}

#[test]
fn agent_tables_fill_in_kind_defaults() {
    let c = Config::from_toml_str(
        r#"
[agents.e]
kind = "echo"
[agents.c]
kind = "command"
command = ["cat"]
[agents.o]
kind = "openai"
base_url = "http://localhost:11434/v1"
temperature = 1
"#,
    )
    .expect("minimal agents parse");
    assert_eq!(c.agent("e"), Some(AgentConfig::Echo(EchoAgent::default())));
    let Some(AgentConfig::Command(cmd)) = c.agent("c") else {
        panic!("c is a command agent");
    };
    assert_eq!(cmd.cancel_grace_ms, 2000);
    assert!(cmd.env.is_empty());
    let Some(AgentConfig::OpenAi(o)) = c.agent("o") else {
        panic!("o is an openai agent");
    };
    assert_eq!((o.model, o.api_key_env), (None, None));
    assert_eq!(
        o.temperature,
        Some(1.0),
        "an integer temperature is accepted"
    );
    assert_eq!((o.connect_timeout_ms, o.idle_timeout_ms), (10_000, 120_000));
}

#[test]
fn unknown_top_level_key_is_rejected_by_name() {
    let msg = parse_error("max_live_sesions = 3\n");
    assert!(msg.contains("unknown field `max_live_sesions`"), "{msg}");
    assert!(msg.contains("line 1"), "{msg}");
}

#[test]
fn unknown_ws_key_is_rejected_by_name() {
    let msg = parse_error("[ws]\nlisten = \"127.0.0.1:1\"\nallow_remotely = true\n");
    assert!(msg.contains("unknown field `allow_remotely`"), "{msg}");
}

#[test]
fn unknown_agent_key_is_rejected_by_name() {
    let msg = parse_error("[agents.e]\nkind = \"echo\"\nchunk_size = 3\n");
    assert!(msg.contains("unknown field `chunk_size`"), "{msg}");
    let msg =
        parse_error("[agents.c]\nkind = \"command\"\ncommand = [\"x\"]\nbase_url = \"http://x\"\n");
    assert!(msg.contains("unknown field `base_url`"), "{msg}");
}

#[test]
fn bad_or_missing_kind_is_rejected() {
    let msg = parse_error("[agents.x]\nkind = \"claude\"\n");
    assert!(msg.contains("unknown variant `claude`"), "{msg}");
    assert!(msg.contains("`openai`"), "{msg}");
    let msg = parse_error("[agents.x]\nchunk_chars = 3\n");
    assert!(msg.contains("missing field `kind`"), "{msg}");
}

#[test]
fn required_agent_keys_are_enforced() {
    let msg = parse_error("[agents.c]\nkind = \"command\"\n");
    assert!(msg.contains("missing field `command`"), "{msg}");
    let msg = parse_error("[agents.o]\nkind = \"openai\"\n");
    assert!(msg.contains("missing field `base_url`"), "{msg}");
}

#[test]
fn wrong_types_are_parse_errors() {
    let msg = parse_error("max_live_sessions = \"many\"\n");
    assert!(
        msg.starts_with("cannot parse configuration: line 1"),
        "{msg}"
    );
    let msg = parse_error("[agents.e]\nkind = \"echo\"\nchunk_delay_ms = -1\n");
    assert!(msg.contains("-1"), "{msg}");
}

#[test]
fn to_toml_string_round_trips() {
    let full = Config::from_toml_str(FULL).expect("full file parses");
    let text = full.to_toml_string();
    assert!(text.contains("kind = \"openai\""), "{text}");
    assert_eq!(Config::from_toml_str(&text).expect("re-parses"), full);

    let defaults = Config::default();
    let text = defaults.to_toml_string();
    assert!(
        !text.contains("socket"),
        "unset options are omitted: {text}"
    );
    assert_eq!(Config::from_toml_str(&text).expect("re-parses"), defaults);
}

#[test]
fn echo_exists_without_configuration() {
    let c = Config::default();
    assert_eq!(
        c.agent("echo"),
        Some(AgentConfig::Echo(EchoAgent::default()))
    );
    assert_eq!(c.agent("echo").map(|a| a.kind()), Some("echo"));
    assert_eq!(c.agent("gpt"), None);
    assert_eq!(c.agent_aliases(), ["echo"]);
}

#[test]
fn configured_echo_replaces_the_builtin_and_aliases_are_sorted() {
    let c = Config::from_toml_str(
        "[agents.echo]\nkind = \"echo\"\nchunk_chars = 2\n[agents.zed]\nkind = \"echo\"\n[agents.abc]\nkind = \"echo\"\n",
    )
    .expect("parses");
    assert_eq!(
        c.agent("echo"),
        Some(AgentConfig::Echo(EchoAgent {
            chunk_chars: 2,
            chunk_delay_ms: 0
        }))
    );
    assert_eq!(c.agent_aliases(), ["abc", "echo", "zed"]);
}

#[test]
fn socket_path_uses_the_given_socket() {
    let c = Config::from_toml_str("socket = \"/tmp/x/my.sock\"\n").expect("parses");
    assert_eq!(c.socket_path(), PathBuf::from("/tmp/x/my.sock"));
    assert!(Config::default().socket_path().ends_with("sessiond.sock"));
}

#[test]
fn durability_defaults_to_power_and_takes_crash() {
    assert_eq!(
        Config::default().durability,
        sessiond_config::Durability::Power
    );
    let c = Config::from_toml_str("durability = \"crash\"\n").expect("parses");
    assert_eq!(c.durability, sessiond_config::Durability::Crash);
    let msg = parse_error("durability = \"fast\"\n");
    assert!(msg.contains("unknown variant `fast`"), "{msg}");
}
