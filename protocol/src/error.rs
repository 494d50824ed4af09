//! sessiond's JSON-RPC error codes (PROTOCOL.md section 8) and helpers to build them.

use jsonrpsee::types::ErrorObjectOwned;
use serde::Serialize;

/// Error codes. Standard JSON-RPC codes keep their meaning; these are sessiond's own.
pub mod codes {
    pub const PARSE_ERROR: i32 = -32700;
    pub const INVALID_REQUEST: i32 = -32600;
    pub const METHOD_NOT_FOUND: i32 = -32601;
    pub const INVALID_PARAMS: i32 = -32602;
    pub const INTERNAL_ERROR: i32 = -32603;

    pub const UNSUPPORTED_PROTOCOL: i32 = -32040;
    pub const SESSION_NOT_FOUND: i32 = -32041;
    pub const SESSION_LIMIT_REACHED: i32 = -32042;
    pub const SESSION_BUSY: i32 = -32043;
    pub const SESSION_NOT_OWNED: i32 = -32044;
    pub const SESSION_TERMINATED: i32 = -32045;
    pub const ADMIN_REQUIRED: i32 = -32046;
    pub const INVALID_TUI_SIGNATURE: i32 = -32047;
    pub const UPLOAD_TOO_LARGE: i32 = -32048;
    pub const NO_PENDING_REQUEST: i32 = -32049;
    pub const AGENT_UNAVAILABLE: i32 = -32050;
    pub const SHUTTING_DOWN: i32 = -32051;
}

/// The symbolic name of a code, for messages and the CLI.
pub fn code_name(code: i32) -> &'static str {
    use codes::*;
    match code {
        PARSE_ERROR => "PARSE_ERROR",
        INVALID_REQUEST => "INVALID_REQUEST",
        METHOD_NOT_FOUND => "METHOD_NOT_FOUND",
        INVALID_PARAMS => "INVALID_PARAMS",
        INTERNAL_ERROR => "INTERNAL_ERROR",
        UNSUPPORTED_PROTOCOL => "UNSUPPORTED_PROTOCOL",
        SESSION_NOT_FOUND => "SESSION_NOT_FOUND",
        SESSION_LIMIT_REACHED => "SESSION_LIMIT_REACHED",
        SESSION_BUSY => "SESSION_BUSY",
        SESSION_NOT_OWNED => "SESSION_NOT_OWNED",
        SESSION_TERMINATED => "SESSION_TERMINATED",
        ADMIN_REQUIRED => "ADMIN_REQUIRED",
        INVALID_TUI_SIGNATURE => "INVALID_TUI_SIGNATURE",
        UPLOAD_TOO_LARGE => "UPLOAD_TOO_LARGE",
        NO_PENDING_REQUEST => "NO_PENDING_REQUEST",
        AGENT_UNAVAILABLE => "AGENT_UNAVAILABLE",
        SHUTTING_DOWN => "SHUTTING_DOWN",
        _ => "ERROR",
    }
}

/// Builds an error object with optional structured `data`.
pub fn rpc_error(
    code: i32,
    message: impl Into<String>,
    data: Option<impl Serialize>,
) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), data)
}

/// Builds an error object without `data`.
pub fn rpc_error_plain(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned::<()>(code, message.into(), None)
}
