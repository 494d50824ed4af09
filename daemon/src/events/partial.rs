//! The running turn as its events built it so far: the reply text and the tool calls
//! with their results. Kept by the hub under its lock, so that `session/messages` can
//! read it together with the seq of the last event it reflects.

use sessiond_protocol::{Event, TurnId};

/// One tool call of the running turn, with its result once it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolEntry {
    pub tool_call_id: String,
    pub name: String,
    pub input: serde_json::Value,
    pub output: Option<serde_json::Value>,
    pub is_error: bool,
}

impl ToolEntry {
    /// The content of its transcript message: `{tool_call_id, name, input, output|null, is_error}`.
    pub fn message_content(&self) -> String {
        serde_json::json!({
            "tool_call_id": self.tool_call_id,
            "name": self.name,
            "input": self.input,
            "output": self.output,
            "is_error": self.is_error,
        })
        .to_string()
    }
}

/// What the running turn has produced so far.
#[derive(Debug, Clone, PartialEq)]
pub struct PartialTurn {
    pub turn_id: TurnId,
    pub content: String,
    /// In the order the calls were made.
    pub tools: Vec<ToolEntry>,
}

impl PartialTurn {
    /// Folds one published event into the running turn's state.
    pub fn apply(state: &mut Option<PartialTurn>, event: &Event) {
        match event {
            Event::TurnStarted { turn_id, .. } => {
                *state = Some(PartialTurn {
                    turn_id: turn_id.clone(),
                    content: String::new(),
                    tools: Vec::new(),
                });
            }
            Event::AgentMessageChunk { turn_id, text } => {
                if let Some(p) = state.as_mut().filter(|p| &p.turn_id == turn_id) {
                    p.content.push_str(text);
                }
            }
            Event::ToolCall {
                turn_id,
                tool_call_id,
                name,
                input,
            } => {
                if let Some(p) = state.as_mut().filter(|p| &p.turn_id == turn_id) {
                    p.tools.push(ToolEntry {
                        tool_call_id: tool_call_id.clone(),
                        name: name.clone(),
                        input: input.clone(),
                        output: None,
                        is_error: false,
                    });
                }
            }
            Event::ToolResult {
                turn_id,
                tool_call_id,
                output,
                is_error,
            } => {
                if let Some(p) = state.as_mut().filter(|p| &p.turn_id == turn_id) {
                    match p.tools.iter_mut().find(|t| &t.tool_call_id == tool_call_id) {
                        Some(t) => {
                            t.output = Some(output.clone());
                            t.is_error = *is_error;
                        }
                        // A result without its call still belongs in the transcript.
                        None => p.tools.push(ToolEntry {
                            tool_call_id: tool_call_id.clone(),
                            name: String::new(),
                            input: serde_json::Value::Null,
                            output: Some(output.clone()),
                            is_error: *is_error,
                        }),
                    }
                }
            }
            Event::TurnComplete { .. } | Event::SessionClosed { .. } => *state = None,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> TurnId {
        TurnId("t1".into())
    }

    #[test]
    fn chunks_and_tools_of_the_running_turn_accumulate_until_it_completes() {
        let mut s = None;
        for e in [
            Event::TurnStarted {
                turn_id: t(),
                generation: 1,
            },
            Event::AgentMessageChunk {
                turn_id: t(),
                text: "hel".into(),
            },
            Event::ToolCall {
                turn_id: t(),
                tool_call_id: "c1".into(),
                name: "ls".into(),
                input: serde_json::json!({"dir": "."}),
            },
            Event::AgentMessageChunk {
                turn_id: TurnId("other".into()),
                text: "ignored".into(),
            },
            Event::ToolResult {
                turn_id: t(),
                tool_call_id: "c1".into(),
                output: serde_json::json!("a b"),
                is_error: false,
            },
            Event::AgentMessageChunk {
                turn_id: t(),
                text: "lo".into(),
            },
        ] {
            PartialTurn::apply(&mut s, &e);
        }
        let p = s.clone().unwrap();
        assert_eq!(p.content, "hello");
        assert_eq!(p.tools.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&p.tools[0].message_content()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"tool_call_id": "c1", "name": "ls", "input": {"dir": "."},
                "output": "a b", "is_error": false})
        );
        PartialTurn::apply(
            &mut s,
            &Event::TurnComplete {
                verdict: sessiond_protocol::TurnVerdict {
                    turn_id: t(),
                    stop_reason: sessiond_protocol::StopReason::EndTurn,
                    cancel_cause: None,
                    error: None,
                    usage: Default::default(),
                    content: "hello".into(),
                },
            },
        );
        assert!(s.is_none());
    }
}
