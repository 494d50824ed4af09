//! A minimal WebSocket client written out by hand (RFC 6455 text frames over the
//! daemon's Unix socket or its TCP WebSocket), for tests and benchmarks that need a client the SDK does
//! not model: one that reads only when told to, or one that subscribes and then
//! never reads again. jsonrpsee's client, under the SDK, reads the socket eagerly.

use serde_json::{json, Value};
use sessiond_client::EventEnvelope;
use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

/// The socket under a [`RawWs`].
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How long a raw client waits for one message before failing.
const WAIT: Duration = Duration::from_secs(30);

pub struct RawWs {
    stream: Box<dyn Io>,
    next_id: u64,
    /// Notifications read while waiting for a reply.
    pending: VecDeque<Value>,
    mask_seed: u32,
}

impl RawWs {
    /// Connects to the Unix socket and runs the upgrade handshake.
    pub async fn connect(socket: &Path) -> anyhow::Result<RawWs> {
        let stream = UnixStream::connect(socket).await?;
        RawWs::handshake(Box::new(stream), "localhost", "").await
    }

    /// Connects to the TCP WebSocket at `addr` with `token`.
    pub async fn connect_tcp(addr: &str, token: &str) -> anyhow::Result<RawWs> {
        let stream = TcpStream::connect(addr).await?;
        let auth = format!("Authorization: Bearer {token}\r\n");
        RawWs::handshake(Box::new(stream), addr, &auth).await
    }

    async fn handshake(mut stream: Box<dyn Io>, host: &str, extra: &str) -> anyhow::Result<RawWs> {
        let req = format!(
            "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: c2Vzc2lvbmQtcmF3LXdzIQ==\r\n\
             Sec-WebSocket-Version: 13\r\n{extra}\r\n"
        );
        stream.write_all(req.as_bytes()).await?;
        // Read the response head byte by byte, so nothing after it is consumed.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let b = tokio::time::timeout(WAIT, stream.read_u8()).await??;
            head.push(b);
            anyhow::ensure!(head.len() < 16 * 1024, "response head too long");
        }
        let head = String::from_utf8_lossy(&head);
        anyhow::ensure!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
        Ok(RawWs {
            stream,
            next_id: 1,
            pending: VecDeque::new(),
            mask_seed: 0x5eed_1234,
        })
    }

    /// Sends raw bytes (frames the caller made).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// Sends one text message (masked, as a client must).
    pub async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        let payload = text.as_bytes();
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(0x81);
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= u16::MAX as usize => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        self.mask_seed = self
            .mask_seed
            .wrapping_mul(1_664_525)
            .wrapping_add(1_013_904_223);
        let mask = self.mask_seed.to_be_bytes();
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).await?;
        Ok(())
    }

    /// Reads one whole text message (joining fragments, answering pings).
    pub async fn read_text(&mut self) -> anyhow::Result<String> {
        let mut message = Vec::new();
        loop {
            let mut hdr = [0u8; 2];
            tokio::time::timeout(WAIT, self.stream.read_exact(&mut hdr)).await??;
            let fin = hdr[0] & 0x80 != 0;
            let opcode = hdr[0] & 0x0f;
            let masked = hdr[1] & 0x80 != 0;
            let len = match hdr[1] & 0x7f {
                126 => self.stream.read_u16().await? as usize,
                127 => self.stream.read_u64().await? as usize,
                n => n as usize,
            };
            let mut mask = [0u8; 4];
            if masked {
                self.stream.read_exact(&mut mask).await?;
            }
            let mut payload = vec![0u8; len];
            self.stream.read_exact(&mut payload).await?;
            if masked {
                for (i, b) in payload.iter_mut().enumerate() {
                    *b ^= mask[i % 4];
                }
            }
            match opcode {
                0x0..=0x2 => {
                    message.extend_from_slice(&payload);
                    if fin {
                        return Ok(String::from_utf8(message)?);
                    }
                }
                0x8 => anyhow::bail!("the daemon closed the websocket"),
                0x9 => self.pong(&payload).await?,
                _ => {}
            }
        }
    }

    async fn pong(&mut self, payload: &[u8]) -> anyhow::Result<()> {
        let mut frame = vec![0x8a, 0x80 | payload.len() as u8, 0, 0, 0, 0];
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame).await?;
        Ok(())
    }

    /// Reads one JSON message.
    pub async fn read_json(&mut self) -> anyhow::Result<Value> {
        Ok(serde_json::from_str(&self.read_text().await?)?)
    }

    /// One JSON-RPC call: the whole reply (`result` or `error`). Notifications that
    /// arrive meanwhile are kept for [`RawWs::next_event`].
    pub async fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_text(&req.to_string()).await?;
        loop {
            let msg = self.read_json().await?;
            if msg.get("id") == Some(&json!(id)) {
                return Ok(msg);
            }
            self.pending.push_back(msg);
        }
    }

    /// A call that must succeed: its `result`.
    pub async fn ok(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let reply = self.call(method, params).await?;
        match reply.get("result") {
            Some(r) => Ok(r.clone()),
            None => anyhow::bail!("{method} failed: {reply}"),
        }
    }

    /// `session/subscribe`; returns the subscription id.
    pub async fn subscribe(
        &mut self,
        session_id: &str,
        since_seq: Option<u64>,
    ) -> anyhow::Result<Value> {
        let mut params = json!({"session_id": session_id});
        if let Some(s) = since_seq {
            params["since_seq"] = json!(s);
        }
        self.ok("session/subscribe", params).await
    }

    /// The next `session/update` notification's envelope.
    pub async fn next_event(&mut self) -> anyhow::Result<EventEnvelope> {
        loop {
            let msg = match self.pending.pop_front() {
                Some(m) => m,
                None => self.read_json().await?,
            };
            if msg.get("method") == Some(&json!("session/update")) {
                // The replay boundary (not a session event) is skipped here.
                if msg["params"]["result"]["event"]["type"] == "replay_complete" {
                    continue;
                }
                return Ok(serde_json::from_value(msg["params"]["result"].clone())?);
            }
        }
    }
}
