//! The API key: sent to the provider, never in a verdict or the daemon's log.

use super::*;

const KEY_VAR: &str = "SESSIOND_TEST_LLM_KEY";
const KEY: &str = "sk-agents-test-5f1e9c0d2b7a4e83";

/// A daemon with the API key in its environment (the harness's daemons get a
/// cleared environment); killed when dropped.
struct KeyedDaemon {
    dirs: Dirs,
    child: Child,
}

impl KeyedDaemon {
    async fn start(config: &str) -> KeyedDaemon {
        let dirs = Dirs::new();
        std::fs::write(dirs.config_path(), config).unwrap();
        let log = std::fs::File::create(dirs.log_path()).unwrap();
        let child = dirs
            .command()
            .env(KEY_VAR, KEY)
            // As talkative as it gets short of trace: the key must still not appear.
            .env("SESSIOND_LOG", "debug")
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn sessiond");
        let d = KeyedDaemon { dirs, child };
        let socket = d.dirs.socket();
        wait_for("the daemon to accept connections", || {
            let socket = socket.clone();
            async move { ready(&socket).await.then_some(()) }
        })
        .await;
        d
    }

    async fn tui(&self) -> Client {
        let c = Client::connect_unix(self.dirs.socket(), ConnectOptions::default())
            .await
            .expect("connect");
        c.initialize("agents-test", None).await.expect("initialize");
        c
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dirs.log_path()).unwrap_or_default()
    }
}

async fn ready(socket: &Path) -> bool {
    http_post(
        socket,
        r#"{"jsonrpc":"2.0","id":0,"method":"daemon/status"}"#,
    )
    .await
    .is_ok()
}

impl Drop for KeyedDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_api_key_is_sent_but_never_reaches_a_verdict_or_the_log() {
    let mut llm = FakeLlm::start().await;
    let records = Records::new();
    let cfg = format!(
        "{}\n[agents.keyed]\nkind = \"openai\"\nbase_url = {}\nmodel = \"m\"\napi_key_env = \"{KEY_VAR}\"\n",
        config(&llm, &records, ""),
        Value::from(llm.base_url.as_str()),
    );
    let d = KeyedDaemon::start(&cfg).await;
    let c = d.tui().await;
    let id = new_session(&c, "keyed").await;

    let v = turn(&c, &id, "reject").await;
    let r = llm.request().await;
    assert!(
        r.head.to_ascii_lowercase().contains(&format!(
            "authorization: bearer {}",
            KEY.to_ascii_lowercase()
        )),
        "the key is sent: {}",
        r.head
    );
    assert_eq!(v.stop_reason, StopReason::Failed, "{v:?}");
    let error = v.error.expect("an error");
    assert!(error.contains("HTTP 401"), "{error}");
    assert!(error.contains("invalid credentials"), "{error}");
    assert!(
        !error.contains(KEY),
        "the key leaked into the verdict: {error}"
    );
    // Nor in the transcript's stored verdict, nor in the log.
    let info = c.get_session(&id).await.unwrap();
    assert_eq!(info.round_count, 1);
    assert!(!serde_json::to_string(&info).unwrap().contains(KEY));
    assert!(!d.log().contains(KEY), "the key is in the log");
}
