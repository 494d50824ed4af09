//! A minimal WebSocket client over the Unix socket that reads only when told to:
//! what a stalled or slow TUI looks like to the daemon. The SDK cannot play that
//! part, because jsonrpsee's client reads the socket eagerly in the background.

use anyhow::{bail, Context};
use serde_json::Value;
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// One WebSocket connection; frames are read only by [`RawWs::recv`].
pub struct RawWs {
    stream: UnixStream,
}

impl RawWs {
    /// Connects and completes the upgrade handshake.
    pub async fn connect(socket: &Path) -> anyhow::Result<RawWs> {
        let mut stream = UnixStream::connect(socket).await?;
        let req = "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
                   Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Sec-WebSocket-Version: 13\r\n\r\n";
        stream.write_all(req.as_bytes()).await?;
        // Read the reply head byte by byte so no frame byte is consumed with it.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let b = stream.read_u8().await.context("upgrade reply")?;
            head.push(b);
            if head.len() > 16 * 1024 {
                bail!("upgrade reply too long");
            }
        }
        let text = String::from_utf8_lossy(&head);
        if !text.starts_with("HTTP/1.1 101") {
            bail!("upgrade refused: {text}");
        }
        Ok(RawWs { stream })
    }

    /// Sends one JSON value as a masked text frame.
    pub async fn send(&mut self, v: &Value) -> anyhow::Result<()> {
        let payload = serde_json::to_vec(v)?;
        let mut frame = vec![0x81u8];
        let len = payload.len();
        if len < 126 {
            frame.push(0x80 | len as u8);
        } else if len <= u16::MAX as usize {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let mask = [0x5a, 0x17, 0xc3, 0x99];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).await?;
        Ok(())
    }

    /// Reads the next text message (skipping control frames) as JSON.
    pub async fn recv(&mut self) -> anyhow::Result<Value> {
        let mut message = Vec::new();
        loop {
            let b0 = self.stream.read_u8().await?;
            let b1 = self.stream.read_u8().await?;
            let len = match b1 & 0x7f {
                126 => self.stream.read_u16().await? as u64,
                127 => self.stream.read_u64().await?,
                n => n as u64,
            };
            if b1 & 0x80 != 0 {
                bail!("server frames must not be masked");
            }
            let mut payload = vec![0u8; len as usize];
            self.stream.read_exact(&mut payload).await?;
            match b0 & 0x0f {
                0x8 => bail!("connection closed by the daemon"),
                0x9 | 0xa => continue,
                _ => message.extend_from_slice(&payload),
            }
            if b0 & 0x80 != 0 {
                return Ok(serde_json::from_slice(&message)?);
            }
        }
    }
}
