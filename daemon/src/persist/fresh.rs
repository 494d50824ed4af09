//! A fresh database, built with one fsync: the schema is written into a temporary
//! file with `synchronous = OFF` (already in WAL mode), that file is fsynced once
//! and then hard-linked into place. Opening a new file the usual way costs five
//! fsyncs or more (switching an empty file to WAL goes through a rollback journal:
//! journal, directory, journal header, database; then the schema's commit).
//!
//! Safe at every step: until the link, the database does not exist (a crash leaves
//! only a temporary file named after the process, never read); after it, the file is complete
//! (its content was fsynced first). A link never replaces a file, so a database that
//! appeared meanwhile is kept and the new one dropped. The link itself is made
//! durable by the first durable commit (SQLite syncs the directory when it creates
//! the log); losing it to a power cut before that loses nothing acknowledged.

use super::{schema, PersistError};
use rusqlite::Connection;
use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Creates the database at `path` with the current schema when no file is there;
/// returns whether it did.
pub fn create_if_missing(path: &Path) -> Result<bool, PersistError> {
    if fs::symlink_metadata(path).is_ok() {
        return Ok(false);
    }
    let io = |what: &str, e: std::io::Error| {
        PersistError::Write(format!("cannot create the database ({what}): {e}"))
    };
    let tmp = temp_path(path);
    remove_with_logs(&tmp);
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(|e| io("temporary file", e))?;
    let built = build(&tmp);
    let linked = built.and_then(|()| {
        fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| io("fsync", e))?;
        match fs::hard_link(&tmp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            // A file system without hard links: an empty private file, which the
            // caller opens and fills the usual way (more fsyncs, same result).
            Err(_) => match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
            {
                Ok(_) => Ok(false),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(io("create", e)),
            },
        }
    });
    remove_with_logs(&tmp);
    linked
}

/// Writes the schema into `tmp`; closing the only connection checkpoints the log
/// into the file and removes the log.
fn build(tmp: &Path) -> Result<(), PersistError> {
    let mut conn = Connection::open(tmp)?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    schema::migrate(&mut conn)?;
    // The agent process registry's table too, so that its first open writes nothing.
    conn.execute_batch(crate::agent::process::REGISTRY_TABLE)?;
    conn.close().map_err(|(_, e)| e)?;
    Ok(())
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.new", std::process::id()))
}

fn remove_with_logs(tmp: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = tmp.as_os_str().to_owned();
        p.push(suffix);
        let _ = fs::remove_file(PathBuf::from(p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_fresh_database_has_the_schema_in_wal_mode_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        assert!(create_if_missing(&path).unwrap());
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::SCHEMA_VERSION);
        drop(conn);
        // Nothing but the database (and SQLite's own files) is left in the directory.
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("d.db"))
            .collect();
        names.sort();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn an_existing_database_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        fs::write(&path, b"").unwrap();
        assert!(!create_if_missing(&path).unwrap());
        assert_eq!(fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn a_leftover_temporary_file_of_the_same_pid_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        let tmp = temp_path(&path);
        fs::write(&tmp, b"garbage from a crash").unwrap();
        assert!(create_if_missing(&path).unwrap());
        assert!(!tmp.exists());
        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::SCHEMA_VERSION);
    }
}
