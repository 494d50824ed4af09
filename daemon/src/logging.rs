//! The daemon's log: a filter from `SESSIOND_LOG`, else `RUST_LOG`, else the `log`
//! key, that a reload can change at run time; text or JSON lines (`log_format`); on
//! stderr, or in a file bounded in size (rotated once to `FILE.1`).

use sessiond_config::Config;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// A log file is rotated when it grows past this.
pub const MAX_LOG_BYTES: u64 = 8 * 1024 * 1024;

static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// The filter directive in force: the environment wins over the configuration.
pub fn directive(cfg: &Config) -> String {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    env("SESSIOND_LOG")
        .or_else(|| env("RUST_LOG"))
        .unwrap_or_else(|| cfg.log.clone())
}

/// Installs the daemon's subscriber (once per process).
pub fn init(cfg: &Config, file: Option<&Path>) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(directive(cfg)).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let json = cfg.log_format == "json";
    let ansi = file.is_none()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && io::IsTerminal::is_terminal(&io::stderr());
    let writer = match file {
        Some(p) => Writer::File(Mutex::new(BoundedFile::open(p, MAX_LOG_BYTES, true)?)),
        None => Writer::Stderr,
    };
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry
            .with(tracing_subscriber::fmt::layer().json().with_writer(writer))
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(writer),
            )
            .try_init()
    };
    let _ = FILTER.set(handle);
    Ok(())
}

/// Replaces the filter at run time; a directive that does not parse is refused.
pub fn set_filter(directive: &str) -> Result<(), String> {
    let filter = EnvFilter::try_new(directive).map_err(|e| format!("log: {e}"))?;
    match FILTER.get() {
        Some(h) => h.reload(filter).map_err(|e| format!("log: {e}")),
        None => Ok(()),
    }
}

/// Whether a directive parses (checked before anything of a reload is applied).
pub fn check_filter(directive: &str) -> Result<(), String> {
    EnvFilter::try_new(directive)
        .map(|_| ())
        .map_err(|e| format!("log: {e}"))
}

/// Where log lines go.
enum Writer {
    Stderr,
    File(Mutex<BoundedFile>),
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Writer {
    type Writer = LineWriter<'a>;
    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(self)
    }
}

/// Writes one formatted event.
pub struct LineWriter<'a>(&'a Writer);

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.0 {
            Writer::Stderr => io::stderr().write(buf),
            Writer::File(f) => match f.lock() {
                Ok(mut f) => f.write(buf),
                Err(p) => p.into_inner().write(buf),
            },
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An append-only file that moves itself to `PATH.1` when it passes its bound, so
/// the log takes at most twice the bound on disk. Stderr follows the new file (a
/// panic message lands in the log too).
pub struct BoundedFile {
    path: PathBuf,
    file: fs::File,
    size: u64,
    max: u64,
    /// Point stderr (fd 2) at the new file after a rotation (the daemon's log).
    follow_stderr: bool,
}

impl BoundedFile {
    pub fn open(path: &Path, max: u64, follow_stderr: bool) -> io::Result<BoundedFile> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        let mut f = BoundedFile {
            path: path.to_path_buf(),
            file,
            size,
            max,
            follow_stderr,
        };
        if f.size > f.max {
            f.rotate()?;
        }
        Ok(f)
    }

    fn rotate(&mut self) -> io::Result<()> {
        let mut old = self.path.as_os_str().to_owned();
        old.push(".1");
        fs::rename(&self.path, PathBuf::from(old))?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        if self.follow_stderr {
            // SAFETY: dup2 onto stderr of descriptors we own; on failure stderr stays.
            unsafe { libc::dup2(self.file.as_raw_fd(), 2) };
        }
        Ok(())
    }
}

impl Write for BoundedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.size + buf.len() as u64 > self.max && self.size > 0 {
            // A failed rotation keeps writing to the current file.
            let _ = self.rotate();
        }
        let n = self.file.write(buf)?;
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

fn open_append(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_file_stays_within_twice_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.log");
        let mut f = BoundedFile::open(&path, 1000, false).unwrap();
        let line = [b'x'; 99];
        for _ in 0..100 {
            f.write_all(&line).unwrap();
            f.write_all(b"\n").unwrap();
        }
        let now = fs::metadata(&path).unwrap().len();
        let old = fs::metadata(dir.path().join("d.log.1")).unwrap().len();
        assert!(now <= 1000 && old <= 1000, "{now} {old}");
        assert!(now > 0 && old > 0);
    }
}
