//! The built-in `echo` agent: replies with exactly the text it sees, in chunks of
//! `chunk_chars` characters, one every `chunk_delay_ms`. For trying the daemon and tests.

use super::{Agent, TurnInput, TurnIo};
use futures::future::BoxFuture;
use sessiond_protocol::Usage;
use std::time::Duration;

pub struct EchoAgent {
    chunk_chars: usize,
    delay: Duration,
}

impl EchoAgent {
    pub fn new(chunk_chars: usize, chunk_delay_ms: u64) -> EchoAgent {
        EchoAgent {
            chunk_chars: chunk_chars.max(1),
            delay: Duration::from_millis(chunk_delay_ms),
        }
    }
}

/// Splits `text` into pieces of at most `n` characters (on character boundaries),
/// one at a time: splitting a 300,000-character prompt up front held 300,000
/// strings for the whole turn, the largest part of the daemon's heap during a
/// long answer (massif, issue 14).
pub fn chunks(text: &str, n: usize) -> impl Iterator<Item = &str> {
    let n = n.max(1);
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest.char_indices().nth(n).map_or(rest.len(), |(i, _)| i);
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

impl Agent for EchoAgent {
    fn kind(&self) -> &'static str {
        "echo"
    }

    fn run(&self, input: TurnInput, io: TurnIo) -> BoxFuture<'static, Result<(), String>> {
        let n = self.chunk_chars;
        let delay = self.delay;
        Box::pin(async move {
            let mut first = true;
            for piece in chunks(&input.text, n) {
                if !first && !delay.is_zero() {
                    tokio::select! {
                        _ = io.cancel.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                first = false;
                if io.cancel.is_cancelled() {
                    return Ok(());
                }
                io.emit.chunk(piece.to_owned());
                if delay.is_zero() {
                    // Let other tasks (and a cancel) in between chunks.
                    tokio::task::yield_now().await;
                }
            }
            let w = words(&input.text);
            io.emit.usage(Usage {
                input_tokens: w,
                output_tokens: w,
            });
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_split_on_char_boundaries() {
        fn all(t: &str, n: usize) -> Vec<&str> {
            chunks(t, n).collect()
        }
        assert_eq!(all("héllo wörld", 4), vec!["héll", "o wö", "rld"]);
        assert_eq!(all("", 4), Vec::<&str>::new());
        assert_eq!(all("abc", 64), vec!["abc"]);
        assert_eq!(all("abc", 1), vec!["a", "b", "c"]);
        assert_eq!(all("日本語テキスト", 3).concat(), "日本語テキスト");
    }

    #[test]
    fn usage_counts_words() {
        assert_eq!(words("hello  big\nworld"), 3);
    }
}
