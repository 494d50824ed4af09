//! Resolution of the default socket, data directory and ws token paths from the environment.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::Config;

/// Reads one environment variable; empty values count as unset.
pub(crate) type EnvOs<'a> = &'a dyn Fn(&str) -> Option<OsString>;

fn process_env(key: &str) -> Option<OsString> {
    std::env::var_os(key)
}

fn non_empty(env: EnvOs<'_>, key: &str) -> Option<OsString> {
    env(key).filter(|v| !v.is_empty())
}

/// The effective user id, which names the per-user fallback directory in `/tmp`.
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// `/tmp/sessiond-$UID`, the fallback when the XDG variables and `HOME` are unset.
fn tmp_dir() -> PathBuf {
    PathBuf::from(format!("/tmp/sessiond-{}", euid()))
}

impl Config {
    /// The socket to listen on and connect to: `socket` when set, else
    /// `$XDG_RUNTIME_DIR/sessiond/sessiond.sock`, else `/tmp/sessiond-$UID/sessiond.sock`.
    pub fn socket_path(&self) -> PathBuf {
        self.socket_path_with(&process_env)
    }

    pub(crate) fn socket_path_with(&self, env: EnvOs<'_>) -> PathBuf {
        if let Some(socket) = &self.socket {
            return socket.clone();
        }
        match non_empty(env, "XDG_RUNTIME_DIR") {
            Some(runtime) => PathBuf::from(runtime)
                .join("sessiond")
                .join("sessiond.sock"),
            None => tmp_dir().join("sessiond.sock"),
        }
    }

    /// The data directory: `data_dir` when set, else `$XDG_DATA_HOME/sessiond`, else
    /// `$HOME/.local/share/sessiond`, else `/tmp/sessiond-$UID/data`.
    pub fn data_dir_path(&self) -> PathBuf {
        self.data_dir_path_with(&process_env)
    }

    pub(crate) fn data_dir_path_with(&self, env: EnvOs<'_>) -> PathBuf {
        if let Some(dir) = &self.data_dir {
            return dir.clone();
        }
        if let Some(data_home) = non_empty(env, "XDG_DATA_HOME") {
            return PathBuf::from(data_home).join("sessiond");
        }
        match non_empty(env, "HOME") {
            Some(home) => PathBuf::from(home).join(".local/share/sessiond"),
            None => tmp_dir().join("data"),
        }
    }

    /// The ws bearer token file: `ws.token_file` when set, else `<data_dir>/ws.token`.
    pub fn ws_token_path(&self) -> PathBuf {
        self.ws_token_path_with(&process_env)
    }

    pub(crate) fn ws_token_path_with(&self, env: EnvOs<'_>) -> PathBuf {
        match &self.ws.token_file {
            Some(file) => file.clone(),
            None => self.data_dir_path_with(env).join("ws.token"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn socket_path_prefers_the_configured_socket() {
        let config = Config {
            socket: Some(PathBuf::from("/run/custom.sock")),
            ..Config::default()
        };
        let env = env_of(&[("XDG_RUNTIME_DIR", "/run/user/1000")]);
        assert_eq!(
            config.socket_path_with(&env),
            PathBuf::from("/run/custom.sock")
        );
        assert_eq!(config.socket_path(), PathBuf::from("/run/custom.sock"));
    }

    #[test]
    fn socket_path_falls_back_to_runtime_dir_then_tmp() {
        let config = Config::default();
        let env = env_of(&[("XDG_RUNTIME_DIR", "/run/user/1000")]);
        assert_eq!(
            config.socket_path_with(&env),
            PathBuf::from("/run/user/1000/sessiond/sessiond.sock")
        );
        let empty = env_of(&[("XDG_RUNTIME_DIR", "")]);
        assert_eq!(
            config.socket_path_with(&empty),
            PathBuf::from(format!("/tmp/sessiond-{}/sessiond.sock", euid()))
        );
    }

    #[test]
    fn data_dir_falls_back_to_xdg_data_home_then_home() {
        let config = Config::default();
        let xdg = env_of(&[("XDG_DATA_HOME", "/x/data"), ("HOME", "/home/u")]);
        assert_eq!(
            config.data_dir_path_with(&xdg),
            PathBuf::from("/x/data/sessiond")
        );
        let home = env_of(&[("HOME", "/home/u")]);
        assert_eq!(
            config.data_dir_path_with(&home),
            PathBuf::from("/home/u/.local/share/sessiond")
        );
        assert_eq!(
            config.ws_token_path_with(&home),
            PathBuf::from("/home/u/.local/share/sessiond/ws.token")
        );
        let configured = Config {
            data_dir: Some(PathBuf::from("/srv/sessiond")),
            ..Config::default()
        };
        assert_eq!(
            configured.ws_token_path_with(&home),
            PathBuf::from("/srv/sessiond/ws.token")
        );
    }

    #[test]
    fn token_file_overrides_the_data_dir_default() {
        let mut config = Config::default();
        config.ws.token_file = Some(PathBuf::from("/etc/sessiond/token"));
        assert_eq!(config.ws_token_path(), PathBuf::from("/etc/sessiond/token"));
    }
}
