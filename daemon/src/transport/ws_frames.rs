//! WebSocket frames (RFC 6455) on a byte stream, in both directions, for the id
//! rules of [`super::ws_ids`]. [`Inbound`] holds each client data message until it
//! is whole, then hands on the original bytes, or one re-framed message when its
//! ids change. [`Outbound`] passes server frames straight through while no
//! rewritten call waits for its reply, and otherwise holds each data message to
//! put the original ids back. Control frames, frames with RSV bits (no extension is
//! negotiated), and messages over the size limit pass untouched.

use super::ws_ids::{Pending, Rewrite};

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Header {
    pub fin: bool,
    pub rsv: bool,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    pub len: u64,
    /// The header's own length in bytes.
    pub size: usize,
}

/// The header's length once its second byte is known.
fn header_size(b1: u8) -> usize {
    let ext = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 }
}

/// Reads the header at the start of `b`; `None` until all of it is there.
pub fn header(b: &[u8]) -> Option<Header> {
    if b.len() < 2 {
        return None;
    }
    let size = header_size(b[1]);
    if b.len() < size {
        return None;
    }
    let (len, at) = match b[1] & 0x7f {
        126 => (u16::from_be_bytes([b[2], b[3]]) as u64, 4),
        127 => (u64::from_be_bytes(b[2..10].try_into().ok()?), 10),
        n => (n as u64, 2),
    };
    let mask = (b[1] & 0x80 != 0).then(|| [b[at], b[at + 1], b[at + 2], b[at + 3]]);
    Some(Header {
        fin: b[0] & 0x80 != 0,
        rsv: b[0] & 0x70 != 0,
        opcode: b[0] & 0x0f,
        mask,
        len,
        size,
    })
}

/// Appends one final frame carrying `payload` (masked with `mask` if given).
pub fn write_frame(out: &mut Vec<u8>, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) {
    out.push(0x80 | opcode);
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(m | n as u8),
        n if n <= u16::MAX as usize => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(k) => {
            out.extend_from_slice(&k);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
}

/// XORs `data` with the 4-byte `mask` (RFC 6455 5.3), eight bytes at a time.
pub fn unmask(data: &mut [u8], mask: [u8; 4]) {
    let m = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(w) ^ m).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
}

/// Buffers grown past this for a large message are let go once it has passed (a
/// prompt of 300 KB left 0.8 MB held per connection with 1 MiB here: issue 14).
const KEEP: usize = 64 << 10;

/// A data message being held.
struct Held {
    /// Where its first frame starts in the buffer.
    start: usize,
    opcode: u8,
    mask: [u8; 4],
    /// Control frames between its fragments, kept in place.
    controls: Vec<std::ops::Range<usize>>,
}

/// The client-to-server direction: bytes read from the client go into [`buf`],
/// and [`ready`] is what may be handed to the server.
///
/// [`buf`]: Inbound::buf
/// [`ready`]: Inbound::ready
pub struct Inbound {
    buf: Vec<u8>,
    /// `buf[..filled]` holds bytes read.
    filled: usize,
    /// `buf[given..ready]` may be handed on; `buf[..given]` was.
    given: usize,
    ready: usize,
    /// Frames before `scan` were looked at.
    scan: usize,
    /// Bytes of the current frame still to pass untouched.
    skip: u64,
    /// A data message is passing untouched until its final frame.
    passing: bool,
    held: Option<Held>,
    payload: Vec<u8>,
    /// Messages larger than this pass untouched (the server refuses them anyway).
    max: usize,
}

impl Inbound {
    pub fn new(max: usize) -> Inbound {
        Inbound {
            buf: vec![0; 8192],
            filled: 0,
            given: 0,
            ready: 0,
            scan: 0,
            skip: 0,
            passing: false,
            held: None,
            payload: Vec::new(),
            max,
        }
    }

    /// Room to read into; call [`Inbound::filled`] with the count read.
    pub fn spare(&mut self) -> &mut [u8] {
        self.reset_if_drained();
        if self.buf.len() - self.filled < 4096 {
            if self.given > 0 {
                self.compact();
            }
            if self.buf.len() - self.filled < 4096 {
                let grown = (self.buf.len() * 2).max(self.filled + 8192);
                self.buf.resize(grown, 0);
            }
        }
        &mut self.buf[self.filled..]
    }

    fn compact(&mut self) {
        let g = self.given;
        self.buf.copy_within(g..self.filled, 0);
        self.filled -= g;
        self.ready -= g;
        self.scan -= g;
        self.given = 0;
        if let Some(h) = &mut self.held {
            h.start -= g;
            for c in &mut h.controls {
                *c = c.start - g..c.end - g;
            }
        }
    }

    /// Takes `n` bytes just read into [`Inbound::spare`] and looks at them.
    pub fn filled(&mut self, n: usize, ids: &mut Pending) -> Result<(), TooMany> {
        self.filled += n;
        self.process(ids)
    }

    /// Bytes read but not yet handed on: at the end of the stream they go as they are.
    pub fn flush_rest(&mut self) {
        self.held = None;
        self.ready = self.filled;
        self.scan = self.filled;
    }

    /// What may be handed on now.
    pub fn ready(&self) -> &[u8] {
        &self.buf[self.given..self.ready]
    }

    /// `n` bytes of [`Inbound::ready`] were handed on.
    pub fn give(&mut self, n: usize) {
        self.given += n;
        // At once, not at the next read: a client that sent one large prompt and
        // then only listens would otherwise hold its room while the turn streams.
        self.reset_if_drained();
    }

    /// Everything read was handed on: start the buffer over, and let go of room a
    /// large message grew it to, so it is not kept for the connection's life.
    fn reset_if_drained(&mut self) {
        if self.given == 0 || self.given != self.filled {
            return;
        }
        self.given = 0;
        self.ready = 0;
        self.scan = 0;
        self.filled = 0;
        if self.buf.len() > KEEP {
            self.buf = vec![0; 8192];
        }
        if self.held.is_none() && self.payload.capacity() > KEEP {
            self.payload = Vec::new();
        }
    }

    /// Stops holding the current message: it and this frame pass untouched.
    fn pass_frame(&mut self, h: &Header) {
        self.held = None;
        self.payload.clear();
        self.skip = (h.size as u64).saturating_add(h.len);
    }

    fn process(&mut self, ids: &mut Pending) -> Result<(), TooMany> {
        loop {
            if self.skip > 0 {
                let n = (self.filled - self.scan).min(self.skip.min(usize::MAX as u64) as usize);
                self.scan += n;
                self.skip -= n as u64;
                if self.held.is_none() {
                    self.ready = self.scan;
                }
                if self.skip > 0 {
                    return Ok(());
                }
                continue;
            }
            let Some(h) = header(&self.buf[self.scan..self.filled]) else {
                return Ok(());
            };
            let whole = (h.size as u64).saturating_add(h.len);
            let have = (self.filled - self.scan) as u64;
            if h.opcode >= 8 {
                if self.held.is_none() || h.len > 125 {
                    self.pass_frame(&h);
                    continue;
                }
                if have < whole {
                    return Ok(());
                }
                let end = self.scan + whole as usize;
                if let Some(held) = &mut self.held {
                    held.controls.push(self.scan..end);
                }
                self.scan = end;
                continue;
            }
            let starts = h.opcode != 0;
            let odd = h.rsv || h.mask.is_none() || h.opcode > 2 || starts == self.held.is_some();
            if self.passing
                || odd
                || (self.payload.len() as u64).saturating_add(h.len) > self.max as u64
            {
                self.passing = !h.fin;
                self.pass_frame(&h);
                continue;
            }
            if have < whole {
                return Ok(());
            }
            let mask = h.mask.unwrap_or_default();
            if starts {
                self.held = Some(Held {
                    start: self.scan,
                    opcode: h.opcode,
                    mask,
                    controls: Vec::new(),
                });
            }
            let body = self.scan + h.size..self.scan + whole as usize;
            let from = self.payload.len();
            self.payload.extend_from_slice(&self.buf[body.clone()]);
            unmask(&mut self.payload[from..], mask);
            self.scan = body.end;
            if h.fin {
                self.finish(ids)?;
            }
        }
    }

    /// A whole message is held: hand on the original bytes or its rewrite.
    fn finish(&mut self, ids: &mut Pending) -> Result<(), TooMany> {
        let Some(held) = self.held.take() else {
            return Ok(());
        };
        let rewrite = ids.rewrite(&self.payload);
        self.payload.clear();
        match rewrite {
            Rewrite::Unchanged => {}
            Rewrite::TooMany => return Err(TooMany),
            Rewrite::Changed(body) => {
                let mut with = Vec::with_capacity(body.len() + 14);
                for c in &held.controls {
                    with.extend_from_slice(&self.buf[c.clone()]);
                }
                write_frame(&mut with, held.opcode, Some(held.mask), &body);
                let rest = self.buf[self.scan..self.filled].to_vec();
                self.buf.truncate(held.start);
                self.buf.extend_from_slice(&with);
                self.scan = self.buf.len();
                self.buf.extend_from_slice(&rest);
                self.filled = self.buf.len();
                self.buf.resize(self.filled + 8192, 0);
            }
        }
        self.ready = self.scan;
        Ok(())
    }
}

/// Too many rewritten calls wait for replies on this connection.
#[derive(Debug, PartialEq)]
pub struct TooMany;

/// What to do with the next bytes the server writes.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Write the next `n` bytes to the client as they are, then call
    /// [`Outbound::passed`] with the count written.
    Pass(usize),
    /// The next `n` bytes were taken in; write [`Outbound::out`] before anything else.
    Took(usize),
}

/// The server-to-client direction.
#[derive(Default)]
pub struct Outbound {
    hdr: [u8; 14],
    have: usize,
    /// Payload bytes of the current frame to pass straight through.
    pass: u64,
    /// Payload bytes of the current frame still to collect, and whether it is final.
    collect: u64,
    fin: bool,
    /// A data message is passing untouched until its final frame.
    passing: bool,
    /// The held data message: its opcode, raw frames, and payload.
    held: Option<u8>,
    raw: Vec<u8>,
    payload: Vec<u8>,
    /// Bytes to write to the client before anything else.
    pub out: Vec<u8>,
}

/// Server messages over this size are not held (their ids are not put back).
const MAX_HELD: usize = 64 << 20;

impl Outbound {
    pub fn step(&mut self, input: &[u8], ids: &mut Pending) -> Step {
        if self.pass > 0 {
            return Step::Pass(input.len().min(self.pass.min(usize::MAX as u64) as usize));
        }
        if self.collect > 0 {
            let n = input.len().min(self.collect as usize);
            self.raw.extend_from_slice(&input[..n]);
            self.payload.extend_from_slice(&input[..n]);
            self.collect -= n as u64;
            if self.collect == 0 && self.fin {
                self.finish(ids);
            }
            return Step::Took(n);
        }
        if self.have == 0 && self.held.is_none() {
            // The common case: whole frames that pass, in one write.
            let mut run = 0u64;
            while let Some(h) = input.get(run as usize..).and_then(header) {
                if self.holds(&h, ids) {
                    break;
                }
                if h.opcode < 8 {
                    self.passing = !h.fin;
                }
                run = run.saturating_add(h.size as u64).saturating_add(h.len);
            }
            if run > 0 {
                self.pass = run;
                return Step::Pass(input.len().min(run.min(usize::MAX as u64) as usize));
            }
        }
        let want = if self.have < 2 {
            2
        } else {
            header_size(self.hdr[1])
        };
        let n = input.len().min(want - self.have);
        self.hdr[self.have..self.have + n].copy_from_slice(&input[..n]);
        self.have += n;
        if let Some(h) = header(&self.hdr[..self.have]) {
            self.have = 0;
            self.on_header(h, ids);
        }
        Step::Took(n)
    }

    /// Whether the frame `h` starts or continues a message to hold.
    fn holds(&self, h: &Header, ids: &Pending) -> bool {
        h.opcode <= 2
            && !h.rsv
            && !self.passing
            && (h.opcode != 0) != self.held.is_some()
            && (self.held.is_some() || !ids.is_empty())
            && (self.raw.len() as u64).saturating_add(h.len) <= MAX_HELD as u64
    }

    /// `n` bytes of a [`Step::Pass`] were written.
    pub fn passed(&mut self, n: usize) {
        self.pass -= n as u64;
    }

    fn on_header(&mut self, h: Header, ids: &mut Pending) {
        let hdr = &self.hdr[..h.size];
        if !self.holds(&h, ids) {
            if h.opcode < 8 {
                // A data frame passing untouched: so does what was held of its message.
                if self.held.take().is_some() {
                    self.out.append(&mut self.raw);
                    self.payload.clear();
                }
                self.passing = !h.fin;
            }
            self.out.extend_from_slice(hdr);
            self.pass = h.len;
            return;
        }
        if h.opcode != 0 {
            self.held = Some(h.opcode);
        }
        self.raw.extend_from_slice(hdr);
        self.collect = h.len;
        self.fin = h.fin;
        if h.len == 0 && h.fin {
            self.finish(ids);
        }
    }

    fn finish(&mut self, ids: &mut Pending) {
        let Some(opcode) = self.held.take() else {
            return;
        };
        match ids.restore(&self.payload) {
            Some(body) => {
                write_frame(&mut self.out, opcode, None, &body);
                self.raw.clear();
            }
            None => self.out.append(&mut self.raw),
        }
        self.payload.clear();
        if self.raw.capacity() > KEEP || self.payload.capacity() > KEEP {
            self.raw = Vec::new();
            self.payload = Vec::new();
        }
    }
}

#[cfg(test)]
#[path = "ws_frames_tests.rs"]
mod tests;
