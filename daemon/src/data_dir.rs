//! The data directory at rest: private to the daemon's user. A directory owned by
//! another user is refused; one this user owns but others may enter
//! is made private, and the log says so; the database files are created 0600 (a
//! fresh database is created 0600 by `persist`, and SQLite gives its `-wal` and
//! `-shm` files the mode of the database file) and loose ones are tightened.

use crate::persist::DB_FILE;
use crate::transport::peer::current_uid;
use anyhow::{bail, Context};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Makes `dir` a private directory of this user: created 0700 when missing,
/// tightened to 0700 when others may use it; refused when another user owns it or
/// it is not a directory. Returns the paths whose mode was tightened.
pub fn ensure_private_dir(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if fs::symlink_metadata(dir).is_err() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // A symlink is followed: what matters is who owns the directory it names.
    let meta = fs::metadata(dir).with_context(|| format!("cannot stat {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    check_owner(dir, &meta)?;
    let mut fixed = Vec::new();
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private", dir.display()))?;
        fixed.push(dir.to_path_buf());
    }
    Ok(fixed)
}

fn check_owner(path: &Path, meta: &fs::Metadata) -> anyhow::Result<()> {
    if meta.uid() != current_uid() {
        bail!(
            "{} is owned by uid {}, not by this user (uid {}); refusing to use it",
            path.display(),
            meta.uid(),
            current_uid()
        );
    }
    Ok(())
}

/// Tightens existing database files; returns what was tightened. A missing
/// database is left to `persist`, which creates it 0600 in one step (so that SQLite
/// creates its journal files 0600 too).
pub fn secure_db_files(data_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut fixed = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = data_dir.join(format!("{DB_FILE}{suffix}"));
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_file() {
            bail!("{} is not a regular file", path.display());
        }
        check_owner(&path, &meta)?;
        if meta.mode() & 0o077 != 0 {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot make {} private", path.display()))?;
            fixed.push(path);
        }
    }
    Ok(fixed)
}

/// Prepares the data directory, its uploads directory and database files; logs
/// every mode it had to tighten.
pub fn prepare(data_dir: &Path, blobs: &Path) -> anyhow::Result<()> {
    let mut fixed = ensure_private_dir(data_dir)?;
    fixed.extend(ensure_private_dir(blobs)?);
    fixed.extend(secure_db_files(data_dir)?);
    for path in fixed {
        tracing::warn!(
            path = %path.display(),
            "was readable or writable by other users; made private to this user"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().mode() & 0o777
    }

    #[test]
    fn a_new_data_dir_and_its_database_are_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        prepare(&dir, &dir.join("uploads")).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("uploads")), 0o700);
        let (db, _) = crate::persist::Db::open_with(
            &dir,
            &dir.join("uploads"),
            sessiond_config::Durability::Power,
        )
        .unwrap();
        assert_eq!(mode(&dir.join(DB_FILE)), 0o600);
        // The log SQLite creates takes the database's mode.
        assert_eq!(mode(&dir.join(format!("{DB_FILE}-wal"))), 0o600);
        db.close();
    }

    #[test]
    fn loose_modes_are_tightened_and_reported() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("d");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let wal = dir.join(format!("{DB_FILE}-wal"));
        fs::write(&wal, b"").unwrap();
        fs::set_permissions(&wal, fs::Permissions::from_mode(0o644)).unwrap();
        let mut fixed = ensure_private_dir(&dir).unwrap();
        fixed.extend(secure_db_files(&dir).unwrap());
        assert_eq!(fixed, vec![dir.clone(), wal.clone()]);
        assert_eq!((mode(&dir), mode(&wal)), (0o700, 0o600));
    }

    #[test]
    fn a_data_dir_of_another_user_is_refused_even_through_a_symlink() {
        let root = tempfile::tempdir().unwrap();
        let real = root.path().join("real");
        fs::create_dir(&real).unwrap();
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        ensure_private_dir(&link).unwrap();
        // Only root can give a directory to another user.
        if current_uid() == 0 {
            let foreign = root.path().join("foreign");
            fs::create_dir(&foreign).unwrap();
            std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
            let e = ensure_private_dir(&foreign).unwrap_err().to_string();
            assert!(e.contains("owned by uid 65534"), "{e}");
            let squat = root.path().join("squat");
            std::os::unix::fs::symlink(&foreign, &squat).unwrap();
            assert!(ensure_private_dir(&squat).is_err());
        }
    }
}
