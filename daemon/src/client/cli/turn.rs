//! Turn verbs besides `prompt`: `cancel` and `respond`.

use super::output;
use super::resolve::resolve;
use sessiond_client::Client;
use sessiond_protocol::RequestId;
use std::process::ExitCode;

/// `cancel`.
pub async fn cancel(c: &Client, arg: &str) -> anyhow::Result<ExitCode> {
    let id = resolve(c, arg).await?;
    let r = c.cancel(&id).await?;
    match r.turn_id {
        Some(t) if r.cancelled => output::line(&format!("cancelled {t}")),
        _ => output::line("nothing to cancel"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `respond SESSION [REQUEST_ID] ANSWER`.
pub async fn respond(c: &Client, arg: &str, args: &[String]) -> anyhow::Result<ExitCode> {
    let (request_id, answer) = match args {
        [answer] => (None, answer.as_str()),
        [rid, answer] => (Some(RequestId(rid.clone())), answer.as_str()),
        _ => {
            return Err(super::exit::fail(
                super::exit::Code::Usage,
                "give [REQUEST_ID] ANSWER",
            ))
        }
    };
    let id = resolve(c, arg).await?;
    let r = c.respond(&id, request_id, answer_value(answer)).await?;
    output::line(&format!("answered; {} pending", r.remaining));
    Ok(ExitCode::SUCCESS)
}

/// An answer as sent: a JSON object given as is (`{"outcome":"selected",...}`),
/// anything else as a plain string (an option id, or the text of an answer).
pub fn answer_value(answer: &str) -> serde_json::Value {
    match serde_json::from_str::<serde_json::Value>(answer) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ => serde_json::Value::String(answer.to_owned()),
    }
}
