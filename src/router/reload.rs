//! Hot reload: poll a JSON patch file and apply it whole or not at all.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Router;
use crate::config::{ConfigError, RouterConfigPatch};

/// What one poll decided.
#[derive(Debug)]
pub enum ReloadEvent {
    /// Same content as last time (or as the last attempt): nothing to do.
    Unchanged,
    /// New content parsed into a patch, to be applied.
    Patch(Box<RouterConfigPatch>),
    /// New content that is not a valid patch; the live config is kept.
    Invalid(ConfigError),
    /// The file is gone or unreadable; the live config is kept.
    Missing(std::io::Error),
}

/// Remembers what was last seen so a file is applied once per change.
#[derive(Debug, Default)]
pub struct ReloadState {
    last: Option<String>,
    missing_reported: bool,
}

impl ReloadState {
    /// Classifies one read of the file. Pure: the caller does the I/O.
    pub fn observe(&mut self, read: std::io::Result<String>) -> ReloadEvent {
        match read {
            Err(e) => {
                self.last = None;
                if self.missing_reported {
                    ReloadEvent::Unchanged
                } else {
                    self.missing_reported = true;
                    ReloadEvent::Missing(e)
                }
            }
            Ok(text) => {
                self.missing_reported = false;
                if self.last.as_deref() == Some(text.as_str()) {
                    return ReloadEvent::Unchanged;
                }
                let parsed = RouterConfigPatch::from_json(&text);
                self.last = Some(text);
                match parsed {
                    Ok(p) => ReloadEvent::Patch(Box::new(p)),
                    Err(e) => ReloadEvent::Invalid(e),
                }
            }
        }
    }
}

/// Polls `path` every `interval` and applies each new valid patch to `router`;
/// invalid or half-written content is logged (naming the problem) and skipped, and is
/// retried when the file changes again. Runs until the router shuts down.
#[tracing::instrument(name = "config_reload", skip(router, interval), fields(path = %path.display()))]
pub async fn watch(router: Router, path: PathBuf, interval: Duration) {
    let mut state = ReloadState::default();
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        if router.is_shutting_down() {
            return;
        }
        // A small file, read off the async workers.
        let p = path.clone();
        let read = tokio::task::spawn_blocking(move || std::fs::read_to_string(p))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        apply_event(&router, &path, state.observe(read));
    }
}

/// Applies one classified poll result to the router, logging the outcome.
pub fn apply_event(router: &Router, path: &Path, event: ReloadEvent) {
    match event {
        ReloadEvent::Unchanged => {}
        ReloadEvent::Missing(e) => {
            tracing::warn!(path = %path.display(), error = %e, "config file unreadable; keeping the live config");
        }
        ReloadEvent::Invalid(e) => {
            tracing::warn!(path = %path.display(), error = %e, "config file is not a valid patch; keeping the live config");
        }
        ReloadEvent::Patch(p) => match router.patch_config(&p) {
            Ok(_) => tracing::info!(path = %path.display(), ?p, "config reloaded from file"),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "config file patch rejected; keeping the live config")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_each_change_once_and_reports_problems() {
        let mut s = ReloadState::default();
        assert!(matches!(
            s.observe(Ok(r#"{"batch_max_size": 4}"#.into())),
            ReloadEvent::Patch(_)
        ));
        assert!(matches!(
            s.observe(Ok(r#"{"batch_max_size": 4}"#.into())),
            ReloadEvent::Unchanged
        ));
        assert!(matches!(
            s.observe(Ok(r#"{"batch_max_size": "#.into())),
            ReloadEvent::Invalid(_)
        ));
        assert!(matches!(
            s.observe(Ok(r#"{"batch_max_size": "#.into())),
            ReloadEvent::Unchanged
        ));
        let gone = || Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(matches!(s.observe(gone()), ReloadEvent::Missing(_)));
        assert!(matches!(s.observe(gone()), ReloadEvent::Unchanged));
        assert!(matches!(
            s.observe(Ok(r#"{"batch_max_size": 4}"#.into())),
            ReloadEvent::Patch(_)
        ));
    }
}
