//! Upload bytes on disk: one file per content hash under the data directory, written
//! atomically (temp file in the same directory, fsync, rename, fsync the directory).

use crate::record::UploadRecord;
use crate::store::{Caller, Store, StoreError};
use crate::util::now_rfc3339;
use base64::Engine;
use sessiond_protocol::{SessionId, UploadEntry};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const TEMP_PREFIX: &str = ".tmp-";

/// Where the bytes come from.
pub enum UploadSource {
    Base64(String),
    Path(String),
}

/// Checks an upload's file name: a name, not a path.
pub fn validate_name(name: &str) -> Result<(), StoreError> {
    let bad = |why: &str| {
        Err(StoreError::InvalidParams(format!(
            "invalid upload name: {why}"
        )))
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 255 {
        return bad("longer than 255 bytes");
    }
    if name.contains('/') || name.contains('\\') || name.contains('\0') {
        return bad("must not contain '/', '\\\\' or NUL");
    }
    if name.chars().any(char::is_control) {
        // A newline would let the name forge a line of the marker the agent reads.
        return bad("must not contain control characters");
    }
    if name == "." || name.contains("..") {
        return bad("must not contain '..'");
    }
    Ok(())
}

/// The protocol entry of an indexed upload.
pub fn entry_for(blobs_dir: &Path, u: &UploadRecord, deduplicated: bool) -> UploadEntry {
    let path = blobs_dir.join(&u.hash);
    UploadEntry {
        ref_id: format!("sha256:{}", u.hash),
        marker: format!(
            "[attached file: {} ({} bytes) at {}]",
            u.name,
            u.size_bytes,
            path.display()
        ),
        workspace_path: path.display().to_string(),
        size_bytes: u.size_bytes,
        deduplicated,
        name: u.name.clone(),
        mime_type: u.mime_type.clone(),
    }
}

/// Removes temp files a crash left behind.
pub fn clean_temp_files(blobs_dir: &Path) -> std::io::Result<usize> {
    let mut n = 0;
    for entry in fs::read_dir(blobs_dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            fs::remove_file(entry.path())?;
            n += 1;
        }
    }
    Ok(n)
}

/// Writes `bytes` under their hash unless that file exists; returns the hash.
pub fn store_blob(blobs_dir: &Path, bytes: &[u8]) -> std::io::Result<String> {
    let hash = hex::encode(Sha256::digest(bytes));
    store_hashed_blob(blobs_dir, &hash, bytes).map(|()| hash)
}

/// Writes `bytes`, whose SHA-256 is `hash`, unless that file exists.
pub fn store_hashed_blob(blobs_dir: &Path, hash: &str, bytes: &[u8]) -> std::io::Result<()> {
    let final_path = blobs_dir.join(hash);
    if final_path.exists() {
        return Ok(());
    }
    let tmp: PathBuf = blobs_dir.join(format!("{TEMP_PREFIX}{}", crate::util::random_id("", 8)));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &final_path)?;
        fs::File::open(blobs_dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn decoded_len_upper_bound(b64_len: usize) -> u64 {
    (b64_len as u64).div_ceil(4) * 3
}

impl Store {
    /// `session/upload`.
    pub async fn upload(
        self: &Arc<Self>,
        caller: &Caller,
        id: &SessionId,
        name: String,
        mime_type: Option<String>,
        source: UploadSource,
    ) -> Result<UploadEntry, StoreError> {
        validate_name(&name)?;
        if let Some(m) = &mime_type {
            if m.trim().is_empty() || m.len() > 255 {
                return Err(StoreError::InvalidParams("invalid mime_type".into()));
            }
        }
        self.check_owner(caller, id).await?;
        self.ensure_live_for(Some(caller), id).await?;
        let max = self.cfg.max_upload_bytes;
        if let UploadSource::Path(_) = &source {
            if !caller.local {
                return Err(StoreError::InvalidParams(
                    "path uploads are accepted over the unix socket only".into(),
                ));
            }
        }
        // Decoding, reading and hashing are CPU and disk work: off the runtime, once.
        let (bytes, hash) = tokio::task::spawn_blocking(move || load_source(source, max))
            .await
            .map_err(|_| StoreError::Internal("upload task failed".into()))??;
        let size = bytes.len() as u64;
        let existing = self.db.uploads(id).await?;
        if let Some(u) = existing.iter().find(|u| u.hash == hash) {
            return Ok(entry_for(&self.blobs_dir, u, true));
        }
        let bytes = Arc::new(bytes);
        self.write_blob(&hash, bytes.clone()).await?;
        let rec = UploadRecord {
            session_id: id.clone(),
            hash,
            name,
            mime_type,
            size_bytes: size,
            created_at: now_rfc3339(),
        };
        self.index_upload(caller, rec, bytes).await
    }

    /// Indexes stored bytes in a session. A delete of another session that
    /// referenced the same bytes may have removed the file since it was written
    /// (the writer removes files nothing references right after a commit); from the
    /// commit of this index entry on, the entry references it, so it is written
    /// again if it is gone.
    pub(crate) async fn index_upload(
        &self,
        caller: &Caller,
        rec: UploadRecord,
        bytes: Arc<Vec<u8>>,
    ) -> Result<UploadEntry, StoreError> {
        let id = rec.session_id.clone();
        let entry_hash = rec.hash.clone();
        let entry = entry_for(&self.blobs_dir, &rec, false);
        let e2 = entry.clone();
        self.apply(&id, |e| e.add_upload(caller, rec, e2)).await?;
        self.write_blob(&entry_hash, bytes).await?;
        Ok(entry)
    }

    /// Stores the bytes under their (already computed) hash unless that file exists.
    pub(crate) async fn write_blob(
        &self,
        hash: &str,
        bytes: Arc<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let dir = self.blobs_dir.clone();
        let hash = hash.to_owned();
        tokio::task::spawn_blocking(move || store_hashed_blob(&dir, &hash, &bytes))
            .await
            .map_err(|_| StoreError::Internal("upload task failed".into()))?
            .map_err(|e| StoreError::Internal(format!("cannot store upload: {e}")))?;
        Ok(())
    }

    /// `session/uploads`.
    pub async fn uploads(&self, id: &SessionId) -> Result<Vec<UploadEntry>, StoreError> {
        if !self.sessions.contains_key(id) && self.db.get_session(id).await?.is_none() {
            return Err(StoreError::NotFound(id.clone()));
        }
        Ok(self
            .db
            .uploads(id)
            .await?
            .iter()
            .map(|u| entry_for(&self.blobs_dir, u, false))
            .collect())
    }
}

/// The bytes of an upload and their SHA-256 (hex), at most `max` bytes of them.
fn load_source(source: UploadSource, max: u64) -> Result<(Vec<u8>, String), StoreError> {
    let bytes = match source {
        UploadSource::Base64(b64) => {
            // Cheap bound first, then the exact size after decoding.
            if decoded_len_upper_bound(b64.len()) > max + 3 {
                return Err(StoreError::UploadTooLarge(max));
            }
            base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|_| StoreError::InvalidParams("data_b64 is not valid base64".into()))?
        }
        UploadSource::Path(p) => read_path(Path::new(&p), max)?,
    };
    if bytes.len() as u64 > max {
        return Err(StoreError::UploadTooLarge(max));
    }
    let hash = hex::encode(Sha256::digest(&bytes));
    Ok((bytes, hash))
}

/// Reads a local file for an upload without ever blocking or reading without bound:
/// opened non-blocking (a FIFO or device swapped in after any check cannot hang the
/// open), checked as a regular file on the opened descriptor (fstat, not the path),
/// and read up to `max + 1` bytes (a file that lies about its size, or grows while
/// it is read, is refused once past the cap).
fn read_path(path: &Path, max: u64) -> Result<Vec<u8>, StoreError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    if !path.is_absolute() {
        return Err(StoreError::InvalidParams("path must be absolute".into()));
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|_| StoreError::InvalidParams("path does not name a readable file".into()))?;
    let meta = file
        .metadata()
        .map_err(|_| StoreError::InvalidParams("path cannot be read".into()))?;
    if !meta.is_file() {
        return Err(StoreError::InvalidParams(
            "path is not a regular file".into(),
        ));
    }
    if meta.len() > max {
        return Err(StoreError::UploadTooLarge(max));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // Whole blocks, not `max + 1` exactly: some files (pagemap) only read in
    // multiples of their record size. At most one block past the cap is read.
    let mut block = vec![0u8; 64 * 1024];
    let mut file = file;
    loop {
        let n = match file.read(&mut block) {
            Ok(0) => return Ok(bytes),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(StoreError::InvalidParams("path cannot be read".into())),
        };
        if (bytes.len() + n) as u64 > max {
            return Err(StoreError::UploadTooLarge(max));
        }
        bytes.extend_from_slice(&block[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        for ok in ["a.txt", "report final.pdf", "x"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(256);
        for bad in [
            "",
            "a/b",
            "a\\b",
            "..",
            "a..b",
            "nul\0",
            "new\nline",
            "esc\u{1b}[1m",
            long.as_str(),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // A blocking open would wait for a writer forever: run it on a thread.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(read_path(&fifo, 1024));
        });
        let r = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("read_path returned");
        assert!(matches!(r, Err(StoreError::InvalidParams(m)) if m.contains("regular file")));
    }

    #[test]
    fn a_path_is_read_up_to_the_cap_only() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        fs::write(&f, vec![1u8; 100]).unwrap();
        assert_eq!(read_path(&f, 100).unwrap().len(), 100);
        assert!(matches!(
            read_path(&f, 99),
            Err(StoreError::UploadTooLarge(99))
        ));
        let (bytes, hash) = load_source(UploadSource::Path(f.display().to_string()), 100).unwrap();
        assert_eq!(hash, hex::encode(Sha256::digest(&bytes)));
        assert!(matches!(
            read_path(Path::new("relative"), 100),
            Err(StoreError::InvalidParams(_))
        ));
    }

    #[test]
    fn blobs_are_content_addressed_and_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let h1 = store_blob(dir.path(), b"hello").unwrap();
        let h2 = store_blob(dir.path(), b"hello").unwrap();
        assert_eq!(h1, h2);
        assert_eq!(h1, hex::encode(Sha256::digest(b"hello")));
        assert_eq!(fs::read(dir.path().join(&h1)).unwrap(), b"hello");
        fs::write(dir.path().join(".tmp-leftover"), b"x").unwrap();
        assert_eq!(clean_temp_files(dir.path()).unwrap(), 1);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
