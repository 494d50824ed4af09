//! Records as stored: sessions, transcript messages, uploads and turns. A neutral
//! module shared by the store (which keeps them in memory) and persist (which writes them).

use sessiond_protocol::{Mode, Overrides, SessionId, SessionStatus, TuiId, Usage};

/// A session as stored; live entries keep one in memory and write it through.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub id: SessionId,
    pub agent: String,
    pub mode: Mode,
    pub title: Option<String>,
    pub cwd: Option<String>,
    pub owner: Option<TuiId>,
    pub status: SessionStatus,
    pub overrides: Overrides,
    pub ttl_secs: Option<u64>,
    pub created_at: String,
    pub updated_at: String,
    pub last_active_at: String,
    pub message_count: u64,
    pub round_count: u64,
    pub usage: Usage,
    /// The last event `seq` handed out (0: none yet).
    pub last_seq: u64,
    /// Seqs up to this one may have been handed out by a process holding the session
    /// live (a reservation made durable ahead of use); read-only for updates.
    pub seq_reserved: u64,
}

/// A transcript message as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRecord {
    pub session_id: SessionId,
    pub index: u64,
    pub role: sessiond_protocol::Role,
    pub content: String,
    pub turn_id: Option<String>,
    pub created_at: String,
}

/// An upload index entry as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadRecord {
    pub session_id: SessionId,
    /// 64 lowercase hex characters (without the `sha256:` prefix).
    pub hash: String,
    pub name: String,
    pub mime_type: Option<String>,
    pub size_bytes: u64,
    pub created_at: String,
}

/// A turn's audit record.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnRecord {
    pub turn_id: String,
    pub session_id: SessionId,
    pub generation: u64,
    pub prompt: String,
    pub started_at: String,
}
