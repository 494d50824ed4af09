//! TUI identity: ids issued by the daemon and signed with HMAC-SHA256 under a secret
//! kept 0600 in the data directory, so a reconnecting TUI can prove who it is.
//!
//! A fresh data directory gets its secret on first use (the first `initialize`),
//! not at start: the start does not wait for its fsync. The secret is durable
//! (written to a temporary file, fsynced, linked into place, directory fsynced)
//! before any signature made with it leaves the daemon, so a client never holds a
//! signature that a restart, even after a power loss, would refuse.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

type HmacSha256 = Hmac<Sha256>;

pub const SECRET_FILE: &str = "tui.secret";
const SECRET_LEN: usize = 32;

/// Signs and verifies TUI ids.
pub struct Identity {
    /// Where the secret is created when it does not exist yet.
    data_dir: Option<PathBuf>,
    keys: Mutex<Option<Arc<Keys>>>,
}

struct Keys {
    secret: Vec<u8>,
    daemon_id: String,
}

impl Identity {
    /// Loads the secret from `data_dir` when it exists; a missing one is created on
    /// first use (see the module documentation).
    pub fn load(data_dir: &Path) -> anyhow::Result<Identity> {
        let path = data_dir.join(SECRET_FILE);
        let keys = match fs::read(&path) {
            Ok(bytes) if bytes.len() >= SECRET_LEN => {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
                Some(Arc::new(Keys::new(bytes)))
            }
            Ok(_) => anyhow::bail!("tui secret file {} is too short", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        Ok(Identity {
            data_dir: Some(data_dir.to_path_buf()),
            keys: Mutex::new(keys),
        })
    }

    /// Loads the secret from `data_dir`, creating it (0600) now when missing.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Identity> {
        let id = Identity::load(data_dir)?;
        id.keys().map_err(anyhow::Error::msg)?;
        Ok(id)
    }

    /// An identity with a given secret (tests and benches).
    pub fn from_secret(secret: Vec<u8>) -> Identity {
        Identity {
            data_dir: None,
            keys: Mutex::new(Some(Arc::new(Keys::new(secret)))),
        }
    }

    /// The keys, creating the secret file when this data directory has none yet.
    fn keys(&self) -> Result<Arc<Keys>, String> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = keys.as_ref() {
            return Ok(k.clone());
        }
        let dir = self
            .data_dir
            .as_deref()
            .ok_or_else(|| "no tui secret".to_owned())?;
        let secret = create_secret(dir)
            .map_err(|e| format!("cannot create the tui secret in {}: {e}", dir.display()))?;
        let k = Arc::new(Keys::new(secret));
        *keys = Some(k.clone());
        Ok(k)
    }

    /// A stable id of this daemon's data directory.
    pub fn daemon_id(&self) -> Result<String, String> {
        Ok(self.keys()?.daemon_id.clone())
    }

    /// The signature of a TUI id.
    pub fn sign(&self, tui_id: &str) -> Result<String, String> {
        Ok(mac_hex(&self.keys()?.secret, tui_id.as_bytes()))
    }

    /// Checks a signature in constant time.
    pub fn verify(&self, tui_id: &str, sig_hex: &str) -> Result<bool, String> {
        let keys = self.keys()?;
        let Ok(sig) = hex::decode(sig_hex) else {
            return Ok(false);
        };
        let mut mac = HmacSha256::new_from_slice(&keys.secret).expect("hmac takes any key length");
        mac.update(tui_id.as_bytes());
        Ok(mac.verify_slice(&sig).is_ok())
    }
}

impl Keys {
    fn new(secret: Vec<u8>) -> Keys {
        let daemon_id = format!("d_{}", &mac_hex(&secret, b"sessiond daemon id")[..24]);
        Keys { secret, daemon_id }
    }
}

fn mac_hex(secret: &[u8], msg: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("hmac takes any key length");
    mac.update(msg);
    hex::encode(mac.finalize().into_bytes())
}

/// Writes a new secret durably and returns it; when another process created the
/// file first, returns that one instead.
fn create_secret(dir: &Path) -> std::io::Result<Vec<u8>> {
    let path = dir.join(SECRET_FILE);
    let tmp = dir.join(format!(".{SECRET_FILE}.{}.tmp", std::process::id()));
    let mut bytes = vec![0u8; SECRET_LEN];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    drop(f);
    // A hard link never replaces an existing file: the first secret wins.
    let linked = fs::hard_link(&tmp, &path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            fs::File::open(dir)?.sync_all()?;
            Ok(bytes)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let theirs = fs::read(&path)?;
            if theirs.len() < SECRET_LEN {
                return Err(std::io::Error::other("the tui secret file is too short"));
            }
            Ok(theirs)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn signature_verifies_and_forgery_fails() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::load_or_create(dir.path()).unwrap();
        let sig = id.sign("tui_abc").unwrap();
        assert!(id.verify("tui_abc", &sig).unwrap());
        assert!(!id.verify("tui_abd", &sig).unwrap());
        assert!(!id.verify("tui_abc", "00").unwrap());
        assert!(!id.verify("tui_abc", "not hex").unwrap());
        assert_eq!(mode(&dir.path().join(SECRET_FILE)), 0o600);
        // The same data dir gives the same secret.
        let again = Identity::load_or_create(dir.path()).unwrap();
        assert!(again.verify("tui_abc", &sig).unwrap());
        assert_eq!(again.daemon_id(), id.daemon_id());
    }

    #[test]
    fn the_secret_is_created_on_first_use_private_and_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SECRET_FILE);
        let id = Identity::load(dir.path()).unwrap();
        assert!(!path.exists(), "loading must not create the secret");
        let sig = id.sign("tui_x").unwrap();
        assert_eq!(fs::read(&path).unwrap().len(), SECRET_LEN);
        assert_eq!(mode(&path), 0o600);
        // No temporary file is left beside it.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(SECRET_FILE)]);
        // A second identity over the same directory (a restart) verifies it.
        let again = Identity::load(dir.path()).unwrap();
        assert!(again.verify("tui_x", &sig).unwrap());
        assert_eq!(again.daemon_id(), id.daemon_id());
    }

    #[test]
    fn a_secret_created_meanwhile_by_another_process_wins() {
        let dir = tempfile::tempdir().unwrap();
        let first = Identity::load(dir.path()).unwrap();
        let second = Identity::load(dir.path()).unwrap();
        let sig = first.sign("tui_y").unwrap();
        // `second` loaded before the file existed; it must adopt the file, not
        // replace it.
        assert!(second.verify("tui_y", &sig).unwrap());
    }

    #[test]
    fn a_short_secret_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(SECRET_FILE), b"short").unwrap();
        assert!(Identity::load(dir.path()).is_err());
    }
}
