//! The command line's exit codes and the error that carries one. Every failure of a
//! client command ends up as one line on stderr and one of these codes.

use std::fmt;

/// The documented exit codes (docs/operations.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Code {
    /// Any other failure.
    Failure = 1,
    /// Bad usage: an unknown flag, a missing argument, an ambiguous session prefix.
    Usage = 2,
    /// The daemon could not be reached (or started).
    Unreachable = 3,
    /// No such session.
    NotFound = 4,
    /// The session belongs to another TUI (or profile).
    NotOwned = 5,
    /// The turn ended with `failed` (or the agent stopped for another reason).
    TurnFailed = 6,
    /// The turn was cancelled.
    TurnCancelled = 7,
}

/// A failure with the exit code it means and a message that says the cause once.
#[derive(Debug)]
pub struct CliError {
    pub code: Code,
    pub message: String,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// An `anyhow` error carrying `code`.
pub fn fail(code: Code, message: impl Into<String>) -> anyhow::Error {
    CliError {
        code,
        message: message.into(),
    }
    .into()
}

/// The exit code an error stands for.
pub fn code_of(e: &anyhow::Error) -> Code {
    for cause in e.chain() {
        if let Some(c) = cause.downcast_ref::<CliError>() {
            return c.code;
        }
        if let Some(c) = cause.downcast_ref::<sessiond_client::Error>() {
            return match c.code_name() {
                Some("SESSION_NOT_FOUND") => Code::NotFound,
                Some("SESSION_NOT_OWNED") => Code::NotOwned,
                _ if c.is_disconnect() => Code::Unreachable,
                _ => Code::Failure,
            };
        }
    }
    Code::Failure
}

/// The one line printed for an error: every distinct cause once, joined by ": ".
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        let s = s.lines().map(str::trim).collect::<Vec<_>>().join(" ");
        // A cause whose text is already part of the line (an OS error repeated by a
        // wrapper) is said once.
        if parts.iter().any(|p| p.contains(&s)) {
            continue;
        }
        parts.retain(|p| !s.contains(p.as_str()));
        parts.push(s);
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn a_repeated_cause_is_said_once() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let inner = format!("i/o error: {io}");
        let e = Err::<(), _>(anyhow::anyhow!(inner.clone()))
            .context(format!("cannot connect: {inner}"))
            .unwrap_err();
        assert_eq!(one_line(&e), format!("cannot connect: {inner}"));
    }

    #[test]
    fn codes_come_from_the_error() {
        assert_eq!(code_of(&fail(Code::NotFound, "x")), Code::NotFound);
        let rpc = sessiond_client::Error::Rpc {
            code: sessiond_protocol::codes::SESSION_NOT_OWNED,
            message: "m".into(),
            data: None,
        };
        assert_eq!(code_of(&anyhow::Error::from(rpc)), Code::NotOwned);
        assert_eq!(code_of(&anyhow::anyhow!("x")), Code::Failure);
    }
}
