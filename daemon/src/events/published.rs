//! A published event together with its JSON: serialised once, on first use (by the
//! event writer, right after publishing), and shared by every subscriber (each used
//! to serialise it again; issue 14's profile of many busy sessions).

use serde_json::value::RawValue;
use sessiond_protocol::EventEnvelope;
use std::ops::Deref;
use std::sync::OnceLock;

/// An event envelope and its JSON text, made when first asked for.
#[derive(Debug)]
pub struct Published {
    env: EventEnvelope,
    json: OnceLock<Option<Box<RawValue>>>,
}

impl Published {
    pub fn new(env: EventEnvelope) -> Published {
        Published {
            env,
            json: OnceLock::new(),
        }
    }

    /// An envelope with its JSON already made (an event replayed from the window).
    pub fn with_json(env: EventEnvelope, json: Box<RawValue>) -> Published {
        Published {
            env,
            json: OnceLock::from(Some(json)),
        }
    }

    /// The envelope as JSON (`session/update`'s `result`, the stored body); `None`
    /// only if it cannot be serialised.
    pub fn json(&self) -> Option<&RawValue> {
        self.json
            .get_or_init(|| match serde_json::value::to_raw_value(&self.env) {
                Ok(json) => Some(json),
                Err(e) => {
                    tracing::warn!(error = %e, seq = self.env.seq, "cannot serialise event");
                    None
                }
            })
            .as_deref()
    }

    pub fn envelope(&self) -> &EventEnvelope {
        &self.env
    }
}

impl Deref for Published {
    type Target = EventEnvelope;

    fn deref(&self) -> &EventEnvelope {
        &self.env
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_protocol::{Event, SessionId, TurnId};

    #[test]
    fn the_shared_json_is_the_envelope_serialised() {
        let env = EventEnvelope {
            session_id: SessionId("s".into()),
            seq: 7,
            at: "2026-12-01T00:00:00.000000Z".into(),
            event: Event::AgentMessageChunk {
                turn_id: TurnId("t".into()),
                text: "a \"quoted\" line\n".into(),
            },
        };
        let p = Published::new(env.clone());
        let back: EventEnvelope = serde_json::from_str(p.json().unwrap().get()).unwrap();
        assert_eq!(back, env);
        assert_eq!(
            p.json().unwrap().get(),
            serde_json::to_string(&env).unwrap()
        );
        assert_eq!(p.seq, 7);
    }
}
