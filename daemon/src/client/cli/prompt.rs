//! `prompt`: send a prompt (from the arguments or stdin) and follow its turn. The
//! answer goes to stdout; thoughts, tool calls and results, the spinner and the
//! final stop reason go to stderr. A request of the agent is asked on the terminal;
//! Ctrl-C cancels the turn this command started.

use super::exit::{fail, Code};
use super::output::{self, color_stderr, cut, dim};
use super::resolve::resolve;
use sessiond_client::Client;
use sessiond_protocol::params::{PromptParams, PromptResult};
use sessiond_protocol::{Event, RequestId, SessionId, TurnId, TurnVerdict};
use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// `prompt SESSION [TEXT...]`.
pub async fn run(
    c: &Client,
    arg: &str,
    words: &[String],
    interrupt: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let text = prompt_text(words)?;
    let id = resolve(c, arg).await?;
    // Subscribe first, then prompt, so no event of the turn is missed.
    let mut events = c.subscribe(&id, None).await?;
    let accepted = match c
        .prompt(PromptParams {
            session_id: id.clone(),
            text,
            attachments: None,
            interrupt: interrupt.then_some(true),
            wait: None,
        })
        .await?
    {
        PromptResult::Accepted(a) => a,
        PromptResult::Finished(v) => return finish(&v, json),
    };
    let turn = accepted.turn_id.clone();
    let mut view = View::new(json);
    if accepted.queued_behind > 0 {
        view.status = format!("queued behind {} turn(s)", accepted.queued_behind);
    }
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut cancelling = false;
    loop {
        tokio::select! {
            ev = events.next_event() => {
                let Some(ev) = ev else {
                    view.clear_spinner();
                    return Err(fail(Code::Unreachable, "the daemon ended the event stream"));
                };
                let env = ev?;
                if json && concerns(&env.event, &turn) {
                    output::json_line(&env)?;
                }
                match env.event {
                    Event::TurnComplete { verdict } if verdict.turn_id == turn => {
                        view.clear_spinner();
                        return finish(&verdict, json);
                    }
                    Event::Request { turn_id, request_id, kind, prompt, options } if turn_id == turn => {
                        view.clear_spinner();
                        ask(c, &id, &request_id, &output::name(&kind), &prompt, &options).await?;
                    }
                    Event::SessionClosed { reason } => {
                        view.clear_spinner();
                        return Err(fail(
                            Code::TurnCancelled,
                            format!("session closed ({})", output::name(&reason)),
                        ));
                    }
                    ev if !json => view.show(&ev, &turn),
                    _ => {}
                }
            }
            _ = &mut ctrl_c, if !cancelling => {
                cancelling = true;
                view.clear_spinner();
                eprintln!("\ncancelling {turn}…");
                c.cancel(&id).await?;
                view.status = "cancelling".into();
            }
            _ = tick.tick() => view.spin(),
        }
    }
}

/// The prompt: the words given, or stdin when they are `-` or absent and stdin is
/// not a terminal.
fn prompt_text(words: &[String]) -> anyhow::Result<String> {
    let from_stdin = words.is_empty() || (words.len() == 1 && words[0] == "-");
    if !from_stdin {
        return Ok(words.join(" "));
    }
    if std::io::stdin().is_terminal() {
        return Err(fail(
            Code::Usage,
            "no prompt: give the text, or pipe it on stdin",
        ));
    }
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s)?;
    let s = s.trim_end_matches(['\n', '\r']).to_owned();
    if s.trim().is_empty() {
        return Err(fail(Code::Usage, "the prompt read from stdin is empty"));
    }
    Ok(s)
}

/// Whether an event belongs to the turn (the JSON output shows only those).
fn concerns(e: &Event, turn: &TurnId) -> bool {
    match e {
        Event::UserMessage { turn_id, .. }
        | Event::TurnStarted { turn_id, .. }
        | Event::AgentMessageChunk { turn_id, .. }
        | Event::AgentThoughtChunk { turn_id, .. }
        | Event::ToolCall { turn_id, .. }
        | Event::ToolResult { turn_id, .. }
        | Event::Request { turn_id, .. } => turn_id == turn,
        Event::TurnComplete { verdict } => &verdict.turn_id == turn,
        Event::RequestResolved { .. } | Event::SessionClosed { .. } => true,
        _ => false,
    }
}

/// The end of the turn: stop reason, cause and usage on stderr; the exit code.
fn finish(v: &TurnVerdict, json: bool) -> anyhow::Result<ExitCode> {
    let color = color_stderr();
    let reason = v.stop_reason.as_str();
    if !json {
        output::line("");
        let usage = format!(
            "{} tokens in, {} out",
            v.usage.input_tokens, v.usage.output_tokens
        );
        let cause = v
            .cancel_cause
            .map(|c| format!(" ({})", c.as_str()))
            .unwrap_or_default();
        eprintln!("{}", dim(&format!("[{reason}{cause}; {usage}]"), color));
    }
    match reason {
        "end_turn" => Ok(ExitCode::SUCCESS),
        "cancelled" => {
            let cause = v.cancel_cause.map(|c| c.as_str()).unwrap_or("unknown");
            Err(fail(
                Code::TurnCancelled,
                format!("turn cancelled ({cause})"),
            ))
        }
        "failed" => Err(fail(
            Code::TurnFailed,
            format!(
                "turn failed: {}",
                v.error.as_deref().unwrap_or("no reason given")
            ),
        )),
        other => Err(fail(Code::TurnFailed, format!("turn stopped: {other}"))),
    }
}

/// Asks a request of the agent on the terminal; without one, says how to answer.
async fn ask(
    c: &Client,
    id: &SessionId,
    request_id: &RequestId,
    kind: &str,
    prompt: &str,
    options: &serde_json::Value,
) -> anyhow::Result<()> {
    let opts = Opt::list(options);
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !interactive {
        return Err(fail(
            Code::Failure,
            format!(
                "the agent asks ({kind} {request_id}): {prompt}; answer with `sessiond respond {id} {request_id} ANSWER`"
            ),
        ));
    }
    let color = color_stderr();
    eprintln!("\n{}", output::bold(&format!("? {prompt}"), color));
    for (i, o) in opts.iter().enumerate() {
        eprintln!("  {}) {}", i + 1, o.label);
    }
    let answer = loop {
        if opts.is_empty() {
            eprint!("answer: ");
        } else {
            eprint!("choose 1-{}: ", opts.len());
        }
        let _ = std::io::stderr().flush();
        let line = tokio::task::spawn_blocking(|| {
            let mut s = String::new();
            std::io::stdin().read_line(&mut s).map(|n| (n, s))
        })
        .await??;
        if line.0 == 0 {
            return Err(fail(
                Code::Failure,
                format!("no answer given; answer with `sessiond respond {id} {request_id} ANSWER`"),
            ));
        }
        let text = line.1.trim().to_owned();
        if opts.is_empty() {
            if !text.is_empty() {
                break serde_json::json!({"outcome": "answered", "text": text});
            }
            continue;
        }
        let chosen = text
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| opts.get(i))
            .or_else(|| opts.iter().find(|o| o.id == text));
        if let Some(o) = chosen {
            break o.answer();
        }
    };
    c.respond(id, Some(request_id.clone()), answer).await?;
    Ok(())
}

/// One option of a request: `{option_id, label, kind?}` or a plain string.
struct Opt {
    id: String,
    label: String,
    structured: bool,
}

impl Opt {
    fn list(v: &serde_json::Value) -> Vec<Opt> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| match o {
                serde_json::Value::String(s) => Some(Opt {
                    id: s.clone(),
                    label: s.clone(),
                    structured: false,
                }),
                serde_json::Value::Object(m) => {
                    let id = m.get("option_id")?.as_str()?.to_owned();
                    let label = m
                        .get("label")
                        .and_then(|l| l.as_str())
                        .unwrap_or(&id)
                        .to_owned();
                    Some(Opt {
                        id,
                        label,
                        structured: true,
                    })
                }
                _ => None,
            })
            .collect()
    }

    /// The answer that selects this option, in the shape the request used.
    fn answer(&self) -> serde_json::Value {
        if self.structured {
            serde_json::json!({"outcome": "selected", "option_id": self.id})
        } else {
            serde_json::Value::String(self.id.clone())
        }
    }
}

/// What the command shows while a turn runs.
struct View {
    json: bool,
    color: bool,
    spinner: bool,
    /// What the spinner says; empty once output started.
    status: String,
    frame: usize,
    drawn: bool,
}

impl View {
    fn new(json: bool) -> View {
        View {
            json,
            color: color_stderr(),
            spinner: !json && color_stderr(),
            status: "waiting".into(),
            frame: 0,
            drawn: false,
        }
    }

    fn spin(&mut self) {
        if !self.spinner || self.status.is_empty() {
            return;
        }
        self.frame = (self.frame + 1) % SPINNER.len();
        eprint!("\r\x1b[2K{} {}", SPINNER[self.frame], self.status);
        let _ = std::io::stderr().flush();
        self.drawn = true;
    }

    fn clear_spinner(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
            self.drawn = false;
        }
    }

    fn show(&mut self, e: &Event, turn: &TurnId) {
        if self.json || !concerns(e, turn) {
            return;
        }
        match e {
            Event::TurnStarted { .. } => self.status = "thinking".into(),
            Event::AgentMessageChunk { text, .. } => {
                self.clear_spinner();
                self.status.clear();
                output::text(text);
            }
            Event::AgentThoughtChunk { text, .. } => {
                self.clear_spinner();
                eprint!("{}", dim(text, self.color));
            }
            Event::ToolCall { name, input, .. } => {
                self.clear_spinner();
                let line = format!("[tool] {name} {}", cut(&input.to_string(), 200));
                eprintln!("\n{}", dim(&line, self.color));
                self.status = format!("running {name}");
            }
            Event::ToolResult {
                output: o,
                is_error,
                ..
            } => {
                self.clear_spinner();
                let tag = if *is_error { "error" } else { "result" };
                let line = format!("[{tag}] {}", cut(&o.to_string(), 200));
                eprintln!("{}", dim(&line, self.color));
                self.status = "thinking".into();
            }
            _ => {}
        }
    }
}
