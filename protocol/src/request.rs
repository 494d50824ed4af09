//! The options of a `request` event and the answers to it (PROTOCOL.md 11.3), with
//! the readings that keep clients and command agents written before them working.

use serde::{Deserialize, Serialize};

/// What choosing a permission option means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptionKind {
    AllowOnce,
    AllowAlways,
    RejectOnce,
    RejectAlways,
}

/// One choice a `request` event offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestOption {
    pub option_id: String,
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<OptionKind>,
}

impl RequestOption {
    /// Reads a request's `options`: a list of objects, or of plain strings (each is
    /// `{option_id: s, label: s}`); anything else offers nothing.
    pub fn parse_list(options: &serde_json::Value) -> Vec<RequestOption> {
        let Some(list) = options.as_array() else {
            return Vec::new();
        };
        list.iter()
            .filter_map(|o| match o {
                serde_json::Value::String(s) => Some(RequestOption {
                    option_id: s.clone(),
                    label: s.clone(),
                    kind: None,
                }),
                other => serde_json::from_value(other.clone()).ok(),
            })
            .collect()
    }
}

/// An answer to a `request`, as a client gives it to `session/respond`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RequestAnswer {
    /// A permission option was chosen.
    Selected { option_id: String },
    /// A question was answered.
    Answered { text: String },
    /// Nobody answered (the turn ended, or the client declined).
    Cancelled,
}

impl RequestAnswer {
    /// Reads a response: the tagged object, or a bare string, which selects the option
    /// with that id when there is one and otherwise answers with that text. `None`
    /// when the response says nothing usable.
    pub fn read(response: &serde_json::Value, options: &[RequestOption]) -> Option<RequestAnswer> {
        match response {
            serde_json::Value::String(s) => {
                if options.iter().any(|o| o.option_id == *s) {
                    Some(RequestAnswer::Selected {
                        option_id: s.clone(),
                    })
                } else {
                    Some(RequestAnswer::Answered { text: s.clone() })
                }
            }
            other => serde_json::from_value(other.clone()).ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_string_options_read_as_id_and_label() {
        let opts = RequestOption::parse_list(&json!([
            "yes",
            {"option_id": "no", "label": "No", "kind": "reject_once"}
        ]));
        assert_eq!(opts[0].option_id, "yes");
        assert_eq!(opts[0].label, "yes");
        assert_eq!(opts[1].kind, Some(OptionKind::RejectOnce));
    }

    #[test]
    fn answers_read_tagged_and_bare() {
        let opts = RequestOption::parse_list(&json!(["allow"]));
        assert_eq!(
            RequestAnswer::read(&json!("allow"), &opts),
            Some(RequestAnswer::Selected {
                option_id: "allow".into()
            })
        );
        assert_eq!(
            RequestAnswer::read(&json!("blue"), &opts),
            Some(RequestAnswer::Answered {
                text: "blue".into()
            })
        );
        assert_eq!(
            RequestAnswer::read(&json!({"outcome": "cancelled"}), &opts),
            Some(RequestAnswer::Cancelled)
        );
        assert_eq!(RequestAnswer::read(&json!(3), &opts), None);
        assert_eq!(
            serde_json::to_value(RequestAnswer::Selected {
                option_id: "a".into()
            })
            .unwrap(),
            json!({"outcome": "selected", "option_id": "a"})
        );
    }
}
