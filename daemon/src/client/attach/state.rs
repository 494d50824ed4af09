//! The attach screen's state as plain data, and the reducer that folds the snapshot
//! and session events into it. The reducer is idempotent: an event at or below the
//! last applied `seq` changes nothing, and everything is keyed by turn, tool call and
//! request id, so applying an event twice or after a reload gives the same screen.

use sessiond_protocol::params::MessagesResult;
use sessiond_protocol::{
    CancelCause, CloseReason, Event, EventEnvelope, RequestId, RequestKind, Role, SessionInfo,
    StopReason, TuiId, TurnId, Usage,
};
use std::time::Instant;

/// One entry of the transcript.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    User {
        turn_id: Option<TurnId>,
        text: String,
    },
    Assistant {
        turn_id: Option<TurnId>,
        text: String,
    },
    Thought {
        turn_id: TurnId,
        text: String,
    },
    Tool(ToolItem),
    /// The line after a turn: how it ended.
    TurnEnd {
        turn_id: TurnId,
        stop_reason: StopReason,
        cancel_cause: Option<CancelCause>,
        error: Option<String>,
        usage: Usage,
    },
    /// Something the TUI says (errors, ownership changes, help).
    Notice {
        text: String,
        error: bool,
    },
}

/// A tool call with its result (one summary line, expandable).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolItem {
    pub turn_id: Option<TurnId>,
    pub tool_call_id: String,
    pub name: String,
    pub input: serde_json::Value,
    pub output: Option<serde_json::Value>,
    pub is_error: bool,
}

/// A question of the agent waiting for an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub turn_id: TurnId,
    pub request_id: RequestId,
    pub kind: RequestKind,
    pub prompt: String,
    pub options: Vec<RequestOption>,
}

/// One choice of a permission request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestOption {
    pub option_id: String,
    pub label: String,
}

/// Reads a request's `options`: `{option_id, label}` objects or plain strings.
pub fn parse_options(v: &serde_json::Value) -> Vec<RequestOption> {
    let Some(list) = v.as_array() else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|o| match o {
            serde_json::Value::String(s) => Some(RequestOption {
                option_id: s.clone(),
                label: s.clone(),
            }),
            serde_json::Value::Object(m) => {
                let id = m.get("option_id")?.as_str()?.to_owned();
                let label = m
                    .get("label")
                    .and_then(|l| l.as_str())
                    .unwrap_or(&id)
                    .to_owned();
                Some(RequestOption {
                    option_id: id,
                    label,
                })
            }
            _ => None,
        })
        .collect()
}

/// The connection to the daemon as the status line shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Connected,
    Reconnecting,
}

/// Everything the attach screen shows.
#[derive(Debug, Clone)]
pub struct Attached {
    pub info: SessionInfo,
    /// This TUI's identity.
    pub me: TuiId,
    /// Attached with `--watch`: never sends input.
    pub watch: bool,
    pub items: Vec<Item>,
    /// The highest event seq applied (the snapshot's seq at first).
    pub last_seq: u64,
    /// The replay of the current subscription is over.
    pub live: bool,
    /// The running turn and when this TUI saw it start.
    pub running: Option<(TurnId, Instant)>,
    pub requests: Vec<Request>,
    pub link: Link,
    /// Set by `session_closed`: the session went away under the TUI.
    pub closed: Option<CloseReason>,
    /// A `resync` arrived: reload the transcript.
    pub needs_reload: bool,
}

fn short(s: &str) -> &str {
    let s = s.strip_prefix("tui_").unwrap_or(s);
    &s[..s.len().min(8)]
}

impl Attached {
    pub fn new(info: SessionInfo, me: TuiId, watch: bool) -> Attached {
        Attached {
            info,
            me,
            watch,
            items: Vec::new(),
            last_seq: 0,
            live: false,
            running: None,
            requests: Vec::new(),
            link: Link::Connected,
            closed: None,
            needs_reload: false,
        }
    }

    /// Whose the session is, in words.
    pub fn owner_words(&self) -> String {
        match &self.info.owner_tui_id {
            None => "nobody".into(),
            Some(o) if *o == self.me => "you".into(),
            Some(o) => format!("another profile ({})", short(o.as_str())),
        }
    }

    /// Input is refused: watching, or the session belongs to another TUI.
    pub fn read_only(&self) -> bool {
        self.watch
            || self
                .info
                .owner_tui_id
                .as_ref()
                .is_some_and(|o| *o != self.me)
    }

    pub fn notice(&mut self, text: impl Into<String>) {
        self.items.push(Item::Notice {
            text: text.into(),
            error: false,
        });
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.items.push(Item::Notice {
            text: text.into(),
            error: true,
        });
    }

    /// Replaces the transcript with a `session/messages` snapshot (all its pages).
    pub fn load_snapshot(&mut self, snap: &MessagesResult) {
        self.items.clear();
        self.running = None;
        for m in &snap.messages {
            let turn_id = m.turn_id.clone();
            match m.role {
                Role::User => self.items.push(Item::User {
                    turn_id,
                    text: m.content.clone(),
                }),
                Role::Assistant => {
                    if m.partial {
                        if let Some(t) = &turn_id {
                            self.running = Some((t.clone(), Instant::now()));
                        }
                    }
                    self.items.push(Item::Assistant {
                        turn_id,
                        text: m.content.clone(),
                    })
                }
                Role::Tool => self
                    .items
                    .push(Item::Tool(tool_from_message(turn_id, &m.content))),
            }
        }
        self.last_seq = snap.seq;
        self.needs_reload = false;
    }

    fn assistant_mut(&mut self, turn_id: &TurnId) -> &mut String {
        let found = self
            .items
            .iter()
            .position(|i| matches!(i, Item::Assistant { turn_id: Some(t), .. } if t == turn_id));
        let idx = match found {
            Some(i) => i,
            None => {
                self.items.push(Item::Assistant {
                    turn_id: Some(turn_id.clone()),
                    text: String::new(),
                });
                self.items.len() - 1
            }
        };
        match &mut self.items[idx] {
            Item::Assistant { text, .. } => text,
            _ => unreachable!("position found an assistant item"),
        }
    }

    fn has_turn_end(&self, turn_id: &TurnId) -> bool {
        self.items
            .iter()
            .any(|i| matches!(i, Item::TurnEnd { turn_id: t, .. } if t == turn_id))
    }

    /// Applies one event of the subscription.
    pub fn apply(&mut self, env: &EventEnvelope) {
        match &env.event {
            Event::ReplayComplete { .. } => {
                self.live = true;
                return;
            }
            // A pending request delivered again keeps its original seq.
            Event::Request {
                turn_id,
                request_id,
                kind,
                prompt,
                options,
            } => {
                if !self.requests.iter().any(|r| &r.request_id == request_id)
                    && !self.has_turn_end(turn_id)
                {
                    self.requests.push(Request {
                        turn_id: turn_id.clone(),
                        request_id: request_id.clone(),
                        kind: *kind,
                        prompt: prompt.clone(),
                        options: parse_options(options),
                    });
                }
                self.last_seq = self.last_seq.max(env.seq);
                return;
            }
            _ => {}
        }
        if env.seq <= self.last_seq {
            return;
        }
        self.last_seq = env.seq;
        match &env.event {
            Event::UserMessage { turn_id, text, .. } => {
                let seen = self
                    .items
                    .iter()
                    .any(|i| matches!(i, Item::User { turn_id: Some(t), .. } if t == turn_id));
                if !seen {
                    self.items.push(Item::User {
                        turn_id: Some(turn_id.clone()),
                        text: text.clone(),
                    });
                }
            }
            Event::TurnStarted { turn_id, .. } => {
                self.running = Some((turn_id.clone(), Instant::now()));
            }
            Event::AgentMessageChunk { turn_id, text } => {
                self.assistant_mut(turn_id).push_str(text);
            }
            Event::AgentThoughtChunk { turn_id, text } => {
                let found = self.items.iter_mut().find_map(|i| match i {
                    Item::Thought { turn_id: t, text } if t == turn_id => Some(text),
                    _ => None,
                });
                match found {
                    Some(t) => t.push_str(text),
                    None => self.items.push(Item::Thought {
                        turn_id: turn_id.clone(),
                        text: text.clone(),
                    }),
                }
            }
            Event::ToolCall {
                turn_id,
                tool_call_id,
                name,
                input,
            } => {
                if !self
                    .items
                    .iter()
                    .any(|i| matches!(i, Item::Tool(t) if &t.tool_call_id == tool_call_id))
                {
                    self.items.push(Item::Tool(ToolItem {
                        turn_id: Some(turn_id.clone()),
                        tool_call_id: tool_call_id.clone(),
                        name: name.clone(),
                        input: input.clone(),
                        output: None,
                        is_error: false,
                    }));
                }
            }
            Event::ToolResult {
                turn_id,
                tool_call_id,
                output,
                is_error,
            } => {
                let found = self.items.iter_mut().find_map(|i| match i {
                    Item::Tool(t) if &t.tool_call_id == tool_call_id => Some(t),
                    _ => None,
                });
                match found {
                    Some(t) => {
                        t.output = Some(output.clone());
                        t.is_error = *is_error;
                    }
                    None => self.items.push(Item::Tool(ToolItem {
                        turn_id: Some(turn_id.clone()),
                        tool_call_id: tool_call_id.clone(),
                        name: String::new(),
                        input: serde_json::Value::Null,
                        output: Some(output.clone()),
                        is_error: *is_error,
                    })),
                }
            }
            Event::Request { .. } | Event::ReplayComplete { .. } => {}
            Event::RequestResolved { request_id, .. } => {
                self.requests.retain(|r| &r.request_id != request_id);
            }
            Event::TurnComplete { verdict } => {
                let t = &verdict.turn_id;
                if !verdict.content.is_empty() {
                    let text = self.assistant_mut(t);
                    if *text != verdict.content {
                        *text = verdict.content.clone();
                    }
                }
                if !self.has_turn_end(t) {
                    self.items.push(Item::TurnEnd {
                        turn_id: t.clone(),
                        stop_reason: verdict.stop_reason,
                        cancel_cause: verdict.cancel_cause,
                        error: verdict.error.clone(),
                        usage: verdict.usage,
                    });
                }
                self.requests.retain(|r| &r.turn_id != t);
                if self.running.as_ref().is_some_and(|(r, _)| r == t) {
                    self.running = None;
                }
            }
            Event::OverridesChanged { overrides } => self.info.overrides = overrides.clone(),
            Event::OwnerChanged { owner_tui_id, .. } => self.set_owner(owner_tui_id.clone()),
            Event::UploadAdded { .. } => {}
            Event::TitleChanged { title } => self.info.title = Some(title.clone()),
            Event::SessionClosed { reason } => {
                self.closed = Some(*reason);
                self.running = None;
                self.requests.clear();
            }
            Event::Resync { .. } => self.needs_reload = true,
            Event::Plan { entries, .. } => {
                let steps: Vec<&str> = entries
                    .as_array()
                    .map(|a| a.iter().filter_map(|e| e["content"].as_str()).collect())
                    .unwrap_or_default();
                self.items.push(Item::Notice {
                    text: format!("plan: {}", steps.join(" / ")),
                    error: false,
                });
            }
            Event::AgentUpdate { kind, .. } => self.items.push(Item::Notice {
                text: format!("agent: {kind}"),
                error: false,
            }),
        }
    }

    /// A newer record of the session (from `session/get` or the daemon feed).
    pub fn set_info(&mut self, info: SessionInfo) {
        let owner = info.owner_tui_id.clone();
        self.info = SessionInfo {
            owner_tui_id: self.info.owner_tui_id.clone(),
            ..info
        };
        self.set_owner(owner);
    }

    /// A change of owner (from the event or a newer record, whichever comes first)
    /// says so once.
    fn set_owner(&mut self, owner: Option<TuiId>) {
        let was_mine = self.info.owner_tui_id.as_ref() == Some(&self.me);
        let now_mine = owner.as_ref() == Some(&self.me);
        self.info.owner_tui_id = owner;
        if was_mine && !now_mine {
            self.notice(format!(
                "taken over by {}: this screen is read-only now",
                self.owner_words()
            ));
        } else if now_mine && !was_mine {
            self.notice("you own this session now");
        }
    }
}

fn tool_from_message(turn_id: Option<TurnId>, content: &str) -> ToolItem {
    let v: serde_json::Value = serde_json::from_str(content).unwrap_or_default();
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
    ToolItem {
        turn_id,
        tool_call_id: s("tool_call_id"),
        name: s("name"),
        input: v.get("input").cloned().unwrap_or_default(),
        output: v.get("output").filter(|o| !o.is_null()).cloned(),
        is_error: v.get("is_error").and_then(|b| b.as_bool()).unwrap_or(false),
    }
}
