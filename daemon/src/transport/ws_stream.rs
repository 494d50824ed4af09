//! The stream of one accepted connection, under hyper and jsonrpsee: bytes pass
//! untouched while the connection speaks HTTP; once the service saw an upgrade
//! request ([`IdStream::upgrade_flag`]) and hyper wrote `101 Switching Protocols`,
//! both directions go through the WebSocket frame handling of [`super::ws_frames`],
//! which applies the id rules of PROTOCOL.md 11.4 (see [`super::ws_ids`]).
//! jsonrpsee's upgrade path cannot be given another stream, so this sits below it.

use super::ws_frames::{Inbound, Outbound, Step};
use super::ws_ids::Pending;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The start of a response head, to see whether it is a `101`.
#[derive(Clone, Copy, Default)]
struct HeadScan {
    start: [u8; 12],
    seen: usize,
    last4: u32,
}

impl HeadScan {
    /// Takes one byte; true when it ends the head (`\r\n\r\n`).
    fn feed(&mut self, b: u8) -> bool {
        if self.seen < self.start.len() {
            self.start[self.seen] = b;
        }
        self.seen += 1;
        self.last4 = (self.last4 << 8) | b as u32;
        self.last4 == 0x0d0a_0d0a
    }

    fn switching(&self) -> bool {
        self.start.starts_with(b"HTTP/1.") && &self.start[8..] == b" 101"
    }
}

pub struct IdStream<S> {
    inner: S,
    upgrade: Arc<AtomicBool>,
    head: HeadScan,
    /// Set once the `101` went out: the WebSocket directions.
    ws: Option<Box<Ws>>,
    max_message: usize,
}

struct Ws {
    pending: Pending,
    inbound: Inbound,
    outbound: Outbound,
    eof: bool,
}

impl<S> IdStream<S> {
    /// Wraps `inner`; messages over `max_message` bytes pass untouched.
    pub fn new(inner: S, max_message: usize) -> IdStream<S> {
        IdStream {
            inner,
            upgrade: Arc::new(AtomicBool::new(false)),
            head: HeadScan::default(),
            ws: None,
            max_message,
        }
    }

    /// Raise it when the service accepts an upgrade request: the next response
    /// head is looked at.
    pub fn upgrade_flag(&self) -> Arc<AtomicBool> {
        self.upgrade.clone()
    }
}

fn too_many() -> io::Error {
    io::Error::other("too many calls with rewritten ids wait for their replies")
}

impl<S: AsyncRead + AsyncWrite + Unpin> IdStream<S> {
    /// Writes (part of) the response head to an upgrade request and switches to
    /// WebSocket when it was a `101`.
    fn write_head(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut scan = self.head;
        let limit = buf
            .iter()
            .position(|&b| scan.feed(b))
            .map_or(buf.len(), |i| i + 1);
        let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &buf[..limit]))?;
        for &b in &buf[..n] {
            if self.head.feed(b) {
                if self.head.switching() {
                    self.ws = Some(Box::new(Ws {
                        pending: Pending::default(),
                        inbound: Inbound::new(self.max_message),
                        outbound: Outbound::default(),
                        eof: false,
                    }));
                }
                self.head = HeadScan::default();
                self.upgrade.store(false, Ordering::Relaxed);
                break;
            }
        }
        Poll::Ready(Ok(n))
    }

    /// Writes what the frame handling already holds for the client.
    fn flush_out(inner: &mut S, ws: &mut Ws, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !ws.outbound.out.is_empty() {
            let n = ready!(Pin::new(&mut *inner).poll_write(cx, &ws.outbound.out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            ws.outbound.out.drain(..n);
        }
        Poll::Ready(Ok(()))
    }

    fn write_ws(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let Some(ws) = self.ws.as_deref_mut() else {
            return Pin::new(&mut self.inner).poll_write(cx, buf);
        };
        let mut consumed = 0;
        loop {
            match Self::flush_out(&mut self.inner, ws, cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) if consumed == 0 => return Poll::Ready(Err(e)),
                _ if consumed > 0 => return Poll::Ready(Ok(consumed)),
                other => return other.map_ok(|()| 0),
            }
            if consumed == buf.len() {
                return Poll::Ready(Ok(consumed));
            }
            match ws.outbound.step(&buf[consumed..], &mut ws.pending) {
                Step::Took(n) => consumed += n,
                Step::Pass(n) => {
                    match Pin::new(&mut self.inner).poll_write(cx, &buf[consumed..consumed + n]) {
                        Poll::Ready(Ok(w)) if w > 0 => {
                            ws.outbound.passed(w);
                            consumed += w;
                        }
                        Poll::Ready(Ok(_)) if consumed == 0 => {
                            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()))
                        }
                        Poll::Ready(Err(e)) if consumed == 0 => return Poll::Ready(Err(e)),
                        Poll::Pending if consumed == 0 => return Poll::Pending,
                        _ => return Poll::Ready(Ok(consumed)),
                    }
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for IdStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(ws) = this.ws.as_deref_mut() else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        loop {
            let ready = ws.inbound.ready();
            if !ready.is_empty() || ws.eof {
                let n = ready.len().min(buf.remaining());
                buf.put_slice(&ready[..n]);
                ws.inbound.give(n);
                return Poll::Ready(Ok(()));
            }
            let mut rb = ReadBuf::new(ws.inbound.spare());
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                ws.eof = true;
                ws.inbound.flush_rest();
                continue;
            }
            ws.inbound
                .filled(n, &mut ws.pending)
                .map_err(|_| too_many())?;
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for IdStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.ws.is_some() {
            this.write_ws(cx, buf)
        } else if this.upgrade.load(Ordering::Relaxed) {
            this.write_head(cx, buf)
        } else {
            Pin::new(&mut this.inner).poll_write(cx, buf)
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.ws.is_none() && !this.upgrade.load(Ordering::Relaxed) {
            return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        }
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &b[..]);
        Pin::new(this).poll_write(cx, first)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(ws) = this.ws.as_deref_mut() {
            ready!(Self::flush_out(&mut this.inner, ws, cx))?;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(ws) = this.ws.as_deref_mut() {
            ready!(Self::flush_out(&mut this.inner, ws, cx))?;
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::ws_frames::{header, write_frame};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const CALL: &[u8] = br#"{"jsonrpc":"2.0","id":-1,"method":"daemon/status"}"#;

    fn client_frame() -> Vec<u8> {
        let mut f = Vec::new();
        write_frame(&mut f, 1, Some([9, 8, 7, 6]), CALL);
        f
    }

    /// Reads what the server side gets of `bytes` written by the client.
    async fn through(
        s: &mut IdStream<tokio::io::DuplexStream>,
        client: &mut tokio::io::DuplexStream,
        bytes: &[u8],
    ) -> Vec<u8> {
        client.write_all(bytes).await.unwrap();
        let mut got = vec![0u8; 4096];
        let n = s.read(&mut got).await.unwrap();
        got.truncate(n);
        got
    }

    #[tokio::test]
    async fn only_a_101_after_an_upgrade_request_switches_to_websocket() {
        let (a, mut client) = tokio::io::duplex(1 << 16);
        let mut s = IdStream::new(a, 1 << 20);
        let flag = s.upgrade_flag();
        // A refused upgrade: the connection stays HTTP, bytes pass untouched.
        flag.store(true, Ordering::Relaxed);
        s.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\nno")
            .await
            .unwrap();
        assert!(s.ws.is_none() && !flag.load(Ordering::Relaxed));
        assert_eq!(
            through(&mut s, &mut client, &client_frame()).await,
            client_frame()
        );
        // A 101, its head ending across two writes, a server frame right after it.
        flag.store(true, Ordering::Relaxed);
        s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r")
            .await
            .unwrap();
        assert!(s.ws.is_none());
        let mut rest = b"\n".to_vec();
        write_frame(&mut rest, 1, None, b"{}");
        s.write_all(&rest).await.unwrap();
        assert!(s.ws.is_some());
        let mut head = vec![0u8; 4096];
        let n = client.read(&mut head).await.unwrap();
        assert!(head[..n].ends_with(&rest[1..]), "{:?}", &head[..n]);
        // Now the client's odd id travels as a placeholder.
        let got = through(&mut s, &mut client, &client_frame()).await;
        let h = header(&got).unwrap();
        assert_ne!(got, client_frame());
        let mut payload = got[h.size..].to_vec();
        crate::transport::ws_frames::unmask(&mut payload, h.mask.unwrap());
        let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert!(v["id"].as_str().unwrap().starts_with('\0'), "{v}");
    }
}
