//! Several writers (create, prompt, configure, upload) against the real daemon, and
//! `kill -9` while they write, three times over: every write the daemon acknowledged
//! is there after each restart. (`session/rename` joins the writers once it exists.)

use sessiond_protocol::params::OverridesPatch;
use sessiond_protocol::{Patch, SessionId};
use sessiond_tests::{new_session, wait_for, Daemon};
use std::sync::{Arc, Mutex};

/// One acknowledged write and what must be found after a restart.
#[derive(Debug, Clone)]
enum Ack {
    Created(SessionId),
    Turn(SessionId, String),
    Model(SessionId, String),
    Upload(SessionId, String),
}

async fn writer(d_socket: std::path::PathBuf, w: usize, acks: Arc<Mutex<Vec<Ack>>>) {
    let Ok(c) = sessiond_client::Client::connect_unix(&d_socket, Default::default()).await else {
        return;
    };
    let Ok(_) = c.initialize(&format!("writer-{w}"), None).await else {
        return;
    };
    let push = |a: Ack| acks.lock().unwrap().push(a);
    for i in 0.. {
        let Ok(r) = c
            .new_session(sessiond_protocol::params::NewSessionParams {
                agent: Some("echo".into()),
                keep_siblings: Some(true),
                ..Default::default()
            })
            .await
        else {
            return;
        };
        let id = r.session.session_id;
        push(Ack::Created(id.clone()));
        let text = format!("writer {w} turn {i}");
        if c.prompt_wait(&id, text.clone()).await.is_err() {
            return;
        }
        push(Ack::Turn(id.clone(), text));
        let model = format!("m-{w}-{i}");
        let patch = OverridesPatch {
            model: Patch::Set(model.clone()),
            ..Default::default()
        };
        if c.configure(&id, patch).await.is_err() {
            return;
        }
        push(Ack::Model(id.clone(), model));
        let bytes = format!("upload {w} {i}");
        match c.upload_bytes(&id, "f.txt", None, bytes.as_bytes()).await {
            Ok(e) => push(Ack::Upload(id, e.ref_id)),
            Err(_) => return,
        }
    }
}

async fn check(d: &Daemon, acks: &[Ack]) {
    let c = d.client().await;
    for a in acks {
        match a {
            Ack::Created(id) => {
                c.get_session(id).await.expect("an acknowledged session");
            }
            Ack::Turn(id, text) => {
                let m = c.messages(id, None, None).await.expect("messages");
                assert!(
                    m.messages.iter().any(|m| &m.content == text),
                    "the prompt {text:?} of {id} is lost"
                );
            }
            Ack::Model(id, model) => {
                let s = c.get_session(id).await.expect("session");
                assert_eq!(s.overrides.model.as_deref(), Some(model.as_str()), "{id}");
            }
            Ack::Upload(id, ref_id) => {
                let u = c.uploads(id).await.expect("uploads");
                assert!(u.uploads.iter().any(|u| &u.ref_id == ref_id), "{id}");
            }
        }
    }
}

#[tokio::test]
async fn every_acknowledged_write_survives_repeated_kill_9() {
    let mut d = Daemon::start().await;
    let all = Arc::new(Mutex::new(Vec::<Ack>::new()));
    for round in 0..3 {
        let acks = Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..4)
            .map(|w| tokio::spawn(writer(d.socket(), w, acks.clone())))
            .collect();
        // Kill once the writers are well under way.
        let want = 24;
        wait_for("writes to be acknowledged", || async {
            (acks.lock().unwrap().len() >= want).then_some(())
        })
        .await;
        d = d.crash_and_restart().await;
        for t in tasks {
            let _ = t.await;
        }
        all.lock()
            .unwrap()
            .extend(acks.lock().unwrap().iter().cloned());
        let snapshot = all.lock().unwrap().clone();
        check(&d, &snapshot).await;
        // The daemon also takes new writes after each restart.
        let c = d.tui().await;
        let id = new_session(&c, "echo").await;
        c.prompt_wait(&id, format!("after round {round}"))
            .await
            .expect("turn");
    }
}
