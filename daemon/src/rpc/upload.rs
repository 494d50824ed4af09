//! Uploads: `session/upload` (bytes or a local path) and `session/uploads`.

use super::{ctx, invalid_params, Rpc};
use crate::uploads::UploadSource;
use jsonrpsee::core::{async_trait, RpcResult};
use jsonrpsee::Extensions;
use sessiond_protocol::api::UploadApiServer;
use sessiond_protocol::params::UploadsResult;
use sessiond_protocol::{SessionId, UploadEntry};

#[async_trait]
impl UploadApiServer for Rpc {
    async fn session_upload(
        &self,
        ext: &Extensions,
        session_id: SessionId,
        name: String,
        mime_type: Option<String>,
        data_b64: Option<String>,
        path: Option<String>,
    ) -> RpcResult<UploadEntry> {
        let caller = ctx(ext).caller();
        let source = match (data_b64, path) {
            (Some(b), None) => UploadSource::Base64(b),
            (None, Some(p)) => UploadSource::Path(p),
            _ => return Err(invalid_params("give exactly one of data_b64 and path")),
        };
        Ok(self
            .d
            .store
            .upload(&caller, &session_id, name, mime_type, source)
            .await?)
    }

    async fn session_uploads(
        &self,
        _ext: &Extensions,
        session_id: SessionId,
    ) -> RpcResult<UploadsResult> {
        Ok(UploadsResult {
            uploads: self.d.store.uploads(&session_id).await?,
        })
    }
}
