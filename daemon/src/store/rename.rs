//! `session/rename`: the owner sets a session's title (the rules of `session/new`).

use super::lifecycle::cut_title;
use super::{Caller, Store, StoreError};
use sessiond_protocol::{SessionId, SessionInfo};
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
    /// and its `title_changed` event are one transition.
    pub async fn rename(
        self: &Arc<Self>,
        caller: &Caller,
        id: &SessionId,
        title: &str,
    ) -> Result<SessionInfo, StoreError> {
        check_title(title)?;
        self.check_owner(caller, id).await?;
        self.ensure_live_for(Some(caller), id).await?;
        self.apply(id, |e| e.rename(caller, title)).await
    }
}
