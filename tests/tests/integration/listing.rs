//! `session/list` answers the same whether every stored session is live (served from
//! memory) or some are not (served by the database): same sessions, same order,
//! same filters, same paging.

use sessiond_client::Client;
use sessiond_protocol::params::{ListParams, NewSessionParams};
use sessiond_protocol::{Mode, SessionId, SessionInfo};
use sessiond_tests::Daemon;

async fn create(c: &Client, mode: Mode) -> SessionId {
    c.new_session(NewSessionParams {
        mode: Some(mode),
        keep_siblings: Some(true),
        ..Default::default()
    })
    .await
    .expect("session/new")
    .session
    .session_id
}

/// Every page of a listing, following the cursors, with pages of `limit`.
async fn all_pages(c: &Client, p: ListParams, limit: u32) -> Vec<SessionInfo> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = c
            .list_sessions(ListParams {
                limit: Some(limit),
                cursor,
                ..p.clone()
            })
            .await
            .expect("session/list");
        assert!(page.sessions.len() <= limit as usize);
        out.extend(page.sessions);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
}

fn ids(v: &[SessionInfo]) -> Vec<String> {
    v.iter().map(|s| s.session_id.0.clone()).collect()
}

fn assert_listing_order(v: &[SessionInfo]) {
    for w in v.windows(2) {
        let a = (&w[0].updated_at, &w[0].session_id.0);
        let b = (&w[1].updated_at, &w[1].session_id.0);
        assert!(
            a > b,
            "newest updated_at first, then session_id descending: {a:?} {b:?}"
        );
    }
}

#[tokio::test]
async fn listing_is_the_same_from_memory_and_from_the_database() {
    let d = Daemon::start().await;
    let a = d.tui().await;
    let b = d.tui().await;
    let anon = d.client().await;
    let mut a_ids = Vec::new();
    for i in 0..7 {
        let mode = if i % 2 == 0 { Mode::Chat } else { Mode::Code };
        a_ids.push(create(&a, mode).await);
    }
    for _ in 0..3 {
        create(&b, Mode::Chat).await;
    }
    for _ in 0..2 {
        create(&anon, Mode::Code).await;
    }
    let queries = [
        ListParams {
            owner: Some("any".into()),
            ..Default::default()
        },
        ListParams::default(),
        ListParams {
            owner: Some("none".into()),
            ..Default::default()
        },
        ListParams {
            owner: Some("any".into()),
            mode: Some(Mode::Code),
            ..Default::default()
        },
    ];
    let expected_lens = [12, 7, 2, 5];

    // Every session is live: each listing, in pages of 1, 3 and 100.
    let mut live_listings = Vec::new();
    for (q, want) in queries.iter().zip(expected_lens) {
        let whole = all_pages(&a, q.clone(), 100).await;
        assert_eq!(whole.len(), want, "{q:?}");
        assert_listing_order(&whole);
        assert!(whole.iter().all(|s| s.live));
        for limit in [1, 3] {
            assert_eq!(
                ids(&all_pages(&a, q.clone(), limit).await),
                ids(&whole),
                "{q:?}"
            );
        }
        live_listings.push(whole);
    }
    assert_eq!(
        all_pages(
            &a,
            ListParams {
                live: Some(false),
                ..queries[0].clone()
            },
            100
        )
        .await
        .len(),
        0
    );

    // One stored session stops being live: the database answers, with the same
    // sessions in the same order, that one now not live (and first: closing it
    // updated it).
    let closed = a_ids[0].clone();
    a.close_session(&closed).await.expect("session/close");
    for ((q, want), before) in queries.iter().zip(expected_lens).zip(&live_listings) {
        let whole = all_pages(&a, q.clone(), 100).await;
        assert_eq!(whole.len(), want, "{q:?}");
        assert_listing_order(&whole);
        let mut expected = ids(before);
        if expected.contains(&closed.0) {
            expected.retain(|i| *i != closed.0);
            expected.insert(0, closed.0.clone());
        }
        assert_eq!(ids(&whole), expected, "{q:?}");
        for s in &whole {
            assert_eq!(s.live, s.session_id != closed);
        }
        for limit in [1, 3] {
            assert_eq!(
                ids(&all_pages(&a, q.clone(), limit).await),
                ids(&whole),
                "{q:?}"
            );
        }
    }
    let not_live = all_pages(
        &a,
        ListParams {
            live: Some(false),
            ..queries[0].clone()
        },
        100,
    )
    .await;
    assert_eq!(ids(&not_live), vec![closed.0.clone()]);

    // Deleted, it is gone, and every remaining session is live again (memory).
    a.delete_session(&closed).await.expect("session/delete");
    let whole = all_pages(&a, queries[0].clone(), 100).await;
    let mut want = ids(&live_listings[0]);
    want.retain(|i| *i != closed.0);
    assert_eq!(ids(&whole), want);
    assert_eq!(ids(&all_pages(&a, queries[0].clone(), 2).await), want);
}

/// `cwd` (exact) and `title_contains` (case-insensitive) narrow a listing, the same
/// from memory and from the database, with paging.
#[tokio::test]
async fn cwd_and_title_filters_narrow_the_listing_from_memory_and_database() {
    let d = Daemon::start().await;
    let c = d.client().await;
    let mut made = Vec::new();
    for (i, (cwd, title)) in [
        ("/work/a", "Fix the Parser"),
        ("/work/a", "write docs"),
        ("/work/b", "parser benchmarks"),
        ("/work/a", "PARSER tests"),
        ("/work/ab", "parser in ab"),
    ]
    .into_iter()
    .enumerate()
    {
        let s = c
            .new_session(NewSessionParams {
                cwd: Some(cwd.to_owned()),
                title: Some(format!("{title} {i}")),
                keep_siblings: Some(true),
                ..Default::default()
            })
            .await
            .expect("session/new")
            .session;
        made.push(s.session_id);
    }
    let ids = |v: Vec<SessionInfo>| {
        let mut v: Vec<SessionId> = v.into_iter().map(|s| s.session_id).collect();
        v.sort();
        v
    };
    let want = |idx: &[usize]| {
        let mut v: Vec<SessionId> = idx.iter().map(|&i| made[i].clone()).collect();
        v.sort();
        v
    };
    let query = |cwd: Option<&str>, title: Option<&str>| ListParams {
        owner: Some("any".into()),
        cwd: cwd.map(str::to_owned),
        title_contains: title.map(str::to_owned),
        ..Default::default()
    };
    for round in ["memory", "database"] {
        let a = all_pages(&c, query(Some("/work/a"), None), 1).await;
        assert_eq!(ids(a), want(&[0, 1, 3]), "cwd from {round}");
        let p = all_pages(&c, query(None, Some("parSER")), 2).await;
        assert_eq!(ids(p), want(&[0, 2, 3, 4]), "title from {round}");
        let both = all_pages(&c, query(Some("/work/a"), Some("parser")), 1).await;
        assert_eq!(ids(both), want(&[0, 3]), "both from {round}");
        let none = all_pages(&c, query(Some("/work"), None), 5).await;
        assert!(none.is_empty(), "cwd is an exact match ({round})");
        // Unload one matching session: the database answers the next round.
        c.close_session(&made[3]).await.expect("close");
    }
}
