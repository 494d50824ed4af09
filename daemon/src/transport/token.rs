//! The TCP WebSocket's bearer token: 256 random bits as hex, kept in a file only
//! the daemon's user can read. Generated on first use; never logged.

use anyhow::{bail, Context};
use rand::RngCore;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Fewer characters than this cannot carry 128 bits of hex.
const MIN_CHARS: usize = 32;

/// Reads the token from `path`, creating the file with a fresh token when it is
/// missing. A file that others can read or write, or that holds a short token,
/// stops the daemon rather than weakening the transport.
pub fn load_or_create(path: &Path) -> anyhow::Result<String> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            if !meta.is_file() {
                bail!("ws token file {} is not a regular file", path.display());
            }
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                bail!(
                    "ws token file {} is accessible by other users (mode {mode:o}); \
                     run chmod 600 on it",
                    path.display()
                );
            }
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read ws token file {}", path.display()))?;
            let token = text.trim();
            if token.len() < MIN_CHARS || token.chars().any(|c| c.is_whitespace()) {
                bail!(
                    "ws token file {} must hold one token of at least {MIN_CHARS} characters",
                    path.display()
                );
            }
            Ok(token.to_string())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(e) => Err(e).with_context(|| format!("cannot inspect {}", path.display())),
    }
}

fn create(path: &Path) -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create ws token file {}", path.display()))?;
    file.write_all(token.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    tracing::info!(path = %path.display(), "generated a new ws token");
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_gets_a_private_256_bit_token_that_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("ws.token");
        let token = load_or_create(&path).unwrap();
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create(&path).unwrap(), token);
        let other = dir.path().join("other.token");
        assert_ne!(load_or_create(&other).unwrap(), token);
    }

    #[test]
    fn loose_permissions_short_tokens_and_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ws.token");
        std::fs::write(&path, "0123456789abcdef0123456789abcdef\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        assert!(!e.contains("0123456789abcdef"), "{e}");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            load_or_create(&path).unwrap(),
            "0123456789abcdef0123456789abcdef"
        );

        std::fs::write(&path, "short\n").unwrap();
        assert!(load_or_create(&path).is_err());
        assert!(load_or_create(dir.path()).is_err());
    }
}
