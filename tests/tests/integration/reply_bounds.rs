//! Replies that grow with what is stored stay bounded: a `session/messages` page of
//! a huge transcript stops at its byte cap, and paging with `from` still reaches
//! every message.

use sessiond_tests::{new_session, Daemon};

const CAP: usize = 4 * 1024 * 1024;

#[tokio::test]
async fn a_messages_page_of_a_huge_transcript_is_capped_and_paging_reaches_the_end() {
    let d = Daemon::start_with("[agents.big]\nkind = \"echo\"\nchunk_chars = 65536\n").await;
    let c = d.tui().await;
    let id = new_session(&c, "big").await;
    // 8 turns of 700 KB each: 16 messages, about 11 MB of transcript.
    for i in 0..8u8 {
        let text = String::from(char::from(b'a' + i)).repeat(700 * 1024);
        c.prompt_wait(&id, text).await.expect("turn");
    }
    let first = c.messages(&id, None, None).await.expect("messages");
    assert_eq!(first.total, 16);
    let bytes: usize = first.messages.iter().map(|m| m.content.len()).sum();
    assert!(bytes <= CAP, "a page of {bytes} bytes");
    assert!(first.messages.len() < 16 && !first.messages.is_empty());
    // Paging on from the last index gets every message exactly once.
    let mut seen = first.messages.iter().map(|m| m.index).collect::<Vec<_>>();
    while (seen.len() as u64) < first.total {
        let from = seen.last().copied().unwrap() + 1;
        let page = c.messages(&id, Some(from), None).await.expect("page");
        assert!(!page.messages.is_empty(), "an empty page before the end");
        let bytes: usize = page.messages.iter().map(|m| m.content.len()).sum();
        assert!(bytes <= CAP, "a page of {bytes} bytes");
        seen.extend(page.messages.iter().map(|m| m.index));
    }
    assert_eq!(seen, (0..16).collect::<Vec<u64>>());
}
