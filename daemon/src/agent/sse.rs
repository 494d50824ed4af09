//! Reading an OpenAI-compatible chat completion: the byte stream under the SSE
//! parser (`eventsource-stream`) is guarded against over-long lines and timed for
//! silence, and the `chat.completion.chunk` deltas become chunks, thoughts, tool
//! calls and usage.

use crate::agent::emit::Emitter;
use futures::{Stream, StreamExt};
use serde_json::{json, Value};
use sessiond_protocol::Usage;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// A stream line longer than this fails the turn.
pub const MAX_SSE_LINE_BYTES: usize = 16 * 1024 * 1024;

/// When bytes last arrived from the provider.
#[derive(Clone)]
pub struct Activity(Arc<Mutex<Instant>>);

impl Default for Activity {
    fn default() -> Self {
        Activity(Arc::new(Mutex::new(Instant::now())))
    }
}

impl Activity {
    pub fn touch(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn last(&self) -> Instant {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves once nothing has arrived for `limit` (never when `limit` is `None`).
    pub async fn silent_for(&self, limit: Option<Duration>) {
        let Some(limit) = limit else {
            return std::future::pending().await;
        };
        loop {
            let deadline = self.last() + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// What can go wrong under the SSE parser.
#[derive(Debug)]
pub enum Fault {
    Http(reqwest::Error),
    LineTooLong,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Http(e) => f.write_str(&describe(e)),
            Fault::LineTooLong => write!(f, "a line is longer than {MAX_SSE_LINE_BYTES} bytes"),
        }
    }
}

/// A reqwest error as one line: its message and its causes, without the URL.
pub fn describe(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        let mut text = err.to_string();
        if let Some(i) = text.find(" for url (") {
            text.truncate(i);
        }
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// Records activity on every piece of `bytes` and fails a line over the bound.
pub fn guard<S, B>(bytes: S, activity: Activity) -> impl Stream<Item = Result<B, Fault>>
where
    S: Stream<Item = Result<B, reqwest::Error>>,
    B: AsRef<[u8]>,
{
    let mut run = 0usize;
    bytes.map(move |item| match item {
        Err(e) => Err(Fault::Http(e)),
        Ok(chunk) => {
            activity.touch();
            let data = chunk.as_ref();
            match data.iter().rposition(|b| *b == b'\n' || *b == b'\r') {
                Some(i) => run = data.len() - i - 1,
                None => run = run.saturating_add(data.len()),
            }
            if run > MAX_SSE_LINE_BYTES {
                Err(Fault::LineTooLong)
            } else {
                Ok(chunk)
            }
        }
    })
}

/// Whether the stream goes on.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    More,
    Done,
}

#[derive(Default)]
struct ToolAcc {
    id: String,
    name: String,
    arguments: String,
}

/// The state of one reply: tool calls being assembled, the latest usage, and
/// whether a `finish_reason` was seen.
#[derive(Default)]
pub struct Reply {
    finished: bool,
    usage: Option<Usage>,
    tools: BTreeMap<u64, ToolAcc>,
}

impl Reply {
    /// A `finish_reason` was seen.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Handles the `data` of one SSE event.
    pub fn on_data(&mut self, data: &str, emit: &Emitter) -> Result<Flow, String> {
        let data = data.trim();
        if data.is_empty() {
            return Ok(Flow::More);
        }
        if data == "[DONE]" {
            return Ok(Flow::Done);
        }
        let v: Value = serde_json::from_str(data).map_err(|_| {
            format!(
                "the provider sent an invalid stream event: {}",
                excerpt(data, 200)
            )
        })?;
        check_error(&v)?;
        self.take_usage(&v);
        for choice in first_choice(&v) {
            if let Some(delta) = choice.get("delta") {
                self.on_message(delta, emit);
            }
            if choice.get("finish_reason").is_some_and(|f| !f.is_null()) {
                self.finished = true;
                self.flush_tools(emit);
            }
        }
        Ok(Flow::More)
    }

    /// Handles a whole (not streamed) `chat.completion`.
    pub fn on_completion(&mut self, v: &Value, emit: &Emitter) -> Result<(), String> {
        check_error(v)?;
        self.take_usage(v);
        let mut any = false;
        for choice in first_choice(v) {
            any = true;
            if let Some(message) = choice.get("message") {
                self.on_message(message, emit);
            }
        }
        if !any {
            return Err("the provider's reply has no choices".to_owned());
        }
        self.finished = true;
        Ok(())
    }

    /// A delta (streamed) or a message (whole reply).
    fn on_message(&mut self, m: &Value, emit: &Emitter) {
        if let Some(t) = text_field(m, "reasoning_content").or_else(|| text_field(m, "reasoning")) {
            emit.thought(t);
        }
        if let Some(t) = text_field(m, "content") {
            emit.chunk(t);
        }
        if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
            for (pos, call) in calls.iter().enumerate() {
                let index = call
                    .get("index")
                    .and_then(Value::as_u64)
                    .unwrap_or(pos as u64);
                let acc = self.tools.entry(index).or_default();
                if let Some(id) = text_field(call, "id") {
                    if acc.id.is_empty() {
                        acc.id = id;
                    }
                }
                if let Some(f) = call.get("function") {
                    if let Some(name) = text_field(f, "name") {
                        acc.name.push_str(&name);
                    }
                    if let Some(args) = text_field(f, "arguments") {
                        acc.arguments.push_str(&args);
                    }
                }
            }
        }
    }

    /// Publishes what is left: assembled tool calls and the usage.
    pub fn finish(&mut self, emit: &Emitter) {
        self.flush_tools(emit);
        if let Some(u) = self.usage.take() {
            emit.usage(u);
        }
    }

    fn flush_tools(&mut self, emit: &Emitter) {
        for (index, t) in std::mem::take(&mut self.tools) {
            if t.name.is_empty() && t.arguments.is_empty() {
                continue;
            }
            let id = if t.id.is_empty() {
                format!("call_{index}")
            } else {
                t.id
            };
            let input = if t.arguments.trim().is_empty() {
                json!({})
            } else {
                serde_json::from_str(&t.arguments).unwrap_or(Value::String(t.arguments))
            };
            emit.tool_call(id, t.name, input);
        }
    }

    /// The latest usage wins (some servers repeat a running total in every chunk).
    fn take_usage(&mut self, v: &Value) {
        let Some(u) = v.get("usage").filter(|u| u.is_object()) else {
            return;
        };
        let count = |a: &str, b: &str| {
            u.get(a)
                .or_else(|| u.get(b))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        self.usage = Some(Usage {
            input_tokens: count("prompt_tokens", "input_tokens"),
            output_tokens: count("completion_tokens", "output_tokens"),
        });
    }
}

/// The choice with index 0 (a turn asks for one).
fn first_choice(v: &Value) -> impl Iterator<Item = &Value> {
    v.get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
}

fn text_field(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn check_error(v: &Value) -> Result<(), String> {
    match v.get("error").filter(|e| !e.is_null()) {
        None => Ok(()),
        Some(e) => Err(format!(
            "the provider reported an error: {}",
            error_text(e).unwrap_or_else(|| "no details".to_owned())
        )),
    }
}

/// The message of an `error` member: a string, or an object with `message`.
pub fn error_text(e: &Value) -> Option<String> {
    let text = e
        .as_str()
        .or_else(|| e.get("message").and_then(Value::as_str))?;
    let text = excerpt(text, 300);
    (!text.is_empty()).then_some(text)
}

/// At most `max` characters of `s` with runs of whitespace collapsed, marked when cut.
pub fn excerpt(s: &str, max: usize) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventHub;
    use sessiond_protocol::{Event, SessionId, TurnId};

    #[test]
    fn deltas_become_events() {
        let hub = Arc::new(EventHub::new(SessionId::from("s"), 0, vec![], 64, 64, None));
        let mut sub = hub.subscribe(None).expect("subscribe");
        let emit = Emitter::detached(TurnId::from("t"), hub);
        let mut r = Reply::default();
        let lines = [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","reasoning_content":"hmm"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"get","arguments":"{\"a\":"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#,
        ];
        for l in lines {
            assert_eq!(r.on_data(l, &emit), Ok(Flow::More));
        }
        assert_eq!(r.on_data("[DONE]", &emit), Ok(Flow::Done));
        r.finish(&emit);
        assert!(r.finished());
        let mut types = Vec::new();
        while let Ok(env) = sub.rx.try_recv() {
            match &env.event {
                Event::ToolCall {
                    tool_call_id,
                    name,
                    input,
                    ..
                } => {
                    assert_eq!((tool_call_id.as_str(), name.as_str()), ("c1", "get"));
                    assert_eq!(input, &json!({"a": 1}));
                }
                Event::AgentThoughtChunk { text, .. } => assert_eq!(text, "hmm"),
                Event::AgentMessageChunk { text, .. } => assert_eq!(text, "Hi"),
                other => panic!("unexpected {other:?}"),
            }
            types.push(env.event.type_name());
        }
        assert_eq!(
            types,
            vec!["agent_thought_chunk", "agent_message_chunk", "tool_call"]
        );
        let acc = emit.snapshot();
        assert_eq!((acc.usage.input_tokens, acc.usage.output_tokens), (3, 4));
    }

    #[test]
    fn errors_and_garbage_fail() {
        let hub = Arc::new(EventHub::new(SessionId::from("s"), 0, vec![], 8, 8, None));
        let emit = Emitter::detached(TurnId::from("t"), hub);
        let mut r = Reply::default();
        let e = r
            .on_data(r#"{"error":{"message":"overloaded"}}"#, &emit)
            .expect_err("error");
        assert_eq!(e, "the provider reported an error: overloaded");
        assert!(r.on_data("not json", &emit).is_err());
        assert_eq!(excerpt("a  b\n c", 3), "a b...");
    }
}
