//! A session's replay window: its last events, kept as their JSON text in one ring of
//! bytes beside a ring of (seq, length). Two allocations a session, whatever the
//! number of events: the window used to keep one envelope per event (about five heap
//! blocks each, 20,000 for the default 4,096 events), made while a long turn was
//! streaming and scattered over the pages the turn used, so that glibc could give
//! few of them back after the turn (issue 14, "a long answer"). An event is parsed
//! back only when it is replayed, which is rare next to publishing.

use super::published::Published;
use serde_json::value::RawValue;
use sessiond_protocol::EventEnvelope;
use std::collections::VecDeque;
use std::sync::Arc;

/// The last `cap` events of a session, oldest first.
pub struct ReplayWindow {
    cap: usize,
    text: VecDeque<u8>,
    /// (seq, bytes of its JSON in `text`), in the order of `text`.
    index: VecDeque<(u64, usize)>,
}

impl ReplayWindow {
    pub fn new(cap: usize) -> ReplayWindow {
        ReplayWindow {
            cap: cap.max(1),
            text: VecDeque::new(),
            index: VecDeque::new(),
        }
    }

    /// Appends an event's JSON; the oldest event goes once `cap` are kept.
    pub fn push(&mut self, seq: u64, json: &RawValue) {
        let bytes = json.get().as_bytes();
        self.text.extend(bytes);
        self.index.push_back((seq, bytes.len()));
        while self.index.len() > self.cap {
            if let Some((_, len)) = self.index.pop_front() {
                self.text.drain(..len);
            }
        }
    }

    /// The seq of the oldest event kept.
    pub fn first_seq(&self) -> Option<u64> {
        self.index.front().map(|(seq, _)| *seq)
    }

    /// The events after `since`, oldest first, copied out as text: cheap enough to
    /// take under the hub's lock; [`Kept::parse`] them after it is released.
    pub fn after(&self, since: u64) -> Kept {
        let skip = self.index.partition_point(|(seq, _)| *seq <= since);
        let offset: usize = self.index.iter().take(skip).map(|(_, len)| len).sum();
        Kept {
            text: self.text.range(offset..).copied().collect(),
            index: self.index.iter().skip(skip).copied().collect(),
        }
    }
}

/// Events copied out of a [`ReplayWindow`].
#[derive(Default)]
pub struct Kept {
    text: Vec<u8>,
    index: Vec<(u64, usize)>,
}

impl Kept {
    /// The events, each with its JSON as it was sent.
    pub fn parse(self) -> Vec<Arc<Published>> {
        let mut out = Vec::with_capacity(self.index.len());
        let mut rest = self.text.as_slice();
        for (seq, len) in self.index {
            let (bytes, tail) = rest.split_at(len);
            rest = tail;
            match parse(bytes.to_vec()) {
                Ok(p) => out.push(Arc::new(p)),
                // Written by this process from an envelope: cannot happen unless
                // the protocol's types stop round-tripping, which its tests check.
                Err(e) => tracing::error!(seq, error = %e, "cannot replay a kept event"),
            }
        }
        out
    }
}

fn parse(bytes: Vec<u8>) -> Result<Published, serde_json::Error> {
    let env: EventEnvelope = serde_json::from_slice(&bytes)?;
    // The bytes came from a `RawValue`, so they are UTF-8.
    let text = String::from_utf8(bytes).map_err(serde::de::Error::custom)?;
    Ok(Published::with_json(env, RawValue::from_string(text)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_protocol::{Event, SessionId, TurnId};

    fn published(seq: u64, text: &str) -> Published {
        Published::new(EventEnvelope {
            session_id: SessionId("s".into()),
            seq,
            at: "2026-12-01T00:00:00.000000Z".into(),
            event: Event::AgentMessageChunk {
                turn_id: TurnId("t".into()),
                text: text.into(),
            },
        })
    }

    #[test]
    fn keeps_the_last_cap_events_and_replays_them_as_sent() {
        let mut w = ReplayWindow::new(3);
        let sent: Vec<Published> = (1..=5)
            .map(|seq| published(seq, &"é\"\n".repeat(seq as usize)))
            .collect();
        for p in &sent {
            w.push(p.seq, p.json().unwrap());
        }
        assert_eq!(w.first_seq(), Some(3));
        let back = w.after(0).parse();
        assert_eq!(back.len(), 3);
        for (got, want) in back.iter().zip(&sent[2..]) {
            assert_eq!(got.envelope(), want.envelope());
            assert_eq!(got.json().unwrap().get(), want.json().unwrap().get());
        }
        let seqs: Vec<u64> = w.after(4).parse().iter().map(|p| p.seq).collect();
        assert_eq!(seqs, vec![5]);
        assert!(w.after(5).parse().is_empty());
    }

    #[test]
    fn text_holds_exactly_the_kept_events() {
        let mut w = ReplayWindow::new(2);
        for seq in 1..=100 {
            let p = published(seq, &"x".repeat(seq as usize % 7));
            w.push(seq, p.json().unwrap());
        }
        let kept: usize = w.index.iter().map(|(_, len)| len).sum();
        assert_eq!(w.text.len(), kept);
        assert_eq!(w.index.len(), 2);
        assert_eq!(w.first_seq(), Some(99));
    }
}
