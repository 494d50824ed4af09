//! The session transitions of the state machine: claim (or take over), configure,
//! rename, add an upload, begin a teardown. Each is synchronous, checks its own
//! preconditions (ownership included) and returns the writes and events it needs,
//! with an undo for when those writes fail; `Store::step` applies them.
//!
//! A session: stored -> (load) live -> (close, evict, kill, delete, expire, stop)
//! retiring -> stored again (closed, evicted, stopped), terminal (killed, expired)
//! or gone (deleted). See docs/architecture.md for the diagram.

use super::step::Step;
use super::{Caller, Entry, StoreError};
use crate::agent::Agents;
use crate::persist::Op;
use crate::record::UploadRecord;
use crate::util::now_rfc3339;
use sessiond_protocol::params::OverridesPatch;
use sessiond_protocol::{
    CancelCause, CloseReason, Event, Overrides, SessionStatus, TuiId, UploadEntry,
};

/// What retiring a live entry takes away and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retire {
    Close,
    Kill,
    Delete,
    Shutdown,
    Expire,
}

impl Retire {
    /// The cause of the cancels it fires (running and queued turns).
    pub fn cause(self) -> CancelCause {
        match self {
            Retire::Close | Retire::Delete | Retire::Expire => CancelCause::SessionRemoved,
            Retire::Kill => CancelCause::AdminKill,
            Retire::Shutdown => CancelCause::Shutdown,
        }
    }

    /// The `session_closed` reason; `None` for a daemon stop, which does not close
    /// the session and publishes nothing.
    pub fn reason(self) -> Option<CloseReason> {
        match self {
            Retire::Close => Some(CloseReason::Closed),
            Retire::Kill => Some(CloseReason::Killed),
            Retire::Delete => Some(CloseReason::Deleted),
            Retire::Expire => Some(CloseReason::Expired),
            Retire::Shutdown => None,
        }
    }
}

impl Entry {
    /// `session/load` by a TUI: claims an unowned session, keeps the caller's own,
    /// takes another TUI's over only with `take_over`. Returns the previous owner
    /// when ownership moved.
    pub fn claim(
        &mut self,
        caller: &Caller,
        take_over: bool,
    ) -> Result<Step<Option<Option<TuiId>>>, StoreError> {
        if self.rec.status.is_terminal() {
            return Err(StoreError::Terminated(self.rec.id.clone(), self.rec.status));
        }
        if self.rec.owner.is_some() && self.rec.owner != caller.tui && !take_over {
            return Err(StoreError::NotOwned(self.rec.id.clone()));
        }
        // An anonymous caller loads without claiming.
        if caller.tui.is_none() || self.rec.owner == caller.tui {
            return Ok(Step::none(None));
        }
        let previous = self.rec.owner.clone();
        let new = caller.tui.clone();
        self.rec.owner = new.clone();
        self.rec.updated_at = now_rfc3339();
        let back = previous.clone();
        Ok(Step::none(Some(previous.clone()))
            .op(Op::UpdateSession(self.rec.clone()))
            .event(Event::OwnerChanged {
                owner_tui_id: new.clone(),
                previous_owner_tui_id: previous,
            })
            .undo(move |e| {
                if e.rec.owner != new {
                    return Vec::new();
                }
                e.rec.owner = back.clone();
                vec![Event::OwnerChanged {
                    owner_tui_id: back,
                    previous_owner_tui_id: new,
                }]
            }))
    }

    /// `session/configure`: validates and merges the patch; applies from the next turn.
    pub fn configure(
        &mut self,
        caller: &Caller,
        patch: &OverridesPatch,
        agents: &Agents,
    ) -> Result<Step<Overrides>, StoreError> {
        self.check_owner(caller)?;
        if self.rec.status.is_terminal() {
            return Err(StoreError::Terminated(self.rec.id.clone(), self.rec.status));
        }
        let merged = super::overrides::merge(&self.rec.overrides, patch, agents)?;
        let before = std::mem::replace(&mut self.rec.overrides, merged.clone());
        self.rec.updated_at = now_rfc3339();
        let now = merged.clone();
        Ok(Step::none(merged.clone())
            .op(Op::UpdateSession(self.rec.clone()))
            .event(Event::OverridesChanged { overrides: merged })
            .undo(move |e| {
                if e.rec.overrides != now {
                    return Vec::new();
                }
                e.rec.overrides = before.clone();
                vec![Event::OverridesChanged { overrides: before }]
            }))
    }

    /// `session/rename`: sets the title (title rules of `session/new`); the owner only,
    /// not on a terminal session. Returns the session as it is after the change.
    pub fn rename(
        &mut self,
        caller: &Caller,
        title: &str,
    ) -> Result<Step<sessiond_protocol::SessionInfo>, StoreError> {
        self.check_owner(caller)?;
        if self.rec.status.is_terminal() {
            return Err(StoreError::Terminated(self.rec.id.clone(), self.rec.status));
        }
        let title = super::rename::check_title(title)?;
        let before = self.rec.title.replace(title.clone());
        let now = self.rec.title.clone();
        self.rec.updated_at = now_rfc3339();
        Ok(Step::none(self.info())
            .op(Op::UpdateSession(self.rec.clone()))
            .event(Event::TitleChanged { title })
            .undo(move |e| {
                if e.rec.title != now {
                    return Vec::new();
                }
                e.rec.title = before.clone();
                before
                    .map(|title| vec![Event::TitleChanged { title }])
                    .unwrap_or_default()
            }))
    }

    /// `session/upload`, once the bytes are stored: indexes the upload.
    pub fn add_upload(
        &mut self,
        caller: &Caller,
        rec: UploadRecord,
        entry: UploadEntry,
    ) -> Result<Step<()>, StoreError> {
        self.check_owner(caller)?;
        self.rec.updated_at = now_rfc3339();
        Ok(Step::none(())
            .op(Op::AddUpload(rec))
            .op(Op::UpdateSession(self.rec.clone()))
            .event(Event::UploadAdded { entry }))
    }

    /// First step of a teardown: no new turn is accepted or started from here on,
    /// and the status change (`killed`, `expired`) is written before anything else
    /// happens. `caller` is checked for close and delete. An expiry only takes an
    /// idle session. Undone (not retiring, old status) when the write fails.
    pub fn begin_retire(
        &mut self,
        how: Retire,
        caller: Option<&Caller>,
    ) -> Result<Step<()>, StoreError> {
        if let Some(c) = caller {
            self.check_owner(c)?;
        }
        if self.retiring || (how == Retire::Expire && !self.is_idle()) {
            return Err(StoreError::NotFound(self.rec.id.clone()));
        }
        self.retiring = true;
        let undo = move |e: &mut Entry| {
            e.retiring = false;
            Vec::new()
        };
        // Stopping the daemon is not a change to the session.
        if how == Retire::Shutdown {
            return Ok(Step::none(()).undo(undo));
        }
        // The stored record takes the new status now; the entry keeps its own until
        // it is unloaded (a session is never seen live and terminal at once), and a
        // stored terminal status is never overwritten by a later write of the entry.
        let mut stored = self.rec.clone();
        match how {
            Retire::Kill => stored.status = SessionStatus::Killed,
            Retire::Expire => stored.status = SessionStatus::Expired,
            _ => {}
        }
        stored.updated_at = now_rfc3339();
        Ok(Step::none(()).op(Op::UpdateSession(stored)).undo(undo))
    }
}
