//! The sparse patch type is generated beside [`super::RouterConfig`] by one macro; this
//! file holds its JSON parsing.

use super::{ConfigError, RouterConfigPatch};

impl RouterConfigPatch {
    /// Parses a patch from JSON. Unknown fields are an error.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Parse`] naming the unknown or mistyped field.
    pub fn from_json(s: &str) -> Result<RouterConfigPatch, ConfigError> {
        serde_json::from_str(s).map_err(ConfigError::Parse)
    }
}
