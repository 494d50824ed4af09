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

/// Splits `text` into pieces of at most `n` characters (on character boundaries).
pub fn chunks(text: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut count = 0;
    for ch in text.chars() {
        cur.push(ch);
        count += 1;
        if count == n {
            out.push(std::mem::take(&mut cur));
            count = 0;
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
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
            let pieces = chunks(&input.text, n);
            let mut first = true;
            for piece in pieces {
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
                io.emit.chunk(piece);
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
        assert_eq!(chunks("héllo wörld", 4), vec!["héll", "o wö", "rld"]);
        assert_eq!(chunks("", 4), Vec::<String>::new());
        assert_eq!(chunks("abc", 64), vec!["abc"]);
        assert_eq!(chunks("日本語テキスト", 3).concat(), "日本語テキスト");
    }

    #[test]
    fn usage_counts_words() {
        assert_eq!(words("hello  big\nworld"), 3);
    }
}
