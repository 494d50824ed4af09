//! Unit tests of the WebSocket frame handling in [`super`]: fragmented messages,
//! control frames between fragments, 7-, 16- and 64-bit lengths, masked and
//! unmasked frames, and every split of the byte stream into reads or writes.

use super::*;
use crate::transport::ws_ids::REFUSED_METHOD;
use serde_json::Value;

/// One frame (not final when `fin` is false), masked with `mask` if given.
fn frame(fin: bool, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_frame(&mut out, opcode, mask, payload);
    if !fin {
        out[0] &= 0x7f;
    }
    out
}

/// A frame with a 64-bit length field, as some clients write even small ones.
fn frame64(opcode: u8, mask: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode, 0x80 | 127];
    out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// The frames in `bytes`: (fin, opcode, unmasked payload).
fn frames(mut bytes: &[u8]) -> Vec<(bool, u8, Vec<u8>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let h = header(bytes).expect("a whole header");
        let end = h.size + h.len as usize;
        let mut p = bytes[h.size..end].to_vec();
        if let Some(k) = h.mask {
            p.iter_mut().enumerate().for_each(|(i, b)| *b ^= k[i % 4]);
        }
        out.push((h.fin, h.opcode, p));
        bytes = &bytes[end..];
    }
    out
}

const M: Option<[u8; 4]> = Some([0x37, 0xfa, 0x21, 0x3d]);

fn call(id: &str, pad: usize) -> Vec<u8> {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"daemon/status","params":{{"pad":"{}"}}}}"#,
        "x".repeat(pad)
    )
    .into_bytes()
}

/// A client stream: a plain call, a fragmented odd-id call with a ping between its
/// fragments, a 16-bit-length call, a 64-bit-length wrong-type call, a close.
fn client_stream() -> Vec<u8> {
    let b = call("-1", 10);
    let mut s = frame(true, 1, M, &call("7", 0));
    s.extend(frame(false, 1, M, &b[..9]));
    s.extend(frame(true, 9, M, b"hi"));
    s.extend(frame(false, 0, M, &b[9..30]));
    s.extend(frame(true, 0, M, &b[30..]));
    s.extend(frame(true, 1, M, &call("\"s\"", 300)));
    s.extend(frame64(2, [1, 2, 3, 4], &call("true", 0)));
    s.extend(frame(true, 8, M, &[3, 232]));
    s
}

/// Feeds `chunks` through an [`Inbound`] and returns what it hands on.
fn run_inbound(chunks: &[&[u8]], ids: &mut Pending) -> Vec<u8> {
    let mut inb = Inbound::new(1 << 20);
    let mut out = Vec::new();
    for c in chunks {
        let mut off = 0;
        while off < c.len() {
            let spare = inb.spare();
            let n = spare.len().min(c.len() - off);
            spare[..n].copy_from_slice(&c[off..off + n]);
            inb.filled(n, ids).expect("not too many");
            off += n;
            let ready = inb.ready().to_vec();
            inb.give(ready.len());
            out.extend(ready);
        }
    }
    out
}

#[test]
fn room_for_a_large_message_is_let_go_once_it_has_been_handed_on() {
    let mut ids = Pending::default();
    let mut inb = Inbound::new(1 << 20);
    let big = frame(true, 1, M, &call("7", 300_000));
    let mut off = 0;
    let mut out = Vec::new();
    while off < big.len() {
        let spare = inb.spare();
        let n = spare.len().min(big.len() - off);
        spare[..n].copy_from_slice(&big[off..off + n]);
        inb.filled(n, &mut ids).expect("not too many");
        off += n;
        let ready = inb.ready().to_vec();
        inb.give(ready.len());
        out.extend(ready);
    }
    assert_eq!(out.len(), big.len(), "the whole message was handed on");
    // Nothing more is read (the client now only listens): the room is gone already.
    assert!(inb.buf.len() <= KEEP, "read buffer kept: {}", inb.buf.len());
    assert!(
        inb.payload.capacity() <= KEEP,
        "payload kept: {}",
        inb.payload.capacity()
    );
    // And the next message still passes.
    let next = call("8", 0);
    assert_eq!(
        run_more(&mut inb, &frame(true, 1, M, &next), &mut ids).len(),
        next.len() + 6
    );
}

/// Feeds one more chunk through an existing [`Inbound`].
fn run_more(inb: &mut Inbound, chunk: &[u8], ids: &mut Pending) -> Vec<u8> {
    let spare = inb.spare();
    spare[..chunk.len()].copy_from_slice(chunk);
    inb.filled(chunk.len(), ids).expect("not too many");
    let ready = inb.ready().to_vec();
    inb.give(ready.len());
    ready
}

#[test]
fn client_messages_pass_as_they_are_or_with_placeholders() {
    let stream = client_stream();
    let out = run_inbound(&[&stream], &mut Pending::default());
    let f = frames(&out);
    // The plain call: its original bytes.
    assert_eq!(
        &out[..frame(true, 1, M, &call("7", 0)).len()],
        &frame(true, 1, M, &call("7", 0))[..]
    );
    assert_eq!(f[0], (true, 1, call("7", 0)));
    // The fragmented one: the ping first, then one final frame with a placeholder.
    assert_eq!(f[1], (true, 9, b"hi".to_vec()));
    let v: Value = serde_json::from_slice(&f[2].2).unwrap();
    assert!((f[2].0, f[2].1) == (true, 1));
    assert!(v["id"].as_str().unwrap().starts_with('\0'), "{v}");
    assert_eq!(v["params"]["pad"], "x".repeat(10));
    assert_eq!(f[3], (true, 1, call("\"s\"", 300)));
    // The binary wrong-type call goes to the refused method.
    let v: Value = serde_json::from_slice(&f[4].2).unwrap();
    assert_eq!(
        (f[4].1, v["method"].clone()),
        (2, Value::from(REFUSED_METHOD))
    );
    assert_eq!(f[5], (true, 8, vec![3, 232]));
    assert_eq!(f.len(), 6);
}

#[test]
fn every_split_of_the_client_stream_gives_the_same_bytes() {
    let stream = client_stream();
    let whole = run_inbound(&[&stream], &mut Pending::default());
    for cut in 0..=stream.len() {
        let (a, b) = stream.split_at(cut);
        assert_eq!(
            run_inbound(&[a, b], &mut Pending::default()),
            whole,
            "cut at {cut}"
        );
    }
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(run_inbound(&bytes, &mut Pending::default()), whole);
}

#[test]
fn oversized_unmasked_and_rsv_frames_pass_untouched() {
    let mut inb = Inbound::new(16);
    let mut p = Pending::default();
    let mut s = frame(true, 1, M, &call("-1", 0)); // over the 16-byte limit
    s.extend(frame(true, 1, None, &call("-1", 0))); // unmasked
    let mut rsv = frame(true, 1, M, &call("-1", 0));
    rsv[0] |= 0x40;
    s.extend(rsv);
    let spare = inb.spare();
    spare[..s.len()].copy_from_slice(&s);
    inb.filled(s.len(), &mut p).unwrap();
    assert_eq!(inb.ready(), &s[..]);
    assert!(p.is_empty());
}

/// Feeds server bytes through an [`Outbound`] in `chunks`; returns what reaches
/// the client.
fn run_outbound(chunks: &[&[u8]], ids: &mut Pending) -> Vec<u8> {
    let mut o = Outbound::default();
    let mut wire = Vec::new();
    for c in chunks {
        let mut off = 0;
        while off < c.len() {
            wire.append(&mut o.out);
            match o.step(&c[off..], ids) {
                Step::Took(n) => off += n,
                Step::Pass(n) => {
                    // Write in two parts, as a short write would.
                    let w = n.div_ceil(2);
                    wire.extend_from_slice(&c[off..off + w]);
                    o.passed(w);
                    off += w;
                }
            }
        }
    }
    wire.append(&mut o.out);
    wire
}

#[test]
fn server_replies_get_their_ids_back_at_every_split() {
    // Two rewritten calls wait: -1 and a refused one.
    let mut template = Pending::default();
    let sent = run_inbound(
        &[&[
            frame(true, 1, M, &call("-1", 0)),
            frame(true, 1, M, &call("{}", 0)),
        ]
        .concat()],
        &mut template,
    );
    let placeholders: Vec<String> = frames(&sent)
        .iter()
        .map(|f| serde_json::from_slice::<Value>(&f.2).unwrap()["id"].to_string())
        .collect();
    let reply = |id: &str, pad: usize| {
        format!(
            r#"{{"jsonrpc":"2.0","result":"{}","id":{id}}}"#,
            "y".repeat(pad)
        )
        .into_bytes()
    };
    let mut s = frame(true, 1, None, &reply("3", 200));
    s.extend(frame(true, 9, None, b"ping"));
    s.extend(frame(false, 1, None, &reply(&placeholders[0], 70_000)[..5]));
    s.extend(frame(true, 10, None, b"pong"));
    s.extend(frame(true, 0, None, &reply(&placeholders[0], 70_000)[5..]));
    s.extend(frame(
        true,
        1,
        None,
        format!(
            r#"{{"jsonrpc":"2.0","error":{{"code":-32601,"message":"x"}},"id":{}}}"#,
            placeholders[1]
        )
        .as_bytes(),
    ));
    s.extend(frame(true, 1, None, &reply("4", 0)));
    let check = |wire: &[u8]| {
        let f = frames(wire);
        assert_eq!(f.len(), 6);
        assert_eq!(f[0], (true, 1, reply("3", 200)));
        assert_eq!(f[1], (true, 9, b"ping".to_vec()));
        assert_eq!(f[2], (true, 10, b"pong".to_vec()));
        assert_eq!(f[3], (true, 1, reply("-1", 70_000)));
        let v: Value = serde_json::from_slice(&f[4].2).unwrap();
        assert_eq!(
            (v["error"]["code"].clone(), v["id"].clone()),
            (Value::from(-32600), Value::Null)
        );
        assert_eq!(f[5], (true, 1, reply("4", 0)));
    };
    for cut in (0..=s.len())
        .step_by(97)
        .chain([1, 2, 3, 4, 5, 6, s.len() - 1])
    {
        let mut ids = Pending::default();
        run_inbound(
            &[&[
                frame(true, 1, M, &call("-1", 0)),
                frame(true, 1, M, &call("{}", 0)),
            ]
            .concat()],
            &mut ids,
        );
        let (a, b) = s.split_at(cut);
        let wire = run_outbound(&[a, b], &mut ids);
        check(&wire);
        assert!(ids.is_empty());
    }
    let bytes: Vec<&[u8]> = s.chunks(1).collect();
    check(&run_outbound(&bytes, &mut template));
}

#[test]
fn with_nothing_waiting_server_frames_pass_in_one_piece() {
    let mut s = frame(true, 1, None, &call("1", 10));
    s.extend(frame(true, 1, None, &call("2", 200)));
    let mut o = Outbound::default();
    assert_eq!(o.step(&s, &mut Pending::default()), Step::Pass(s.len()));
}

#[test]
fn unmasking_by_words_matches_the_byte_rule() {
    let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let k = [0x37, 0xfa, 0x21, 0x3d];
    for len in [0, 1, 3, 7, 8, 9, 15, 16, 17, 1000] {
        let mut got = data[..len].to_vec();
        unmask(&mut got, k);
        let want: Vec<u8> = data[..len]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ k[i % 4])
            .collect();
        assert_eq!(got, want, "{len}");
    }
}
