//! Per-session overrides: validation before anything changes, and the merge rules of
//! `session/configure` (absent keeps, `null` clears, a provider without a model clears the model).

use super::{Caller, Store, StoreError};
use crate::agent::Agents;
use sessiond_protocol::params::OverridesPatch;
use sessiond_protocol::{Overrides, Patch, SessionId};
use std::sync::Arc;

fn check_text(field: &str, v: &str) -> Result<(), StoreError> {
    if v.trim().is_empty() {
        return Err(StoreError::InvalidParams(format!(
            "overrides.{field} must not be blank"
        )));
    }
    if v.len() > 256 {
        return Err(StoreError::InvalidParams(format!(
            "overrides.{field} is too long"
        )));
    }
    Ok(())
}

fn check_provider(v: &str, agents: &Agents) -> Result<(), StoreError> {
    check_text("model_provider", v)?;
    agents
        .get(v)
        .map(|_| ())
        .map_err(|e| StoreError::InvalidParams(format!("overrides.model_provider: {e}")))
}

fn check_temperature(t: f64) -> Result<(), StoreError> {
    if !t.is_finite() || !(0.0..=2.0).contains(&t) {
        return Err(StoreError::InvalidParams(
            "overrides.temperature must be a finite number within 0..=2".into(),
        ));
    }
    Ok(())
}

/// Validates a complete set of overrides (as given to `session/new`).
pub fn validate_full(o: &Overrides, agents: &Agents) -> Result<Overrides, StoreError> {
    if let Some(m) = &o.model {
        check_text("model", m)?;
    }
    if let Some(p) = &o.model_provider {
        check_provider(p, agents)?;
    }
    if let Some(t) = o.temperature {
        check_temperature(t)?;
    }
    Ok(o.clone())
}

/// Validates a patch and returns the merged overrides; `current` is untouched on error.
pub fn merge(
    current: &Overrides,
    patch: &OverridesPatch,
    agents: &Agents,
) -> Result<Overrides, StoreError> {
    if let Patch::Set(m) = &patch.model {
        check_text("model", m)?;
    }
    if let Patch::Set(p) = &patch.model_provider {
        check_provider(p, agents)?;
    }
    if let Patch::Set(t) = patch.temperature {
        check_temperature(t)?;
    }
    let mut out = current.clone();
    let provider_changed = match &patch.model_provider {
        Patch::Set(p) => out.model_provider.as_deref() != Some(p.as_str()),
        Patch::Clear => out.model_provider.is_some(),
        Patch::Absent => false,
    };
    patch
        .model_provider
        .clone()
        .apply_to(&mut out.model_provider);
    if provider_changed && patch.model.is_absent() {
        // A model belongs to its provider: switching provider without naming a model clears it.
        out.model = None;
    }
    patch.model.clone().apply_to(&mut out.model);
    patch.temperature.clone().apply_to(&mut out.temperature);
    Ok(out)
}

impl Store {
    /// `session/configure`: never waits for a running turn; applies from the next turn.
    pub async fn configure(
        self: &Arc<Self>,
        caller: &Caller,
        id: &SessionId,
        patch: &OverridesPatch,
    ) -> Result<Overrides, StoreError> {
        self.check_owner(caller, id).await?;
        self.ensure_live_for(Some(caller), id).await?;
        let agents = self.agents.clone();
        self.apply(id, |e| e.configure(caller, patch, &agents))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_config::Config;

    fn agents() -> Agents {
        let cfg =
            Config::from_toml_str("[agents.fast]\nkind = \"echo\"\nchunk_chars = 8\n").unwrap();
        Agents::from_config(&cfg)
    }

    fn patch(json: &str) -> OverridesPatch {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn absent_keeps_null_clears() {
        let a = agents();
        let cur = Overrides {
            model: Some("m".into()),
            model_provider: None,
            temperature: Some(0.5),
        };
        let out = merge(&cur, &patch(r#"{"temperature": null}"#), &a).unwrap();
        assert_eq!(out.model.as_deref(), Some("m"));
        assert_eq!(out.temperature, None);
    }

    #[test]
    fn provider_switch_without_model_clears_model() {
        let a = agents();
        let cur = Overrides {
            model: Some("m".into()),
            model_provider: Some("echo".into()),
            temperature: None,
        };
        let out = merge(&cur, &patch(r#"{"model_provider": "fast"}"#), &a).unwrap();
        assert_eq!(out.model, None);
        assert_eq!(out.model_provider.as_deref(), Some("fast"));
        let out = merge(
            &cur,
            &patch(r#"{"model_provider": "fast", "model": "x"}"#),
            &a,
        )
        .unwrap();
        assert_eq!(out.model.as_deref(), Some("x"));
        // Naming the same provider again keeps the model.
        let out = merge(&cur, &patch(r#"{"model_provider": "echo"}"#), &a).unwrap();
        assert_eq!(out.model.as_deref(), Some("m"));
    }

    #[test]
    fn invalid_values_are_rejected() {
        let a = agents();
        let cur = Overrides::default();
        for bad in [
            r#"{"model": "  "}"#,
            r#"{"model_provider": "nope"}"#,
            r#"{"temperature": 2.5}"#,
            r#"{"temperature": -0.1}"#,
        ] {
            assert!(merge(&cur, &patch(bad), &a).is_err(), "{bad} accepted");
        }
        assert!(serde_json::from_str::<OverridesPatch>(r#"{"colour": 1}"#).is_err());
        assert!(merge(&cur, &patch(r#"{"temperature": 2}"#), &a).is_ok());
    }
}
