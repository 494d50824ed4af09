//! `Patch<T>`: a field that may be absent (leave as is), `null` (clear) or a value (set).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A three-state field for merge updates. Use with `#[serde(default, skip_serializing_if = "Patch::is_absent")]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Patch<T> {
    /// The field was not sent: keep the current value.
    #[default]
    Absent,
    /// The field was sent as `null`: clear the current value.
    Clear,
    /// The field was sent with a value: set it.
    Set(T),
}

impl<T> Patch<T> {
    /// True when the field was not sent.
    pub fn is_absent(&self) -> bool {
        matches!(self, Patch::Absent)
    }

    /// Applies the patch to a current value.
    pub fn apply_to(self, current: &mut Option<T>) {
        match self {
            Patch::Absent => {}
            Patch::Clear => *current = None,
            Patch::Set(v) => *current = Some(v),
        }
    }

    /// The value being set, if any.
    pub fn as_set(&self) -> Option<&T> {
        match self {
            Patch::Set(v) => Some(v),
            _ => None,
        }
    }
}

impl<T> From<Option<T>> for Patch<T> {
    fn from(v: Option<T>) -> Self {
        match v {
            Some(v) => Patch::Set(v),
            None => Patch::Clear,
        }
    }
}

impl<T: Serialize> Serialize for Patch<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Patch::Set(v) => v.serialize(s),
            _ => s.serialize_none(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Only called when the field is present; absence comes from `#[serde(default)]`.
        Ok(Option::<T>::deserialize(d)?.into())
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Patch<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Patch_{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // On the wire: absent (keep), `null` (clear) or a value (set).
        Option::<T>::json_schema(generator)
    }

    fn inline_schema() -> bool {
        true
    }
}
