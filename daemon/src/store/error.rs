//! Store errors; each maps to one protocol error code.

use jsonrpsee::types::ErrorObjectOwned;
use serde_json::json;
use sessiond_protocol::error::{codes, rpc_error};
use sessiond_protocol::{SessionId, SessionStatus};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("session not found")]
    NotFound(SessionId),
    #[error("session is owned by another tui")]
    NotOwned(SessionId),
    #[error("session is {}", .1.as_str())]
    Terminated(SessionId, SessionStatus),
    #[error("live session limit reached ({0})")]
    LimitReached(usize),
    #[error("turn queue is full ({1} queued)")]
    Busy(SessionId, usize),
    #[error("{0}")]
    AgentUnavailable(String),
    #[error("{0}")]
    InvalidParams(String),
    #[error("no pending request")]
    NoPendingRequest(SessionId),
    #[error("upload exceeds max_upload_bytes ({0})")]
    UploadTooLarge(u64),
    #[error("daemon is shutting down")]
    ShuttingDown,
    #[error("internal error")]
    Internal(String),
}

impl From<crate::persist::PersistError> for StoreError {
    fn from(e: crate::persist::PersistError) -> Self {
        tracing::error!(error = %e, "persistence failed");
        StoreError::Internal(e.to_string())
    }
}

impl From<StoreError> for ErrorObjectOwned {
    fn from(e: StoreError) -> Self {
        if let StoreError::Internal(cause) = &e {
            // The client gets the short message; the log keeps the cause.
            tracing::error!(cause = %cause, "internal error");
        }
        let msg = e.to_string();
        match &e {
            StoreError::NotFound(id) => rpc_error(
                codes::SESSION_NOT_FOUND,
                msg,
                Some(json!({ "session_id": id })),
            ),
            StoreError::NotOwned(id) => rpc_error(
                codes::SESSION_NOT_OWNED,
                msg,
                Some(json!({ "session_id": id })),
            ),
            StoreError::Terminated(id, st) => rpc_error(
                codes::SESSION_TERMINATED,
                msg,
                Some(json!({ "session_id": id, "status": st })),
            ),
            StoreError::LimitReached(n) => rpc_error(
                codes::SESSION_LIMIT_REACHED,
                msg,
                Some(json!({ "max_live_sessions": n })),
            ),
            StoreError::Busy(id, n) => rpc_error(
                codes::SESSION_BUSY,
                msg,
                Some(json!({ "session_id": id, "queued_turns": n })),
            ),
            StoreError::AgentUnavailable(_) => rpc_error(codes::AGENT_UNAVAILABLE, msg, None::<()>),
            StoreError::InvalidParams(_) => rpc_error(codes::INVALID_PARAMS, msg, None::<()>),
            StoreError::NoPendingRequest(id) => rpc_error(
                codes::NO_PENDING_REQUEST,
                msg,
                Some(json!({ "session_id": id })),
            ),
            StoreError::UploadTooLarge(max) => rpc_error(
                codes::UPLOAD_TOO_LARGE,
                msg,
                Some(json!({ "max_upload_bytes": max })),
            ),
            StoreError::ShuttingDown => rpc_error(codes::SHUTTING_DOWN, msg, None::<()>),
            StoreError::Internal(detail) if is_disk_full(detail) => rpc_error(
                codes::INTERNAL_ERROR,
                "the disk is full; nothing was written",
                None::<()>,
            ),
            StoreError::Internal(_) => rpc_error(codes::INTERNAL_ERROR, msg, None::<()>),
        }
    }
}

/// Whether an internal error's detail is the disk (or the database) being full:
/// SQLite's `SQLITE_FULL` or the system's `ENOSPC`.
fn is_disk_full(detail: &str) -> bool {
    detail.contains("database or disk is full") || detail.contains("No space left on device")
}
