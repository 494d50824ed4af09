//! The client's error type: errors the daemon answered with, transport failures, timeouts.

use jsonrpsee::client_transport::ws::WsHandshakeError;
use jsonrpsee::core::client::Error as RpcClientError;
use jsonrpsee::types::ErrorObjectOwned;
use sessiond_protocol::error::code_name;
use std::fmt;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a call, a connect or an event stream can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The daemon answered with a JSON-RPC error (see `sessiond_protocol::codes`).
    #[error("{}", RpcDisplay { code: *code, message })]
    Rpc {
        code: i32,
        message: String,
        data: Option<serde_json::Value>,
    },
    /// The connection could not be set up, or broke at the transport layer.
    #[error("transport error: {0}")]
    Transport(String),
    /// The call did not complete within `ConnectOptions::call_timeout`.
    #[error("timed out")]
    Timeout,
    /// The connection is closed; the call was not (or no longer) answered.
    #[error("connection closed")]
    Closed,
    /// An event subscription fell behind `ConnectOptions::subscription_buffer` and was
    /// dropped by the client. Subscribe again with `since_seq = last_seq()`.
    #[error("event subscription lagged behind and was dropped")]
    Lagged,
    /// A [`ReconnectingClient`](crate::ReconnectingClient) gave up reconnecting (its
    /// `max_attempts` ran out, or the daemon refused its identity).
    #[error("reconnecting failed: {0}")]
    ReconnectFailed(String),
    /// The daemon's answer (or an event) did not have the expected shape.
    #[error("unexpected response: {0}")]
    Decode(String),
    /// An argument given to the SDK is unusable (bad URL, path, token).
    #[error("invalid argument: {0}")]
    InvalidInput(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Display of [`Error::Rpc`]: `"{message} ({NAME})"`, or `"{message} (error {code})"` for
/// a code without a name.
struct RpcDisplay<'a> {
    code: i32,
    message: &'a str,
}

impl fmt::Display for RpcDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match code_name(self.code) {
            "ERROR" => write!(f, "{} (error {})", self.message, self.code),
            name => write!(f, "{} ({name})", self.message),
        }
    }
}

impl Error {
    /// The JSON-RPC error code, for [`Error::Rpc`].
    pub fn code(&self) -> Option<i32> {
        match self {
            Error::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The structured `data` of an [`Error::Rpc`], if the daemon sent any.
    pub fn data(&self) -> Option<&serde_json::Value> {
        match self {
            Error::Rpc { data, .. } => data.as_ref(),
            _ => None,
        }
    }

    /// The symbolic name of the code (`"SESSION_NOT_FOUND"`), for [`Error::Rpc`].
    pub fn code_name(&self) -> Option<&'static str> {
        self.code().map(code_name)
    }

    /// True when the connection is gone (reconnecting may help).
    pub fn is_disconnect(&self) -> bool {
        matches!(self, Error::Closed | Error::Transport(_))
    }
}

impl From<ErrorObjectOwned> for Error {
    fn from(e: ErrorObjectOwned) -> Self {
        let data = e
            .data()
            .map(|raw| serde_json::from_str(raw.get()).unwrap_or(serde_json::Value::Null));
        Error::Rpc {
            code: e.code(),
            message: e.message().to_owned(),
            data,
        }
    }
}

impl From<RpcClientError> for Error {
    fn from(e: RpcClientError) -> Self {
        match e {
            RpcClientError::Call(obj) => obj.into(),
            RpcClientError::Transport(e) => Error::Transport(e.to_string()),
            RpcClientError::RestartNeeded(_) | RpcClientError::ServiceDisconnect => Error::Closed,
            RpcClientError::ParseError(e) => Error::Decode(e.to_string()),
            RpcClientError::RequestTimeout => Error::Timeout,
            other => Error::Transport(other.to_string()),
        }
    }
}

impl From<WsHandshakeError> for Error {
    fn from(e: WsHandshakeError) -> Self {
        match e {
            WsHandshakeError::Io(e) => Error::Io(e),
            WsHandshakeError::Url(u) => Error::InvalidInput(u.into_owned()),
            WsHandshakeError::Timeout(_) => Error::Timeout,
            WsHandshakeError::Rejected { status_code } => Error::Transport(format!(
                "the daemon refused the websocket upgrade (HTTP {status_code})"
            )),
            other => Error::Transport(format!("websocket handshake failed: {other}")),
        }
    }
}

impl From<url::ParseError> for Error {
    fn from(e: url::ParseError) -> Self {
        Error::InvalidInput(format!("bad url: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sessiond_protocol::codes;

    #[test]
    fn call_error_becomes_rpc_with_code_message_and_data() {
        let obj = ErrorObjectOwned::owned(
            codes::SESSION_NOT_FOUND,
            "no such session",
            Some(json!({"session_id": "s1"})),
        );
        let err = Error::from(RpcClientError::Call(obj));
        match &err {
            Error::Rpc {
                code,
                message,
                data,
            } => {
                assert_eq!(*code, -32041);
                assert_eq!(message, "no such session");
                assert_eq!(data, &Some(json!({"session_id": "s1"})));
            }
            other => panic!("expected Rpc, got {other:?}"),
        }
        assert_eq!(err.code(), Some(codes::SESSION_NOT_FOUND));
        assert_eq!(err.code_name(), Some("SESSION_NOT_FOUND"));
        assert_eq!(err.data(), Some(&json!({"session_id": "s1"})));
        assert_eq!(err.to_string(), "no such session (SESSION_NOT_FOUND)");
    }

    #[test]
    fn call_error_without_data_has_none() {
        let obj = ErrorObjectOwned::owned::<()>(codes::SESSION_BUSY, "queue is full", None);
        let err = Error::from(obj);
        assert_eq!(err.data(), None);
        assert_eq!(err.to_string(), "queue is full (SESSION_BUSY)");
    }

    #[test]
    fn display_names_every_protocol_code() {
        for (code, name) in [
            (codes::INVALID_PARAMS, "INVALID_PARAMS"),
            (codes::SESSION_NOT_OWNED, "SESSION_NOT_OWNED"),
            (codes::SHUTTING_DOWN, "SHUTTING_DOWN"),
        ] {
            let err = Error::Rpc {
                code,
                message: "m".into(),
                data: None,
            };
            assert_eq!(err.to_string(), format!("m ({name})"));
        }
    }

    #[test]
    fn display_of_unknown_code_shows_the_number() {
        let err = Error::Rpc {
            code: -32007,
            message: "too many subscriptions".into(),
            data: None,
        };
        assert_eq!(err.to_string(), "too many subscriptions (error -32007)");
        assert_eq!(err.code(), Some(-32007));
    }

    #[test]
    fn non_rpc_errors_have_no_code() {
        assert_eq!(Error::Timeout.code(), None);
        assert_eq!(Error::Closed.code(), None);
        assert_eq!(Error::Closed.data(), None);
        assert!(Error::Closed.is_disconnect());
        assert!(!Error::Timeout.is_disconnect());
    }

    #[test]
    fn client_errors_map_to_the_right_variant() {
        let restart = RpcClientError::RestartNeeded(std::sync::Arc::new(RpcClientError::Custom(
            "gone".into(),
        )));
        assert!(matches!(Error::from(restart), Error::Closed));
        assert!(matches!(
            Error::from(RpcClientError::RequestTimeout),
            Error::Timeout
        ));
        let parse = serde_json::from_str::<u32>("\"x\"").unwrap_err();
        assert!(matches!(
            Error::from(RpcClientError::ParseError(parse)),
            Error::Decode(_)
        ));
        assert!(matches!(
            Error::from(RpcClientError::Transport("boom".into())),
            Error::Transport(ref s) if s == "boom"
        ));
    }

    #[test]
    fn handshake_errors_map_to_the_right_variant() {
        let rejected = Error::from(WsHandshakeError::Rejected { status_code: 401 });
        assert!(matches!(&rejected, Error::Transport(s) if s.contains("401")));
        let io = Error::from(WsHandshakeError::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert!(matches!(&io, Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused));
    }
}
