//! TUI identity: ids issued by the daemon and signed with HMAC-SHA256 under a secret
//! kept 0600 in the data directory, so a reconnecting TUI can prove who it is.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

type HmacSha256 = Hmac<Sha256>;

const SECRET_FILE: &str = "tui.secret";

/// Signs and verifies TUI ids.
pub struct Identity {
    secret: Vec<u8>,
    daemon_id: String,
}

impl Identity {
    /// Loads the secret from `data_dir`, creating it (0600) on first start.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Identity> {
        let path = data_dir.join(SECRET_FILE);
        let secret = match fs::read(&path) {
            Ok(bytes) if bytes.len() >= 32 => {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
                bytes
            }
            Ok(_) => anyhow::bail!("tui secret file {} is too short", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = vec![0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)?;
                f.write_all(&bytes)?;
                f.sync_all()?;
                bytes
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Identity::from_secret(secret))
    }

    /// An identity with a given secret (tests and benches).
    pub fn from_secret(secret: Vec<u8>) -> Identity {
        let daemon_id = format!("d_{}", &Self::mac_hex(&secret, b"sessiond daemon id")[..24]);
        Identity { secret, daemon_id }
    }

    fn mac_hex(secret: &[u8], msg: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(secret).expect("hmac takes any key length");
        mac.update(msg);
        hex::encode(mac.finalize().into_bytes())
    }

    /// A stable id of this daemon's data directory.
    pub fn daemon_id(&self) -> &str {
        &self.daemon_id
    }

    /// The signature of a TUI id.
    pub fn sign(&self, tui_id: &str) -> String {
        Self::mac_hex(&self.secret, tui_id.as_bytes())
    }

    /// Checks a signature in constant time.
    pub fn verify(&self, tui_id: &str, sig_hex: &str) -> bool {
        let Ok(sig) = hex::decode(sig_hex) else {
            return false;
        };
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("hmac takes any key length");
        mac.update(tui_id.as_bytes());
        mac.verify_slice(&sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_verifies_and_forgery_fails() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::load_or_create(dir.path()).unwrap();
        let sig = id.sign("tui_abc");
        assert!(id.verify("tui_abc", &sig));
        assert!(!id.verify("tui_abd", &sig));
        assert!(!id.verify("tui_abc", "00"));
        assert!(!id.verify("tui_abc", "not hex"));
        let mode = fs::metadata(dir.path().join(SECRET_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // The same data dir gives the same secret.
        let again = Identity::load_or_create(dir.path()).unwrap();
        assert!(again.verify("tui_abc", &sig));
        assert_eq!(again.daemon_id(), id.daemon_id());
    }
}
