//! The daemon-wide session feed (`daemon/subscribe`, notifications `daemon/update`).

use crate::ids::SessionId;
use crate::types::SessionInfo;
use serde::{Deserialize, Serialize};

/// One `daemon/update` notification's `result`, tagged by `type`. A lagging
/// subscriber gets the latest state of each changed session, coalesced by id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DaemonUpdate {
    /// A session was created, loaded, unloaded, renamed, configured, or changed
    /// owner, status, turn state or watchers: its record as it is now.
    SessionChanged { session: Box<SessionInfo> },
    /// A session was deleted.
    SessionDeleted { session_id: SessionId },
}

impl DaemonUpdate {
    /// The session this update is about.
    pub fn session_id(&self) -> &SessionId {
        match self {
            DaemonUpdate::SessionChanged { session } => &session.session_id,
            DaemonUpdate::SessionDeleted { session_id } => session_id,
        }
    }
}
