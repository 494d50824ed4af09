//! An upload that deduplicated against another session's file keeps it even when
//! that other session is deleted between the dedup and the commit of the upload's
//! index entry (the delete removes files nothing references).

use super::{Caller, Store};
use crate::agent::Agents;
use crate::record::UploadRecord;
use crate::uploads::UploadSource;
use base64::Engine;
use sessiond_config::Config;
use sessiond_protocol::params::NewSessionParams;
use std::sync::Arc;

#[tokio::test]
async fn a_delete_between_dedup_and_index_keeps_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::from_toml_str("").unwrap();
    let blobs = dir.path().join("uploads");
    std::fs::create_dir_all(&blobs).unwrap();
    let (db, _) = crate::persist::Db::open(dir.path(), &blobs).unwrap();
    let agents = Arc::new(Agents::from_config(&cfg));
    let store = Store::new(Arc::new(cfg), db, agents, blobs.clone(), 0);
    let caller = Caller::default();
    let new = || NewSessionParams {
        keep_siblings: Some(true),
        ..Default::default()
    };
    let a = store.create(&caller, new()).await.unwrap().0.session_id;
    let b = store.create(&caller, new()).await.unwrap().0.session_id;
    let bytes = b"shared bytes".to_vec();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let up = store
        .upload(&caller, &a, "x.txt".into(), None, UploadSource::Base64(b64))
        .await
        .unwrap();
    let file = std::path::PathBuf::from(&up.workspace_path);
    // B's upload of the same bytes: the file exists, so nothing is written...
    let bytes = Arc::new(bytes);
    let hash = up.ref_id.trim_start_matches("sha256:").to_owned();
    store.write_blob(&hash, bytes.clone()).await.unwrap();
    // ...then A is deleted, and with it the file nothing else references yet...
    store.delete(&caller, &a).await.unwrap();
    assert!(!file.exists(), "the delete removes the unreferenced file");
    // ...then B's index entry is committed: the file must be there.
    let rec = UploadRecord {
        session_id: b.clone(),
        hash: up.ref_id.trim_start_matches("sha256:").to_owned(),
        name: "x.txt".into(),
        mime_type: None,
        size_bytes: bytes.len() as u64,
        created_at: crate::util::now_rfc3339(),
    };
    store
        .index_upload(&caller, rec, bytes.clone())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), *bytes);
}
