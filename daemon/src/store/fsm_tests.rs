//! Property test of the session state machine itself: random sequences of its
//! transitions (admit, enqueue, start_next, add_request, respond, cancel, finish,
//! claim, configure, begin_retire, cancel_all) driven directly on one `Entry`, with
//! callers that do or do not own it and commits that fail (the step's undo runs).
//! Checked against a model: ownership decides every refusal, the queue cap holds,
//! a failed commit changes nothing, and every admitted turn ends with exactly one
//! verdict, cancelled ones with exactly one cause.

use super::entry::QueuedTurn;
use super::event_writer::EventWriter;
use super::session_fsm::Retire;
use super::step::Step;
use super::{Caller, Entry, StoreError};
use crate::agent::Agents;
use crate::events::EventHub;
use crate::record::{SessionRecord, TurnRecord};
use proptest::prelude::*;
use sessiond_config::Config;
use sessiond_protocol::params::OverridesPatch;
use sessiond_protocol::{
    Mode, Patch, PendingRequest, RequestId, RequestKind, SessionId, SessionStatus, StopReason,
    TuiId, TurnId, TurnVerdict, Usage,
};
use std::collections::BTreeMap;
use std::sync::Arc;

const MAX_QUEUED: usize = 2;
const TUIS: usize = 3;

#[derive(Debug, Clone)]
enum T {
    Prompt {
        tui: usize,
        interrupt: bool,
        fail: bool,
    },
    Start,
    Request,
    Respond {
        tui: usize,
    },
    Cancel {
        tui: usize,
    },
    Finish {
        ok: bool,
    },
    Claim {
        tui: usize,
        take_over: bool,
        fail: bool,
    },
    Configure {
        tui: usize,
        fail: bool,
    },
    Retire {
        tui: usize,
        kill: bool,
        fail: bool,
    },
}

fn transition() -> impl Strategy<Value = T> {
    let tui = 0..=TUIS;
    prop_oneof![
        4 => (tui.clone(), any::<bool>(), prop::bool::weighted(0.2)).prop_map(|(tui, interrupt, fail)| T::Prompt { tui, interrupt, fail }),
        3 => Just(T::Start),
        1 => Just(T::Request),
        1 => tui.clone().prop_map(|tui| T::Respond { tui }),
        1 => tui.clone().prop_map(|tui| T::Cancel { tui }),
        3 => any::<bool>().prop_map(|ok| T::Finish { ok }),
        2 => (tui.clone(), any::<bool>(), prop::bool::weighted(0.3)).prop_map(|(tui, take_over, fail)| T::Claim { tui, take_over, fail }),
        1 => (tui.clone(), prop::bool::weighted(0.3)).prop_map(|(tui, fail)| T::Configure { tui, fail }),
        1 => (tui, any::<bool>(), prop::bool::weighted(0.5)).prop_map(|(tui, kill, fail)| T::Retire { tui, kill, fail }),
    ]
}

fn caller(tui: usize) -> Caller {
    Caller {
        tui: (tui < TUIS).then(|| TuiId(format!("tui_{tui}"))),
        local: true,
    }
}

/// Applies a step as `Store::step` + `Store::settle` would, with the commit
/// succeeding or failing.
fn settle<V>(e: &mut Entry, step: Step<V>, fail: bool) -> Result<V, ()> {
    if fail && !step.ops.is_empty() && step.durable {
        if let Some(undo) = step.undo {
            undo(e);
        }
        return Err(());
    }
    Ok(step.value)
}

fn entry(db: &crate::persist::Db) -> Entry {
    let id = SessionId("ses_fsm".into());
    let rec = SessionRecord {
        id: id.clone(),
        agent: "echo".into(),
        mode: Mode::Chat,
        title: None,
        cwd: None,
        owner: None,
        status: SessionStatus::Created,
        overrides: Default::default(),
        ttl_secs: None,
        created_at: crate::util::now_rfc3339(),
        updated_at: crate::util::now_rfc3339(),
        last_active_at: crate::util::now_rfc3339(),
        message_count: 0,
        round_count: 0,
        usage: Usage::default(),
        last_seq: 0,
        seq_reserved: 0,
    };
    let hub = Arc::new(EventHub::new(id, 0, Vec::new(), 64, 64, None));
    let writer = Arc::new(EventWriter::new(db.clone(), 64, 0));
    Entry::new(rec, 1, hub, writer)
}

fn run(ts: &[T]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = crate::persist::Db::open(dir.path(), dir.path()).unwrap();
    let agents = Agents::from_config(&Config::from_toml_str("").unwrap());
    let mut e = entry(&db);
    let mut owner: Option<TuiId> = None;
    let mut verdicts: BTreeMap<TurnId, usize> = BTreeMap::new();
    let mut admitted: Vec<TurnId> = Vec::new();
    let mut generation = 0;
    let mut running: Option<(TurnId, u64, super::cancel::CancelSlot)> = None;
    let mut next = 0u32;
    let mut retiring = false;
    for t in ts {
        match t.clone() {
            T::Prompt {
                tui,
                interrupt,
                fail,
            } => {
                let c = caller(tui);
                next += 1;
                let turn_id = TurnId(format!("turn_{next}"));
                let rec = TurnRecord {
                    turn_id: turn_id.0.clone(),
                    session_id: e.rec.id.clone(),
                    generation: 0,
                    prompt: "p".into(),
                    started_at: crate::util::now_rfc3339(),
                };
                let before = e.queue.len();
                let busy = e.turn.is_some() || *e.busy.borrow();
                match e.admit(&c, rec, MAX_QUEUED) {
                    Err(StoreError::NotOwned(_)) => {
                        prop_assert!(owner.is_some() && owner != c.tui, "refused an owner")
                    }
                    Err(StoreError::Busy(..)) => prop_assert!(busy && before >= MAX_QUEUED),
                    Err(StoreError::NotFound(_)) => prop_assert!(retiring),
                    Err(err) => return Err(TestCaseError::fail(format!("admit: {err}"))),
                    Ok(step) => {
                        prop_assert!(!retiring && c.may_mutate(owner.as_ref()));
                        if settle(&mut e, step, fail).is_err() {
                            prop_assert_eq!(e.admitting, 0, "a failed admission kept its slot");
                            prop_assert_eq!(e.queue.len(), before, "a failed admission queued");
                            continue;
                        }
                        let q = QueuedTurn {
                            turn_id: turn_id.clone(),
                            text: "p".into(),
                            attachments: Vec::new(),
                            waiters: Vec::new(),
                        };
                        let step = e.enqueue(1, q, interrupt);
                        prop_assert!(step.value.is_some());
                        admitted.push(turn_id);
                    }
                }
            }
            T::Start => {
                if e.turn.is_some() {
                    continue;
                }
                generation += 1;
                let step = e.start_next(1, generation);
                if let Some(s) = step.value {
                    running = Some((s.turn_id, generation, s.slot));
                }
            }
            T::Request => {
                if let Some((turn_id, _, _)) = &running {
                    next += 1;
                    let r = PendingRequest {
                        turn_id: turn_id.clone(),
                        request_id: RequestId(format!("r{next}")),
                        kind: RequestKind::Question,
                        prompt: "?".into(),
                        options: serde_json::Value::Null,
                    };
                    let _ = e.add_request(1, r);
                }
            }
            T::Respond { tui } => {
                let c = caller(tui);
                match e.respond(&c, None, serde_json::json!("yes")) {
                    Err(StoreError::NotOwned(_)) => prop_assert!(!c.may_mutate(owner.as_ref())),
                    _ => prop_assert!(c.may_mutate(owner.as_ref())),
                }
            }
            T::Cancel { tui } => {
                let c = caller(tui);
                match e.cancel(&c) {
                    Err(StoreError::NotOwned(_)) => prop_assert!(!c.may_mutate(owner.as_ref())),
                    Err(err) => return Err(TestCaseError::fail(format!("cancel: {err}"))),
                    Ok(step) => {
                        prop_assert!(c.may_mutate(owner.as_ref()));
                        if step.value.0 {
                            prop_assert!(running.is_some(), "cancel fired with nothing running");
                        }
                    }
                }
            }
            T::Finish { ok } => {
                let Some((turn_id, generation, slot)) = running.take() else {
                    continue;
                };
                let (stop_reason, cancel_cause) = match slot.cause() {
                    Some(c) => (StopReason::Cancelled, Some(c)),
                    None if ok => (StopReason::EndTurn, None),
                    None => (StopReason::Failed, None),
                };
                let v = TurnVerdict {
                    turn_id: turn_id.clone(),
                    stop_reason,
                    cancel_cause,
                    error: None,
                    usage: Usage::default(),
                    content: String::new(),
                };
                let _ = e.finish(1, generation, &v);
                *verdicts.entry(turn_id).or_default() += 1;
                prop_assert!(e.turn.is_none());
            }
            T::Claim {
                tui,
                take_over,
                fail,
            } => {
                let c = caller(tui);
                match e.claim(&c, take_over) {
                    Err(StoreError::NotOwned(_)) => prop_assert!(
                        owner.is_some() && owner != c.tui && !take_over,
                        "claim refused"
                    ),
                    Err(err) => return Err(TestCaseError::fail(format!("claim: {err}"))),
                    Ok(step) => {
                        prop_assert!(owner.is_none() || owner == c.tui || take_over);
                        if settle(&mut e, step, fail).is_ok() && c.tui.is_some() {
                            owner = c.tui.clone();
                        }
                    }
                }
                prop_assert_eq!(&e.rec.owner, &owner, "owner after claim");
            }
            T::Configure { tui, fail } => {
                let c = caller(tui);
                let before = e.rec.overrides.clone();
                let patch = OverridesPatch {
                    temperature: Patch::Set(1.0),
                    ..Default::default()
                };
                match e.configure(&c, &patch, &agents) {
                    Err(StoreError::NotOwned(_)) => prop_assert!(!c.may_mutate(owner.as_ref())),
                    Err(err) => return Err(TestCaseError::fail(format!("configure: {err}"))),
                    Ok(step) => {
                        if settle(&mut e, step, fail).is_err() {
                            prop_assert_eq!(&e.rec.overrides, &before, "a failed configure stuck");
                        }
                    }
                }
            }
            T::Retire { tui, kill, fail } => {
                let c = caller(tui);
                let how = if kill { Retire::Kill } else { Retire::Close };
                let who = (!kill).then_some(&c);
                match e.begin_retire(how, who) {
                    Err(StoreError::NotOwned(_)) => prop_assert!(!c.may_mutate(owner.as_ref())),
                    Err(StoreError::NotFound(_)) => prop_assert!(retiring),
                    Err(err) => return Err(TestCaseError::fail(format!("retire: {err}"))),
                    Ok(step) => {
                        if settle(&mut e, step, fail).is_err() {
                            prop_assert!(
                                !e.retiring,
                                "a failed teardown left the session retiring"
                            );
                            continue;
                        }
                        retiring = true;
                        let step = e.cancel_all(how.cause());
                        for (v, _) in step.value.1 {
                            prop_assert_eq!(v.cancel_cause, Some(how.cause()));
                            *verdicts.entry(v.turn_id).or_default() += 1;
                        }
                    }
                }
            }
        }
        prop_assert!(e.queue.len() <= MAX_QUEUED, "queue over the cap");
        prop_assert_eq!(e.admitting, 0);
    }
    // Drain: the running turn ends, queued ones end by a teardown.
    if let Some((turn_id, generation, slot)) = running.take() {
        let v = TurnVerdict {
            turn_id: turn_id.clone(),
            stop_reason: if slot.cause().is_some() {
                StopReason::Cancelled
            } else {
                StopReason::EndTurn
            },
            cancel_cause: slot.cause(),
            error: None,
            usage: Usage::default(),
            content: String::new(),
        };
        let _ = e.finish(1, generation, &v);
        *verdicts.entry(turn_id).or_default() += 1;
    }
    let step = e.cancel_all(Retire::Shutdown.cause());
    for (v, _) in step.value.1 {
        *verdicts.entry(v.turn_id).or_default() += 1;
    }
    for t in &admitted {
        prop_assert_eq!(verdicts.get(t).copied(), Some(1), "verdicts of {}", t);
    }
    prop_assert_eq!(
        verdicts.len(),
        admitted.len(),
        "a verdict for a turn never admitted"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, max_shrink_iters: 256, ..ProptestConfig::default() })]

    #[test]
    fn transitions_match_the_model(ts in proptest::collection::vec(transition(), 1..80)) {
        run(&ts)?;
    }
}

/// The graceful stop's step (`begin_retire` then `cancel_all`, joined with
/// `Step::then`): the queued turn ends with one cancelled verdict (cause `shutdown`)
/// whose write is in the step, the entry is retiring, and the joined undo puts it
/// back as it was.
#[test]
fn the_stop_step_joins_retire_and_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = crate::persist::Db::open(dir.path(), dir.path()).unwrap();
    let mut e = entry(&db);
    e.queue.push_back(QueuedTurn {
        turn_id: TurnId("turn_q".into()),
        text: "queued".into(),
        attachments: Vec::new(),
        waiters: Vec::new(),
    });
    let begin = e.begin_retire(Retire::Shutdown, None).unwrap();
    let step = begin.then(e.cancel_all(sessiond_protocol::CancelCause::Shutdown));
    assert!(e.retiring && e.queue.is_empty());
    assert_eq!(step.cancels, vec![sessiond_protocol::CancelCause::Shutdown]);
    assert!(matches!(
        &step.ops[..],
        [crate::persist::Op::FinishTurn { turn_id, verdict }]
            if turn_id.0 == "turn_q"
                && verdict.stop_reason == StopReason::Cancelled
                && verdict.cancel_cause == Some(sessiond_protocol::CancelCause::Shutdown)
    ));
    let (cancelled, dropped) = &step.value;
    assert!(cancelled.is_none());
    assert_eq!(dropped.len(), 1);
    let undo = step
        .undo
        .expect("the joined step keeps begin_retire's undo");
    undo(&mut e);
    assert!(!e.retiring);
}
