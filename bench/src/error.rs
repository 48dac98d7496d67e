//! What can go wrong while setting up or running the harness.

use std::path::PathBuf;

/// Why a harness run (or one of its outputs) failed.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A harness setting is out of range; the message names the setting and what is valid.
    #[error("invalid harness setting `{field}`: {reason}")]
    InvalidConfig {
        /// The setting.
        field: &'static str,
        /// What was wrong and what would be valid.
        reason: String,
    },
    /// The job mix cannot produce a schedule (no class, a non-positive weight, …).
    #[error("invalid job mix: {0}")]
    InvalidMix(String),
    /// A Tokio runtime for a step could not be built.
    #[error("building the tokio runtime failed: {0}")]
    Runtime(#[source] std::io::Error),
    /// The router rejected the configuration the harness built for it.
    #[error("router config rejected: {0}")]
    Router(#[from] helixrouter::config::ConfigError),
    /// The starvation probe task did not return its samples.
    #[error("starvation probe task failed: {0}")]
    Probe(String),
    /// The arrival generator's thread could not be started or panicked.
    #[error("arrival generator failed: {0}")]
    Generator(String),
    /// Writing an output file failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Serialising the report to JSON failed.
    #[error("serialising the report to json failed: {0}")]
    Json(#[from] serde_json::Error),
    /// The remote scenario's router could not connect or never saw a worker.
    #[error("remote scenario: {0}")]
    Remote(String),
    /// Pinning this process to a core failed.
    #[error("pinning to core {core} failed: {reason}")]
    Affinity {
        /// The core asked for.
        core: usize,
        /// Why it failed.
        reason: String,
    },
    /// Drawing the SVG chart failed.
    #[error("drawing the chart failed: {0}")]
    Chart(String),
}
