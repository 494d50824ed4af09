//! Validation tests: every problem is reported at once, each with its dotted key.

use sessiond_config::{AgentConfig, CommandAgent, Config, ConfigError, Problem};

fn problems(text: &str) -> Vec<Problem> {
    match Config::from_toml_str(text) {
        Err(ConfigError::Invalid(problems)) => problems,
        other => panic!("expected validation problems, got {other:?}"),
    }
}

fn keys(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.key.as_str()).collect()
}

#[test]
fn several_problems_are_collected_with_their_keys() {
    let found = problems(
        r#"
socket = "relative.sock"
data_dir = "data"
default_agent = "missing"
max_live_sessions = 0
max_queued_turns = 10001
max_upload_bytes = 0
event_window = 15
subscriber_buffer = 2
log = "  "

[ws]
listen = "localhost:7777"

[agents.gpt]
kind = "openai"
base_url = "ftp://example.com"
temperature = 2.5
api_key_env = " "

[agents.tool]
kind = "command"
command = []

[agents.blank]
kind = "command"
command = ["  ", "arg"]

[agents.fast]
kind = "echo"
chunk_chars = 0

[agents."bad name"]
kind = "echo"
"#,
    );
    let mut found_keys = keys(&found);
    found_keys.sort_unstable();
    let mut expected = vec![
        "socket",
        "data_dir",
        "default_agent",
        "max_live_sessions",
        "max_queued_turns",
        "max_upload_bytes",
        "event_window",
        "subscriber_buffer",
        "log",
        "ws.listen",
        "agents.gpt.base_url",
        "agents.gpt.temperature",
        "agents.gpt.api_key_env",
        "agents.tool.command",
        "agents.blank.command",
        "agents.fast.chunk_chars",
        "agents.\"bad name\"",
    ];
    expected.sort_unstable();
    assert_eq!(found_keys, expected, "{found:#?}");

    let err = ConfigError::Invalid(found.clone());
    let shown = err.to_string();
    assert!(shown.starts_with("invalid configuration: "), "{shown}");
    assert!(
        shown.contains("; max_live_sessions: must be at least 1"),
        "{shown}"
    );
    assert_eq!(err.problems(), found.as_slice());
}

#[test]
fn problem_display_is_key_colon_message() {
    let p = Problem {
        key: "agents.gpt.base_url".into(),
        message: "must start with http:// or https://".into(),
    };
    assert_eq!(
        p.to_string(),
        "agents.gpt.base_url: must start with http:// or https://"
    );
}

#[test]
fn boundary_values_are_accepted() {
    let c = Config::from_toml_str(
        r#"
max_live_sessions = 1
max_queued_turns = 0
max_upload_bytes = 1073741824
event_window = 16
subscriber_buffer = 16
default_agent = "my.agent_2-b"

[agents."my.agent_2-b"]
kind = "openai"
base_url = "http://127.0.0.1:8080/v1"
temperature = 0.0
"#,
    )
    .expect("boundary values are valid");
    let Err(err) = Config::from_toml_str("[agents.\"a.b\"]\nkind = \"echo\"\nchunk_chars = 0\n")
    else {
        panic!("chunk_chars = 0 is invalid");
    };
    assert_eq!(keys(err.problems()), ["agents.\"a.b\".chunk_chars"]);
    assert_eq!(c.max_queued_turns, 0);
    let too_big = problems("max_upload_bytes = 1073741825\n");
    assert_eq!(keys(&too_big), ["max_upload_bytes"]);
}

#[test]
fn non_loopback_ws_needs_allow_remote() {
    let found = problems("[ws]\nlisten = \"0.0.0.0:7777\"\n");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].key, "ws.listen");
    assert_eq!(
        found[0].message,
        "binding a non-loopback address needs ws.allow_remote = true"
    );
    Config::from_toml_str("[ws]\nlisten = \"0.0.0.0:7777\"\nallow_remote = true\n")
        .expect("allowed with allow_remote");
    Config::from_toml_str("[ws]\nlisten = \"[::1]:7777\"\n").expect("ipv6 loopback is fine");
    Config::from_toml_str("[ws]\nlisten = \"127.0.0.1:0\"\n").expect("ipv4 loopback is fine");
}

#[test]
fn the_upgrade_timeout_is_bounded() {
    for bad in ["0", "3601", "9223372036854775807"] {
        let found = problems(&format!("[ws]\nupgrade_timeout_secs = {bad}\n"));
        assert_eq!(keys(&found), ["ws.upgrade_timeout_secs"], "{bad}");
    }
    for good in [1, 3600] {
        let c = Config::from_toml_str(&format!("[ws]\nupgrade_timeout_secs = {good}\n"))
            .expect("within bounds");
        assert_eq!(c.ws.upgrade_timeout_secs, good);
    }
}

#[test]
fn nan_temperature_is_rejected() {
    let found =
        problems("[agents.o]\nkind = \"openai\"\nbase_url = \"https://x\"\ntemperature = nan\n");
    assert_eq!(keys(&found), ["agents.o.temperature"]);
}

#[test]
fn command_env_names_are_checked() {
    let mut config = Config::default();
    config.agents.insert(
        "tool".into(),
        AgentConfig::Command(CommandAgent {
            command: vec!["run".into()],
            cancel_grace_ms: 0,
            env: [("A=B".to_owned(), "x".to_owned())].into(),
        }),
    );
    let Err(err) = config.validate() else {
        panic!("an env name with `=` is invalid");
    };
    assert_eq!(keys(err.problems()), ["agents.tool.env"]);
}

#[test]
fn empty_agent_name_is_rejected() {
    let found = problems("[agents.\"\"]\nkind = \"echo\"\n");
    assert_eq!(keys(&found), ["agents.\"\""]);
}

#[test]
fn acp_agent_parses_with_defaults() {
    let c = Config::from_toml_str("[agents.codex]\nkind = \"acp\"\ncommand = [\"codex-acp\"]\n")
        .expect("a minimal acp agent is valid");
    let Some(AgentConfig::Acp(a)) = c.agent("codex") else {
        panic!("kind = \"acp\" reads as an acp agent");
    };
    assert_eq!(a.command, ["codex-acp"]);
    assert_eq!(a.cancel_grace_ms, 2000);
    assert_eq!(a.startup_timeout_ms, 30_000);
}

#[test]
fn acp_agent_problems_name_their_keys() {
    let found = problems(
        "[agents.a]\nkind = \"acp\"\ncommand = []\nstartup_timeout_ms = 0\nenv = { \"X=Y\" = \"1\" }\n",
    );
    assert_eq!(
        keys(&found),
        [
            "agents.a.command",
            "agents.a.env",
            "agents.a.startup_timeout_ms"
        ]
    );
    assert!(
        Config::from_toml_str("[agents.a]\nkind = \"acp\"\ncommand = [\"x\"]\nargs = 1\n").is_err(),
        "unknown keys are rejected"
    );
}
