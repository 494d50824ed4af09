//! The `openai` agent: one streamed `POST {base_url}/chat/completions` per turn
//! against any OpenAI-compatible endpoint (OpenAI, Ollama, llama.cpp, vLLM, LM
//! Studio). The API key is read from the configured environment variable at each
//! turn and never appears in an error. Cancel drops the connection at once.

use super::sse::{self, describe, excerpt, Activity, Flow, Reply};
use super::{Agent, TurnInput, TurnIo};
use eventsource_stream::{EventStreamError, Eventsource};
use futures::future::BoxFuture;
use futures::StreamExt;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Url;
use serde_json::{json, Value};
use sessiond_protocol::Role;
use std::sync::Arc;
use std::time::Duration;

/// A whole (not streamed) reply larger than this fails the turn.
const MAX_JSON_REPLY_BYTES: usize = 16 * 1024 * 1024;
/// How much of an error reply is read for its message.
const MAX_ERROR_BODY_BYTES: usize = 8 * 1024;

/// An OpenAI-compatible chat completions endpoint.
pub struct OpenAiAgent {
    settings: Arc<Settings>,
}

struct Settings {
    endpoint: Url,
    model: Option<String>,
    api_key_env: Option<String>,
    temperature: Option<f64>,
    idle: Option<Duration>,
    client: reqwest::Client,
}

impl OpenAiAgent {
    /// Checks the configuration and builds the HTTP client; no request is made.
    pub fn new(cfg: &sessiond_config::OpenAiAgent) -> Result<OpenAiAgent, String> {
        let endpoint = endpoint(&cfg.base_url)?;
        if let Some(var) = &cfg.api_key_env {
            if var.trim().is_empty() || var.contains(['=', '\0']) {
                return Err("api_key_env must name an environment variable".to_owned());
            }
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms.max(1)))
            .user_agent(concat!("sessiond/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the http client: {}", describe(&e)))?;
        Ok(OpenAiAgent {
            settings: Arc::new(Settings {
                endpoint,
                model: cfg.model.clone().filter(|m| !m.trim().is_empty()),
                api_key_env: cfg.api_key_env.clone(),
                temperature: cfg.temperature,
                idle: (cfg.idle_timeout_ms > 0).then(|| Duration::from_millis(cfg.idle_timeout_ms)),
                client,
            }),
        })
    }
}

/// `{base_url}/chat/completions`, keeping any query of the base URL.
pub fn endpoint(base_url: &str) -> Result<Url, String> {
    let mut url =
        Url::parse(base_url.trim()).map_err(|e| format!("base_url is not a valid url: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("base_url must start with http:// or https://".to_owned());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("base_url has no host".to_owned());
    }
    url.path_segments_mut()
        .map_err(|_| "base_url cannot have paths added".to_owned())?
        .pop_if_empty()
        .extend(["chat", "completions"]);
    Ok(url)
}

impl Agent for OpenAiAgent {
    fn kind(&self) -> &'static str {
        "openai"
    }

    fn run(&self, input: TurnInput, io: TurnIo) -> BoxFuture<'static, Result<(), String>> {
        let settings = self.settings.clone();
        Box::pin(async move {
            let key = match &settings.api_key_env {
                Some(var) => Some(read_key(var)?),
                None => None,
            };
            let auth = match &key {
                None => None,
                Some(key) => {
                    let mut v = HeaderValue::try_from(format!("Bearer {key}")).map_err(|_| {
                        format!(
                            "the api key in {} is not a valid http header value",
                            settings.api_key_env.as_deref().unwrap_or_default()
                        )
                    })?;
                    v.set_sensitive(true);
                    Some(v)
                }
            };
            let result = converse(&settings, &input, &io, auth).await;
            // Whatever a server echoes back, the key never leaves in a verdict.
            result.map_err(|e| scrub(e, key.as_deref()))
        })
    }
}

fn read_key(var: &str) -> Result<String, String> {
    match std::env::var(var) {
        Ok(key) if !key.trim().is_empty() => Ok(key.trim().to_owned()),
        Ok(_) => Err(format!("the api key variable {var} is empty")),
        Err(std::env::VarError::NotPresent) => {
            Err(format!("the api key variable {var} is not set"))
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(format!("the api key variable {var} is not valid unicode"))
        }
    }
}

fn scrub(message: String, key: Option<&str>) -> String {
    match key {
        Some(key) if key.len() >= 4 && message.contains(key) => message.replace(key, "[redacted]"),
        _ => message,
    }
}

/// The request's `messages`: the history, then this turn's text as the user.
fn messages(input: &TurnInput) -> Vec<Value> {
    let mut out: Vec<Value> = input
        .history
        .iter()
        .filter(|m| !m.content.is_empty())
        .map(|m| match m.role {
            Role::User => json!({"role": "user", "content": m.content}),
            Role::Assistant => json!({"role": "assistant", "content": m.content}),
            // Without the tool call ids a `tool` message is refused, so the model
            // sees a tool's output as context from the user side.
            Role::Tool => {
                json!({"role": "user", "content": format!("[tool output]\n{}", m.content)})
            }
        })
        .collect();
    out.push(json!({"role": "user", "content": input.text}));
    out
}

async fn converse(
    s: &Settings,
    input: &TurnInput,
    io: &TurnIo,
    auth: Option<HeaderValue>,
) -> Result<(), String> {
    let Some(model) = input.overrides.model.clone().or_else(|| s.model.clone()) else {
        return Err(
            "no model is set: configure `model` for the agent or set the session's model override"
                .to_owned(),
        );
    };
    let mut body = json!({
        "model": model,
        "messages": messages(input),
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if let Some(t) = input.overrides.temperature.or(s.temperature) {
        body["temperature"] = json!(t);
    }
    let mut request = s
        .client
        .post(s.endpoint.clone())
        .header(ACCEPT, "text/event-stream")
        .json(&body);
    if let Some(auth) = auth {
        request = request.header(AUTHORIZATION, auth);
    }

    let idle_ms = s.idle.map(|d| d.as_millis()).unwrap_or(0);
    let activity = Activity::default();
    let response = tokio::select! {
        biased;
        _ = io.cancel.cancelled() => return Ok(()),
        _ = activity.silent_for(s.idle) => {
            return Err(format!("the provider did not answer within {idle_ms} ms"));
        }
        r = request.send() => r.map_err(|e| {
            format!("cannot reach the provider at {}: {}", shown_url(&s.endpoint), describe(&e))
        })?,
    };
    activity.touch();

    let status = response.status();
    if !status.is_success() {
        let body = match read_body(response, MAX_ERROR_BODY_BYTES, true, s, io, &activity).await {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(()),
            Err(_) => Vec::new(),
        };
        return Err(http_error(status.as_u16(), &body));
    }

    let mut reply = Reply::default();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if is_json {
        // A server that does not stream answers with the whole completion.
        let Some(bytes) =
            read_body(response, MAX_JSON_REPLY_BYTES, false, s, io, &activity).await?
        else {
            return Ok(());
        };
        let v: Value = serde_json::from_slice(&bytes).map_err(|_| {
            format!(
                "the provider's reply is not json: {}",
                excerpt(&String::from_utf8_lossy(&bytes), 200)
            )
        })?;
        reply.on_completion(&v, &io.emit)?;
        reply.finish(&io.emit);
        return Ok(());
    }

    let events = sse::guard(response.bytes_stream(), activity.clone()).eventsource();
    let mut events = std::pin::pin!(events);
    loop {
        let next = tokio::select! {
            biased;
            // Returning drops the stream and with it the connection.
            _ = io.cancel.cancelled() => return Ok(()),
            _ = activity.silent_for(s.idle) => {
                return Err(format!("the provider sent nothing for {idle_ms} ms"));
            }
            next = events.next() => next,
        };
        match next {
            None if reply.finished() => break,
            None => {
                return Err("the provider's stream ended before the reply was complete".to_owned())
            }
            Some(Err(e)) => return Err(stream_error(e)),
            Some(Ok(event)) => {
                if reply.on_data(&event.data, &io.emit)? == Flow::Done {
                    break;
                }
            }
        }
    }
    reply.finish(&io.emit);
    Ok(())
}

fn stream_error(e: EventStreamError<sse::Fault>) -> String {
    match e {
        EventStreamError::Transport(f) => format!("the provider's stream broke: {f}"),
        EventStreamError::Utf8(_) => "the provider's stream is not valid utf-8".to_owned(),
        EventStreamError::Parser(_) => {
            "the provider's stream is not a valid event stream".to_owned()
        }
    }
}

/// `provider returned HTTP <status>: <message or excerpt of the body>`.
fn http_error(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let detail = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("error").and_then(sse::error_text))
        .unwrap_or_else(|| match html_text(&text) {
            Some(t) => excerpt(&t, 120),
            None => excerpt(&text, 300),
        });
    if detail.is_empty() {
        format!("provider returned HTTP {status}")
    } else {
        format!("provider returned HTTP {status}: {detail}")
    }
}

/// The URL as shown in an error: no credentials, no query.
fn shown_url(u: &Url) -> String {
    let mut u = u.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.to_string()
}

/// The readable text of an HTML error page (its title, else its text without
/// tags); `None` when the body is not HTML.
fn html_text(body: &str) -> Option<String> {
    let lower = body.trim_start().to_ascii_lowercase();
    if !(lower.starts_with("<!doctype html") || lower.starts_with("<html")) {
        return None;
    }
    if let (Some(a), Some(b)) = (lower.find("<title>"), lower.find("</title>")) {
        if a + 7 <= b {
            let title = body[a + 7..b].trim();
            if !title.is_empty() {
                return Some(title.to_owned());
            }
        }
    }
    let mut out = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    Some(out)
}

/// Reads a body of at most `limit` bytes (cut there when `truncate`, else an
/// error); `None` when the turn was cancelled.
async fn read_body(
    response: reqwest::Response,
    limit: usize,
    truncate: bool,
    s: &Settings,
    io: &TurnIo,
    activity: &Activity,
) -> Result<Option<Vec<u8>>, String> {
    let mut stream = std::pin::pin!(response.bytes_stream());
    let mut out = Vec::new();
    loop {
        let next = tokio::select! {
            biased;
            _ = io.cancel.cancelled() => return Ok(None),
            _ = activity.silent_for(s.idle) => return Err("the provider stopped sending its reply".to_owned()),
            next = stream.next() => next,
        };
        match next {
            None => return Ok(Some(out)),
            Some(Err(e)) => return Err(format!("the provider's reply broke: {}", describe(&e))),
            Some(Ok(bytes)) => {
                activity.touch();
                if out.len() + bytes.len() > limit {
                    if truncate {
                        out.extend_from_slice(&bytes[..limit - out.len()]);
                        return Ok(Some(out));
                    }
                    return Err(format!("the provider's reply is larger than {limit} bytes"));
                }
                out.extend_from_slice(&bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_joined() {
        let e = |b: &str| endpoint(b).map(|u| u.to_string());
        assert_eq!(
            e("http://127.0.0.1:11434/v1").as_deref(),
            Ok("http://127.0.0.1:11434/v1/chat/completions")
        );
        assert_eq!(
            e("https://api.example.com/v1/").as_deref(),
            Ok("https://api.example.com/v1/chat/completions")
        );
        assert_eq!(
            e("http://h/x?api-version=2").as_deref(),
            Ok("http://h/x/chat/completions?api-version=2")
        );
        assert!(e("not a url").is_err());
        assert!(e("ftp://h/v1").is_err());
    }

    #[test]
    fn html_error_pages_are_cut_to_their_title() {
        let page = format!(
            "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>{}</body></html>",
            "<p>nginx</p>".repeat(200)
        );
        assert_eq!(
            http_error(502, page.as_bytes()),
            "provider returned HTTP 502: 502 Bad Gateway"
        );
        let untitled = format!(
            "<html><body><h1>Oops</h1>{}</body></html>",
            "x ".repeat(500)
        );
        let e = http_error(500, untitled.as_bytes());
        assert!(
            e.starts_with("provider returned HTTP 500: Oops x x") && e.len() < 160,
            "{e}"
        );
        assert!(!e.contains('<'), "{e}");
        let u = Url::parse("https://user:secret@api.example/v1/chat/completions?k=1").unwrap();
        assert_eq!(shown_url(&u), "https://api.example/v1/chat/completions");
    }

    #[test]
    fn errors_are_short_and_scrubbed() {
        assert_eq!(
            http_error(401, br#"{"error":{"message":"bad key sk-123456"}}"#),
            "provider returned HTTP 401: bad key sk-123456"
        );
        assert_eq!(http_error(500, b""), "provider returned HTTP 500");
        assert_eq!(
            scrub("bad key sk-123456".into(), Some("sk-123456")),
            "bad key [redacted]"
        );
    }
}
