//! Session verbs: `ls`, `new`, `log`, `close`, `delete`, `rename`, `upload`, `set`.

use super::exit::{fail, Code};
use super::output::{self, ago, color_stdout, cut, dim, Table};
use super::resolve::{all_sessions, resolve, short_len};
use sessiond_client::Client;
use sessiond_protocol::params::{NewSessionParams, OverridesPatch};
use sessiond_protocol::patch::Patch;
use sessiond_protocol::{Event, Message, Mode, Role, SessionId, SessionInfo};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `ls`: every session (or only live ones) as an aligned table, or JSON.
pub async fn ls(c: &Client, live: bool, json: bool) -> anyhow::Result<ExitCode> {
    let sessions = all_sessions(c, live.then_some(true)).await?;
    if json {
        output::json(&sessions)?;
        return Ok(ExitCode::SUCCESS);
    }
    if sessions.is_empty() {
        eprintln!("no sessions");
        return Ok(ExitCode::SUCCESS);
    }
    let me = c.identity().map(|i| i.tui_id);
    let len = short_len(&sessions);
    let mut t = Table::new(&[
        "ID", "TITLE", "AGENT", "MODE", "STATE", "LIVE", "OWNER", "ACTIVE",
    ]);
    for s in &sessions {
        let owner = match &s.owner_tui_id {
            None => "-".to_owned(),
            Some(o) if Some(o) == me.as_ref() => "me".to_owned(),
            Some(o) => cut(&o.0, 12),
        };
        t.row(vec![
            s.session_id.0.chars().take(len).collect(),
            cut(s.title.as_deref().unwrap_or(""), 40),
            s.agent.clone(),
            s.mode.as_str().to_owned(),
            state(s),
            if s.live { "yes" } else { "no" }.to_owned(),
            owner,
            ago(&s.last_active_at),
        ]);
    }
    t.print();
    Ok(ExitCode::SUCCESS)
}

/// The state column: what the session is doing, or its lifecycle status.
pub fn state(s: &SessionInfo) -> String {
    match &s.turn {
        Some(t) => output::name(&t.state),
        None => s.status.as_str().to_owned(),
    }
}

/// The options of `new`.
pub struct New {
    pub agent: Option<String>,
    pub mode: Option<String>,
    pub cwd: Option<PathBuf>,
    pub title: Option<String>,
    pub ttl: Option<u64>,
    pub keep_siblings: bool,
}

/// `new`: creates a session in the current directory (or `--cwd`).
pub async fn new(c: &Client, n: New, json: bool) -> anyhow::Result<ExitCode> {
    let cwd = match n.cwd {
        Some(d) => std::path::absolute(&d)?,
        None => std::env::current_dir()?,
    };
    let res = c
        .new_session(NewSessionParams {
            agent: n.agent,
            mode: n.mode.as_deref().and_then(Mode::parse),
            cwd: Some(cwd.to_string_lossy().into_owned()),
            title: n.title,
            ttl_secs: n.ttl,
            keep_siblings: n.keep_siblings.then_some(true),
            ..Default::default()
        })
        .await?;
    if json {
        output::json(&res)?;
    } else {
        output::line(&res.session.session_id.0);
        for e in &res.evicted {
            eprintln!("unloaded idle sibling {} ({})", e.session_id, e.agent);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `log`: the transcript; with `--follow`, then new events until the session closes.
pub async fn log(c: &Client, arg: &str, follow: bool, json: bool) -> anyhow::Result<ExitCode> {
    let id = resolve(c, arg).await?;
    // Subscribe before reading the transcript, so nothing between the two is missed;
    // turns already in the transcript are not printed twice.
    let mut events = if follow {
        Some(c.subscribe(&id, None).await?)
    } else {
        None
    };
    let messages = all_messages(c, &id).await?;
    let color = color_stdout();
    let mut done: HashSet<String> = HashSet::new();
    for m in &messages {
        if let Some(t) = &m.turn_id {
            if m.role == Role::Assistant {
                done.insert(t.0.clone());
            }
        }
        if json {
            output::json_line(m)?;
        } else {
            print_message(m, color);
        }
    }
    let Some(events) = events.as_mut() else {
        return Ok(ExitCode::SUCCESS);
    };
    while let Some(ev) = events.next_event().await {
        let env = ev?;
        let skip = match &env.event {
            Event::UserMessage { turn_id, .. }
            | Event::AgentMessageChunk { turn_id, .. }
            | Event::AgentThoughtChunk { turn_id, .. }
            | Event::ToolCall { turn_id, .. }
            | Event::ToolResult { turn_id, .. } => done.contains(&turn_id.0),
            Event::TurnComplete { verdict } => done.contains(&verdict.turn_id.0),
            _ => false,
        };
        if !skip {
            if json {
                output::json_line(&env)?;
            } else {
                print_event(&env.event, color);
            }
        }
        if let Event::SessionClosed { .. } = env.event {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn all_messages(c: &Client, id: &SessionId) -> anyhow::Result<Vec<Message>> {
    let mut out: Vec<Message> = Vec::new();
    loop {
        let page = c.messages(id, Some(out.len() as u64), Some(1000)).await?;
        let n = page.messages.len();
        out.extend(page.messages);
        if n == 0 || out.len() as u64 >= page.total {
            return Ok(out);
        }
    }
}

fn print_message(m: &Message, color: bool) {
    match m.role {
        Role::User => {
            for l in m.content.lines() {
                output::line(&output::bold(&format!("> {l}"), color));
            }
        }
        Role::Assistant => output::line(&m.content),
        Role::Tool => output::line(&dim(&format!("[tool] {}", cut(&m.content, 200)), color)),
    }
    output::line("");
}

fn print_event(e: &Event, color: bool) {
    match e {
        Event::UserMessage { text, .. } => {
            for l in text.lines() {
                output::line(&output::bold(&format!("> {l}"), color));
            }
        }
        Event::AgentMessageChunk { text, .. } => output::text(text),
        Event::AgentThoughtChunk { text, .. } => output::text(&dim(text, color)),
        Event::ToolCall { name, input, .. } => output::line(&dim(
            &format!("\n[tool] {name} {}", cut(&input.to_string(), 200)),
            color,
        )),
        Event::ToolResult { output: o, .. } => output::line(&dim(
            &format!("[result] {}", cut(&o.to_string(), 200)),
            color,
        )),
        Event::Request {
            request_id, prompt, ..
        } => output::line(&format!("\n[request {request_id}] {prompt}")),
        Event::TurnComplete { verdict } => {
            output::line("");
            if verdict.stop_reason.as_str() != "end_turn" {
                output::line(&dim(
                    &format!("[turn {}]", verdict.stop_reason.as_str()),
                    color,
                ));
            }
            output::line("");
        }
        Event::SessionClosed { reason } => output::line(&dim(
            &format!("[session closed: {}]", output::name(reason)),
            color,
        )),
        _ => {}
    }
}

/// `close`.
pub async fn close(c: &Client, arg: &str) -> anyhow::Result<ExitCode> {
    let id = resolve(c, arg).await?;
    let r = c.close_session(&id).await?;
    match r.cancelled_turn {
        Some(t) => output::line(&format!("closed {id} (cancelled {t})")),
        None => output::line(&format!("closed {id}")),
    }
    Ok(ExitCode::SUCCESS)
}

/// `delete`.
pub async fn delete(c: &Client, arg: &str) -> anyhow::Result<ExitCode> {
    let id = resolve(c, arg).await?;
    c.delete_session(&id).await?;
    output::line(&format!("deleted {id}"));
    Ok(ExitCode::SUCCESS)
}

/// `rename`.
pub async fn rename(c: &Client, arg: &str, title: &str) -> anyhow::Result<ExitCode> {
    let id = resolve(c, arg).await?;
    let info = c.rename(&id, title).await?;
    output::line(&format!(
        "{} is now {:?}",
        info.session_id,
        info.title.unwrap_or_default()
    ));
    Ok(ExitCode::SUCCESS)
}

/// `upload`: the daemon reads the file itself (Unix socket).
pub async fn upload(c: &Client, arg: &str, file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let meta = std::fs::metadata(file).map_err(|e| {
        fail(
            Code::Failure,
            format!("cannot read {}: {e}", file.display()),
        )
    })?;
    if !meta.is_file() {
        return Err(fail(
            Code::Usage,
            format!("{} is not a regular file", file.display()),
        ));
    }
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| fail(Code::Usage, "the file has no name"))?;
    let id = resolve(c, arg).await?;
    let entry = c.upload_path(&id, name, file).await?;
    if json {
        output::json(&entry)?;
    } else {
        output::line(&entry.ref_id);
        if entry.deduplicated {
            eprintln!("already uploaded to this session");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `set`: model, provider, temperature of the next turns.
pub async fn set(
    c: &Client,
    arg: &str,
    model: &Option<String>,
    provider: &Option<String>,
    temperature: &Option<String>,
) -> anyhow::Result<ExitCode> {
    let text = |v: &Option<String>| match v.as_deref() {
        None => Patch::Absent,
        Some("") => Patch::Clear,
        Some(s) => Patch::Set(s.to_owned()),
    };
    let temperature = match temperature.as_deref() {
        None => Patch::Absent,
        Some("" | "none") => Patch::Clear,
        Some(t) => Patch::Set(
            t.parse::<f64>()
                .map_err(|_| fail(Code::Usage, format!("temperature {t:?} is not a number")))?,
        ),
    };
    let patch = OverridesPatch {
        model: text(model),
        model_provider: text(provider),
        temperature,
    };
    if patch.model.is_absent() && patch.model_provider.is_absent() && patch.temperature.is_absent()
    {
        return Err(fail(
            Code::Usage,
            "nothing to set: give --model, --provider or --temperature",
        ));
    }
    let id = resolve(c, arg).await?;
    let r = c.configure(&id, patch).await?;
    output::line(&serde_json::to_string(&r.overrides)?);
    Ok(ExitCode::SUCCESS)
}
