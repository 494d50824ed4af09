//! Transports: the WebSocket handshake over a Unix socket or a TCP connection, and the
//! jsonrpsee async client on top of it.

use crate::error::{Error, Result};
use jsonrpsee::client_transport::ws::{HeaderMap, HeaderValue, WsTransportClientBuilder};
use jsonrpsee::core::client::ClientBuilder;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::{Host, Url};

/// The jsonrpsee client the SDK drives (its default middleware stack).
pub type RpcClient = jsonrpsee::core::client::Client;

/// The request timeout handed to jsonrpsee: effectively none. The SDK applies
/// [`ConnectOptions::call_timeout`] itself, so that `prompt` with `wait: true` can wait
/// for as long as the turn runs.
pub(crate) const JSONRPSEE_REQUEST_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// How a [`crate::Client`] connects and calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Limit for connecting and for each call (except `prompt` with `wait: true`).
    /// `Duration::MAX` disables it. Default 30 s.
    pub call_timeout: Duration,
    /// Events buffered per subscription before the client drops it as lagging
    /// ([`Error::Lagged`](crate::Error::Lagged)). At least 1. Default 65536.
    pub subscription_buffer: usize,
    /// Largest WebSocket message sent or received, in bytes. Default 64 MiB.
    pub max_message_bytes: u32,
}

impl ConnectOptions {
    /// Default `call_timeout`.
    pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default `subscription_buffer`.
    pub const DEFAULT_SUBSCRIPTION_BUFFER: usize = 65536;
    /// Default `max_message_bytes`.
    pub const DEFAULT_MAX_MESSAGE_BYTES: u32 = 64 * 1024 * 1024;
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            call_timeout: Self::DEFAULT_CALL_TIMEOUT,
            subscription_buffer: Self::DEFAULT_SUBSCRIPTION_BUFFER,
            max_message_bytes: Self::DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// Where a client connects. Kept by the client so that it can dial again.
#[derive(Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// The daemon's Unix socket.
    Unix(PathBuf),
    /// The daemon's TCP WebSocket, with its bearer token.
    Ws { url: Url, token: String },
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => f.debug_tuple("Unix").field(path).finish(),
            Endpoint::Ws { url, .. } => f
                .debug_struct("Ws")
                .field("url", &url.as_str())
                .field("token", &"<redacted>")
                .finish(),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
            Endpoint::Ws { url, .. } => write!(f, "{url}"),
        }
    }
}

impl Endpoint {
    /// A Unix socket endpoint.
    pub fn unix(path: impl AsRef<Path>) -> Endpoint {
        Endpoint::Unix(path.as_ref().to_path_buf())
    }

    /// A TCP WebSocket endpoint: `url` must be `ws://host:port/...`; the token is sent
    /// as `Authorization: Bearer <token>` at the upgrade, never in the URL.
    pub fn ws(url: &str, token: &str) -> Result<Endpoint> {
        let url = Url::parse(url)?;
        match url.scheme() {
            "ws" => {}
            "wss" => {
                return Err(Error::InvalidInput(
                    "wss:// is not supported; sessiond serves plain ws on loopback".into(),
                ))
            }
            other => {
                return Err(Error::InvalidInput(format!(
                    "unsupported url scheme `{other}`, expected ws://"
                )))
            }
        }
        if url.host().is_none() {
            return Err(Error::InvalidInput("url has no host".into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::InvalidInput(
                "url must not carry credentials; pass the token separately".into(),
            ));
        }
        if token.is_empty() {
            return Err(Error::InvalidInput("empty token".into()));
        }
        bearer_header(token)?;
        Ok(Endpoint::Ws {
            url,
            token: token.to_owned(),
        })
    }

    /// Dials the endpoint and runs the WebSocket handshake, all within
    /// `opts.call_timeout`, and starts the jsonrpsee client on the connection.
    pub(crate) async fn open(&self, opts: &ConnectOptions) -> Result<RpcClient> {
        match tokio::time::timeout(opts.call_timeout, self.open_inner(opts)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout),
        }
    }

    async fn open_inner(&self, opts: &ConnectOptions) -> Result<RpcClient> {
        let ws = WsTransportClientBuilder::default()
            .max_request_size(opts.max_message_bytes)
            .max_response_size(opts.max_message_bytes)
            .connection_timeout(opts.call_timeout);
        match self {
            Endpoint::Unix(path) => {
                crate::trust::check_socket_dir(path)?;
                let stream = tokio::net::UnixStream::connect(path).await?;
                crate::trust::check_peer(&stream)?;
                let url = Url::parse("ws://localhost/")?;
                let (tx, rx) = ws.build_with_stream(url, stream).await?;
                Ok(rpc_client(opts, tx, rx))
            }
            Endpoint::Ws { url, token } => {
                let port = url
                    .port_or_known_default()
                    .ok_or_else(|| Error::InvalidInput("url has no port".into()))?;
                // Dial ourselves (rather than `build(url)`) so that a redirect is an
                // error and the token never follows one to another host.
                let stream = match url.host() {
                    Some(Host::Domain(d)) => tokio::net::TcpStream::connect((d, port)).await?,
                    Some(Host::Ipv4(ip)) => tokio::net::TcpStream::connect((ip, port)).await?,
                    Some(Host::Ipv6(ip)) => tokio::net::TcpStream::connect((ip, port)).await?,
                    None => return Err(Error::InvalidInput("url has no host".into())),
                };
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!("set_nodelay failed: {e}");
                }
                let mut headers = HeaderMap::new();
                headers.insert("authorization", bearer_header(token)?);
                let (tx, rx) = ws
                    .set_headers(headers)
                    .build_with_stream(url.clone(), stream)
                    .await?;
                Ok(rpc_client(opts, tx, rx))
            }
        }
    }
}

fn bearer_header(token: &str) -> Result<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Error::InvalidInput("token is not a valid header value".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

fn rpc_client<S, R>(opts: &ConnectOptions, sender: S, receiver: R) -> RpcClient
where
    S: jsonrpsee::core::client::TransportSenderT + Send,
    R: jsonrpsee::core::client::TransportReceiverT + Send,
{
    ClientBuilder::default()
        .request_timeout(JSONRPSEE_REQUEST_TIMEOUT)
        .max_buffer_capacity_per_subscription(opts.subscription_buffer.max(1))
        .build_with_tokio(sender, receiver)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_values() {
        let o = ConnectOptions::default();
        assert_eq!(o.call_timeout, Duration::from_secs(30));
        assert_eq!(o.subscription_buffer, 65536);
        assert_eq!(o.max_message_bytes, 64 * 1024 * 1024);
    }

    #[test]
    fn ws_endpoint_accepts_ws_urls_only() {
        assert!(Endpoint::ws("ws://127.0.0.1:7777/", "t").is_ok());
        assert!(matches!(
            Endpoint::ws("wss://127.0.0.1:7777/", "t"),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            Endpoint::ws("http://127.0.0.1:7777/", "t"),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            Endpoint::ws("not a url", "t"),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            Endpoint::ws("ws://u:p@127.0.0.1:7777/", "t"),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn ws_endpoint_rejects_unusable_tokens() {
        assert!(matches!(
            Endpoint::ws("ws://127.0.0.1:7777/", ""),
            Err(Error::InvalidInput(_))
        ));
        let err = Endpoint::ws("ws://127.0.0.1:7777/", "bad\ntoken").unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)));
        assert!(!err.to_string().contains("bad"), "the token leaked: {err}");
    }

    #[test]
    fn endpoint_debug_never_shows_the_token() {
        let ep = Endpoint::ws("ws://127.0.0.1:7777/", "s3cr3t-token").unwrap();
        let dbg = format!("{ep:?}");
        assert!(!dbg.contains("s3cr3t-token"), "{dbg}");
        assert!(dbg.contains("127.0.0.1:7777"), "{dbg}");
        assert!(!ep.to_string().contains("s3cr3t-token"));
    }

    #[test]
    fn bearer_header_is_sensitive() {
        let v = bearer_header("abc").unwrap();
        assert_eq!(v.to_str().unwrap(), "Bearer abc");
        assert!(v.is_sensitive());
    }
}
