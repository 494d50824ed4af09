//! Client profiles: the TUI identity (`tui_id`, `tui_sig`) a profile keeps between
//! runs, so that every terminal of the same profile owns what that profile owns.
//!
//! One small JSON file per profile, `$XDG_STATE_HOME/sessiond/profiles/NAME.json`
//! (else `$HOME/.local/state/...`, else `/tmp/sessiond-$UID/state/...`), mode 0600.

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use sessiond_client::Identity;
use sessiond_protocol::TuiId;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The profile used when none is named.
pub const DEFAULT_PROFILE: &str = "default";

/// What a profile file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredIdentity {
    pub tui_id: String,
    pub tui_sig: String,
}

/// A named profile and where its identity lives.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub path: PathBuf,
}

/// `$XDG_STATE_HOME/sessiond`, with the usual fallbacks.
pub fn state_dir() -> PathBuf {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(d) = non_empty("XDG_STATE_HOME") {
        return PathBuf::from(d).join("sessiond");
    }
    if let Some(h) = non_empty("HOME") {
        return PathBuf::from(h).join(".local/state/sessiond");
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    PathBuf::from(format!("/tmp/sessiond-{uid}/state"))
}

impl Profile {
    /// The profile `name` (default when `None`). Names are plain words.
    pub fn named(name: Option<&str>) -> anyhow::Result<Profile> {
        let name = name.unwrap_or(DEFAULT_PROFILE);
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            && !name.starts_with('.');
        if !ok {
            bail!("profile name {name:?} must be letters, digits, '-', '_' or '.'");
        }
        Ok(Profile {
            name: name.to_owned(),
            path: state_dir().join("profiles").join(format!("{name}.json")),
        })
    }

    /// The stored identity, if the profile has one. An unreadable file is an error;
    /// a missing one is `None`.
    pub fn load(&self) -> anyhow::Result<Option<Identity>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", self.path.display()))
            }
        };
        let stored: StoredIdentity = serde_json::from_str(&text)
            .with_context(|| format!("profile file {} is not valid", self.path.display()))?;
        Ok(Some(Identity {
            tui_id: TuiId(stored.tui_id),
            tui_sig: stored.tui_sig,
        }))
    }

    /// Stores the identity atomically (temp file 0600, then rename).
    pub fn save(&self, identity: &Identity) -> anyhow::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        let stored = StoredIdentity {
            tui_id: identity.tui_id.0.clone(),
            tui_sig: identity.tui_sig.clone(),
        };
        let tmp = dir.join(format!(".{}.{}.tmp", self.name, std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(serde_json::to_string_pretty(&stored)?.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_words() {
        assert!(Profile::named(Some("work-2")).is_ok());
        assert!(Profile::named(None).is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "sp ace"] {
            assert!(Profile::named(Some(bad)).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn identity_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let p = Profile {
            name: "t".into(),
            path: dir.path().join("profiles/t.json"),
        };
        assert!(p.load().unwrap().is_none());
        let id = Identity {
            tui_id: TuiId("tui_abc".into()),
            tui_sig: "sig".into(),
        };
        p.save(&id).unwrap();
        let back = p.load().unwrap().unwrap();
        assert_eq!(back.tui_id, id.tui_id);
        assert_eq!(back.tui_sig, id.tui_sig);
        let mode = std::fs::metadata(&p.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
