//! The admission checks of the TCP WebSocket, run on the upgrade request before
//! jsonrpsee sees it: `Host` (against DNS rebinding), `Origin` (against pages in a
//! browser), then the bearer token, compared in constant time.

use http::header::{AUTHORIZATION, HOST, ORIGIN, UPGRADE};
use http::{HeaderMap, StatusCode};
use std::net::IpAddr;
use subtle::ConstantTimeEq;

/// Why an upgrade was refused: the status sent back and a reason for the log.
/// Neither ever contains the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub reason: &'static str,
}

impl Refusal {
    const fn new(status: StatusCode, reason: &'static str) -> Refusal {
        Refusal { status, reason }
    }
}

const ONLY_UPGRADES: &str = "only websocket upgrades are served over tcp";

/// What a TCP WebSocket client must present.
pub struct Gate {
    token: Vec<u8>,
    allowed_origins: Vec<String>,
    allowed_hosts: Vec<String>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("token", &"<redacted>")
            .field("allowed_origins", &self.allowed_origins)
            .field("allowed_hosts", &self.allowed_hosts)
            .finish()
    }
}

impl Gate {
    pub fn new(token: &str, allowed_origins: &[String], allowed_hosts: &[String]) -> Gate {
        Gate {
            token: token.as_bytes().to_vec(),
            allowed_origins: allowed_origins
                .iter()
                .map(|o| normalize_origin(o))
                .collect(),
            allowed_hosts: allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
        }
    }

    /// Admits or refuses a whole request: only a `GET` that asks for a WebSocket
    /// upgrade is served over TCP (a `POST` with an `Upgrade` header is plain HTTP).
    pub fn admit_request<B>(&self, req: &http::Request<B>) -> Result<(), Refusal> {
        self.admit(req.headers())?;
        if req.method() != http::Method::GET {
            return Err(Refusal::new(StatusCode::UPGRADE_REQUIRED, ONLY_UPGRADES));
        }
        Ok(())
    }

    /// Admits or refuses a request by its headers. Order matters: a request from
    /// the wrong host or origin is refused before its token is looked at.
    pub fn admit(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let host = single(headers, HOST).ok_or(Refusal::new(
            StatusCode::FORBIDDEN,
            "missing or invalid host",
        ))?;
        if !self.host_allowed(host) {
            return Err(Refusal::new(StatusCode::FORBIDDEN, "host not allowed"));
        }
        if headers.contains_key(ORIGIN) {
            let origin = single(headers, ORIGIN)
                .ok_or(Refusal::new(StatusCode::FORBIDDEN, "invalid origin"))?;
            if !self.allowed_origins.contains(&normalize_origin(origin)) {
                return Err(Refusal::new(StatusCode::FORBIDDEN, "origin not allowed"));
            }
        }
        if !single(headers, UPGRADE).is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
            return Err(Refusal::new(StatusCode::UPGRADE_REQUIRED, ONLY_UPGRADES));
        }
        let presented = single(headers, AUTHORIZATION)
            .and_then(bearer)
            .ok_or(Refusal::new(
                StatusCode::UNAUTHORIZED,
                "missing bearer token",
            ))?;
        if bool::from(presented.as_bytes().ct_eq(&self.token)) {
            Ok(())
        } else {
            Err(Refusal::new(StatusCode::UNAUTHORIZED, "wrong bearer token"))
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        if self.allowed_hosts.contains(&host) {
            return true;
        }
        let name = strip_port(&host);
        is_loopback_name(name) || self.allowed_hosts.iter().any(|h| h == name)
    }
}

/// The value of a header that appears exactly once and is visible ASCII.
fn single(headers: &HeaderMap, name: http::header::HeaderName) -> Option<&str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok().map(str::trim).filter(|v| !v.is_empty())
}

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// `host[:port]` or `[v6][:port]` without its port.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

fn is_loopback_name(name: &str) -> bool {
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Origins compare without a trailing slash and case-insensitively.
fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn gate() -> Gate {
        Gate::new(
            TOKEN,
            &["https://tui.example/".to_string()],
            &["devbox.lan".to_string()],
        )
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn upgrade(host: &str, extra: &[(&'static str, &str)]) -> HeaderMap {
        let auth = format!("Bearer {TOKEN}");
        let mut pairs = vec![("host", host), ("upgrade", "websocket")];
        pairs.push(("authorization", auth.as_str()));
        let mut h = headers(&pairs);
        for (k, v) in extra {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn loopback_hosts_with_the_token_are_admitted() {
        for host in [
            "127.0.0.1:7777",
            "127.0.0.1",
            "127.1.2.3:1",
            "localhost:80",
            "LOCALHOST",
            "[::1]:7777",
            "[::1]",
            "app.localhost:3000",
        ] {
            assert_eq!(gate().admit(&upgrade(host, &[])), Ok(()), "{host}");
        }
    }

    #[test]
    fn other_hosts_are_forbidden_unless_listed() {
        for host in [
            "evil.example",
            "evil.example:7777",
            "10.0.0.1:7777",
            "[::2]:1",
        ] {
            let r = gate().admit(&upgrade(host, &[])).unwrap_err();
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{host}");
        }
        assert_eq!(gate().admit(&upgrade("devbox.lan:7777", &[])), Ok(()));
        assert_eq!(gate().admit(&upgrade("DevBox.lan", &[])), Ok(()));
    }

    #[test]
    fn a_missing_or_doubled_host_is_forbidden() {
        let h = headers(&[("upgrade", "websocket"), ("authorization", "Bearer x")]);
        assert_eq!(gate().admit(&h).unwrap_err().status, StatusCode::FORBIDDEN);
        let mut h = upgrade("127.0.0.1", &[]);
        h.append("host", HeaderValue::from_static("evil.example"));
        assert_eq!(gate().admit(&h).unwrap_err().status, StatusCode::FORBIDDEN);
    }

    #[test]
    fn origins_must_be_listed() {
        let bad = upgrade("127.0.0.1", &[("origin", "https://evil.example")]);
        let r = gate().admit(&bad).unwrap_err();
        assert_eq!(
            (r.status, r.reason),
            (StatusCode::FORBIDDEN, "origin not allowed")
        );
        let null = upgrade("127.0.0.1", &[("origin", "null")]);
        assert_eq!(
            gate().admit(&null).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        let good = upgrade("127.0.0.1", &[("origin", "https://TUI.example")]);
        assert_eq!(gate().admit(&good), Ok(()));
        let none = Gate::new(TOKEN, &[], &[]);
        let any = upgrade("127.0.0.1", &[("origin", "http://127.0.0.1:7777")]);
        assert_eq!(none.admit(&any).unwrap_err().status, StatusCode::FORBIDDEN);
    }

    #[test]
    fn the_token_is_required_and_must_match_exactly() {
        let missing = headers(&[("host", "127.0.0.1"), ("upgrade", "websocket")]);
        assert_eq!(
            gate().admit(&missing).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        for auth in [
            "Bearer 0123456789abcdef0123456789abcdeF",
            "Bearer 0123456789abcdef0123456789abcde",
            "Bearer 0123456789abcdef0123456789abcdef0",
            "Basic 0123456789abcdef0123456789abcdef",
            "Bearer ",
            "0123456789abcdef0123456789abcdef",
        ] {
            let h = upgrade("127.0.0.1", &[("authorization", auth)]);
            let r = gate().admit(&h).unwrap_err();
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{auth}");
        }
        let lower = format!("bearer {TOKEN}");
        let h = upgrade("127.0.0.1", &[("authorization", lower.as_str())]);
        assert_eq!(gate().admit(&h), Ok(()));
    }

    #[test]
    fn plain_http_is_refused_before_the_token_is_checked() {
        let h = headers(&[("host", "127.0.0.1")]);
        assert_eq!(
            gate().admit(&h).unwrap_err().status,
            StatusCode::UPGRADE_REQUIRED
        );
    }

    #[test]
    fn only_a_get_that_asks_for_a_websocket_is_served() {
        let mut req = http::Request::new(());
        *req.headers_mut() = upgrade("127.0.0.1", &[]);
        assert_eq!(gate().admit_request(&req), Ok(()));
        *req.method_mut() = http::Method::POST;
        let r = gate().admit_request(&req).unwrap_err();
        assert_eq!(r.status, StatusCode::UPGRADE_REQUIRED);
        *req.method_mut() = http::Method::GET;
        *req.headers_mut() = upgrade("127.0.0.1", &[("upgrade", "h2c")]);
        let r = gate().admit_request(&req).unwrap_err();
        assert_eq!(r.status, StatusCode::UPGRADE_REQUIRED);
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        assert!(!format!("{:?}", gate()).contains(TOKEN));
    }
}
