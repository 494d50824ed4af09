//! Property tests of the wire types: any record, verdict, override set and patch
//! round-trips through JSON text unchanged, temperatures included.

mod common;

use common::*;

use proptest::prelude::*;
use serde_json::Value;
use sessiond_protocol::events::Event;
use sessiond_protocol::params::*;
use sessiond_protocol::patch::Patch;
use sessiond_protocol::types::*;
use sessiond_protocol::TurnId;
use std::fmt::Debug;

fn arb_usage() -> impl Strategy<Value = Usage> {
    (any::<u64>(), any::<u64>()).prop_map(|(i, o)| usage(i, o))
}

/// Temperatures as people write them: short decimals, in and out of the valid 0..=2.
fn arb_temperature() -> impl Strategy<Value = f64> {
    (-5000i32..=5000).prop_map(|k| f64::from(k) / 1000.0)
}

/// Any finite temperature (the daemon rejects others; JSON has no NaN or infinity),
/// including 17-significant-digit ones such as 1.7181895301203323.
fn arb_any_temperature() -> impl Strategy<Value = f64> {
    prop_oneof![
        0.0..=2.0f64,
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
    ]
}

fn arb_overrides() -> impl Strategy<Value = Overrides> {
    (
        proptest::option::of(any::<String>()),
        proptest::option::of(any::<String>()),
        proptest::option::of(arb_temperature()),
    )
        .prop_map(|(model, model_provider, temperature)| Overrides {
            model,
            model_provider,
            temperature,
        })
}

fn arb_stop() -> impl Strategy<Value = (StopReason, Option<CancelCause>)> {
    prop_oneof![
        Just((StopReason::EndTurn, None)),
        Just((StopReason::Failed, None)),
        proptest::sample::select(CancelCause::ALL.to_vec())
            .prop_map(|c| (StopReason::Cancelled, Some(c))),
    ]
}

fn arb_verdict() -> impl Strategy<Value = TurnVerdict> {
    (
        "[a-zA-Z0-9_-]{1,40}",
        arb_stop(),
        proptest::option::of(any::<String>()),
        arb_usage(),
        any::<String>(),
    )
        .prop_map(
            |(id, (stop_reason, cancel_cause), error, usage, content)| TurnVerdict {
                turn_id: TurnId::from(id),
                stop_reason,
                cancel_cause,
                error,
                usage,
                content,
            },
        )
}

fn arb_patch<T: Debug + Clone + 'static>(
    inner: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Patch<T>> {
    prop_oneof![
        Just(Patch::Absent),
        Just(Patch::Clear),
        inner.prop_map(Patch::Set),
    ]
}

proptest! {
    #[test]
    fn usage_round_trips(u in arb_usage()) {
        let v = roundtrip(&u, USAGE_KEYS);
        prop_assert_eq!(v["input_tokens"].as_u64(), Some(u.input_tokens));
        prop_assert_eq!(v["output_tokens"].as_u64(), Some(u.output_tokens));
    }

    #[test]
    fn overrides_round_trip(o in arb_overrides()) {
        let v = roundtrip(&o, OVERRIDES_KEYS);
        prop_assert_eq!(v["model"].as_str(), o.model.as_deref());
        prop_assert_eq!(v["temperature"].as_f64(), o.temperature);
    }

    #[test]
    fn turn_verdicts_round_trip(t in arb_verdict()) {
        let v = roundtrip(&t, VERDICT_KEYS);
        prop_assert_eq!(v["stop_reason"].as_str(), Some(t.stop_reason.as_str()));
        prop_assert_eq!(v["cancel_cause"].as_str(), t.cancel_cause.map(|c| c.as_str()));
        // Inside turn_complete, and as a waited prompt's result.
        let ev = Event::TurnComplete { verdict: t.clone() };
        let back: Event = serde_json::from_str(&serde_json::to_string(&ev).unwrap()).unwrap();
        prop_assert_eq!(back, ev);
        let pr: PromptResult = serde_json::from_value(v).unwrap();
        prop_assert_eq!(pr, PromptResult::Finished(t));
    }

    #[test]
    fn overrides_patches_round_trip(
        model in arb_patch(any::<String>()),
        model_provider in arb_patch(any::<String>()),
        temperature in arb_patch(arb_temperature()),
    ) {
        let p = OverridesPatch { model, model_provider, temperature };
        let text = serde_json::to_string(&p).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let obj = v.as_object().unwrap();
        // Absent fields are not sent, cleared ones are null.
        for (name, absent, clear) in [
            ("model", p.model.is_absent(), p.model == Patch::Clear),
            ("model_provider", p.model_provider.is_absent(), p.model_provider == Patch::Clear),
            ("temperature", p.temperature.is_absent(), p.temperature == Patch::Clear),
        ] {
            prop_assert_eq!(obj.contains_key(name), !absent, "{}", name);
            if clear {
                prop_assert_eq!(&obj[name], &Value::Null);
            }
        }
        let back: OverridesPatch = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, p);
    }
}

proptest! {
    /// serde_json parses floats exactly only with its `float_roundtrip` feature, which
    /// the workspace enables for this: without it 1.7181895301203323 comes back as
    /// 1.7181895301203325.
    #[test]
    fn any_finite_temperature_round_trips_exactly(t in arb_any_temperature()) {
        let o = Overrides { temperature: Some(t), ..Default::default() };
        let back: Overrides = serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
        prop_assert_eq!(back.temperature.map(f64::to_bits), Some(t.to_bits()));
    }
}
