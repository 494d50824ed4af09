//! `session/list` answered with each live session's kept JSON text
//! ([`crate::store::listed`]) instead of serialising every `SessionInfo` again.
//! The `#[rpc]` trait's typed method stays (and `admin/sessions` keeps it); this one
//! replaces it in the served module, decoding the params exactly as the macro-made
//! one does (an object with snake_case or lowerCamelCase names, or an array in
//! order), so requests, errors and replies are the same bytes.

use super::{ctx, Rpc};
use jsonrpsee::core::RpcResult;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::{Extensions, RpcModule};
use serde::{Deserialize, Serialize};
use sessiond_protocol::params::ListParams;
use sessiond_protocol::{methods, Mode, SessionStatus};

/// `ListResult` with each session as kept JSON text.
#[derive(Debug, Clone, Serialize)]
struct ListReply {
    sessions: Vec<crate::store::listed::InfoJson>,
    next_cursor: Option<String>,
}

/// The params object as jsonrpsee's macro declares it for `session_list`.
#[derive(Deserialize)]
struct ParamsObject {
    #[serde(alias = "owner")]
    owner: Option<String>,
    #[serde(alias = "mode")]
    mode: Option<Mode>,
    #[serde(alias = "live")]
    live: Option<bool>,
    #[serde(alias = "status")]
    status: Option<SessionStatus>,
    #[serde(alias = "limit")]
    limit: Option<u32>,
    #[serde(alias = "cursor")]
    cursor: Option<String>,
    #[serde(alias = "cwd")]
    cwd: Option<String>,
    #[serde(alias = "title_contains", alias = "titleContains")]
    title_contains: Option<String>,
}

/// The params, decoded as the macro-made method decodes them.
fn decode(params: &Params<'_>) -> Result<ListParams, ErrorObjectOwned> {
    if params.is_object() {
        let p: ParamsObject = params.parse()?;
        return Ok(ListParams {
            owner: p.owner,
            mode: p.mode,
            live: p.live,
            status: p.status,
            limit: p.limit,
            cursor: p.cursor,
            cwd: p.cwd,
            title_contains: p.title_contains,
        });
    }
    let mut seq = params.sequence();
    Ok(ListParams {
        owner: seq.optional_next()?,
        mode: seq.optional_next()?,
        live: seq.optional_next()?,
        status: seq.optional_next()?,
        limit: seq.optional_next()?,
        cursor: seq.optional_next()?,
        cwd: seq.optional_next()?,
        title_contains: seq.optional_next()?,
    })
}

impl Rpc {
    async fn session_list_json(
        &self,
        ext: &Extensions,
        params: Params<'_>,
    ) -> RpcResult<ListReply> {
        let p = decode(&params)?;
        let c = ctx(ext);
        let tui = c.tui.get().map(|t| t.0.clone());
        let filter = super::session::list_filter(tui.as_deref(), false, p)?;
        let (sessions, next_cursor) = self.d.store.list_json(filter).await?;
        Ok(ListReply {
            sessions,
            next_cursor,
        })
    }
}

/// Serves `session/list` from the kept texts in `m` (which holds the typed method).
pub fn install(m: &mut RpcModule<()>, rpc: Rpc) {
    m.remove_method(methods::SESSION_LIST);
    m.register_async_method(methods::SESSION_LIST, move |params, _, ext| {
        let rpc = rpc.clone();
        async move { rpc.session_list_json(&ext, params).await }
    })
    .expect("session/list was just removed");
}
