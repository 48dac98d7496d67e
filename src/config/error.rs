//! Configuration errors.

use std::fmt;

use serde::Serialize;

/// One broken rule: the field, what would be valid, and the value that was given.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    /// The offending field.
    pub field: &'static str,
    /// The rule it broke, phrased as what would be valid.
    pub rule: String,
    /// The rejected value, rendered as text.
    pub value: String,
}

impl Violation {
    pub(crate) fn new(
        field: &'static str,
        rule: impl Into<String>,
        value: impl fmt::Display,
    ) -> Self {
        Self {
            field,
            rule: rule.into(),
            value: value.to_string(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} (got {})", self.field, self.rule, self.value)
    }
}

/// Why a configuration was not accepted. Nothing is applied when any of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// One or more fields break a validation rule; each [`Violation`] names its field.
    #[error("invalid config: {}", join(.0))]
    Invalid(Vec<Violation>),
    /// The JSON is malformed, has a field of the wrong type, or has an unknown field.
    #[error("config json: {0}")]
    Parse(#[source] serde_json::Error),
}

impl ConfigError {
    /// The violations, when this is a validation failure.
    pub fn violations(&self) -> &[Violation] {
        match self {
            ConfigError::Invalid(v) => v,
            _ => &[],
        }
    }
}

fn join(v: &[Violation]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
