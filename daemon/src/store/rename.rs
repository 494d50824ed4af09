//! `session/rename`: the owner sets a session's title (the rules of `session/new`).

use super::lifecycle::cut_title;
use super::{Caller, Store, StoreError};
use crate::persist::Op;
use crate::util::now_rfc3339;
use sessiond_protocol::{Event, SessionId, SessionInfo};
use std::sync::Arc;

/// Checks a title as `session/new` does and cuts it to its stored form.
pub(crate) fn check_title(title: &str) -> Result<String, StoreError> {
    if title.trim().is_empty() {
        return Err(StoreError::InvalidParams("title must not be blank".into()));
    }
    Ok(cut_title(title))
}

impl Store {
    /// `session/rename`: owner only; loads the session (like configure) so the change
    /// and its `title_changed` event happen in one step under the entry's lock.
    pub async fn rename(
        self: &Arc<Self>,
        caller: &Caller,
        id: &SessionId,
        title: &str,
    ) -> Result<SessionInfo, StoreError> {
        let title = check_title(title)?;
        self.check_owner(caller, id).await?;
        self.ensure_live(id).await?;
        let (info, commit) = {
            let mut e = self
                .sessions
                .get_mut(id)
                .ok_or_else(|| StoreError::NotFound(id.clone()))?;
            if !caller.may_mutate(e.rec.owner.as_ref()) {
                return Err(StoreError::NotOwned(id.clone()));
            }
            if e.rec.status.is_terminal() {
                return Err(StoreError::Terminated(id.clone(), e.rec.status));
            }
            e.rec.title = Some(title.clone());
            e.rec.updated_at = now_rfc3339();
            let commit = self.db.submit(vec![Op::UpdateSession(e.rec.clone())]);
            e.hub.publish(Event::TitleChanged { title });
            (e.info(), commit)
        };
        commit.await?;
        Ok(info)
    }
}
