//! [`RouterBuilder`]: a router with a warm-started or loaded learner and, with the
//! `remote` feature, a connection to remote workers.

use super::Router;
use crate::config::{ConfigError, RouterConfig};
use crate::neural_router::NeuralRouter;
#[cfg(feature = "remote")]
use crate::remote::{RemoteConfig, RemoteError, RemoteTask};

/// Why [`RouterBuilder::build`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The router config broke a rule (each field is named).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The remote side could not be set up.
    #[cfg(feature = "remote")]
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

/// Builds a [`Router`]; see [`Router::builder`].
#[derive(Debug)]
pub struct RouterBuilder {
    cfg: RouterConfig,
    learner: Option<NeuralRouter>,
    #[cfg(feature = "remote")]
    remote: Option<RemoteConfig>,
    #[cfg(feature = "remote")]
    tasks: std::collections::HashSet<&'static str>,
    #[cfg(feature = "remote")]
    error: Option<RemoteError>,
}

impl Router {
    /// Starts building a router from `cfg`.
    ///
    /// # Examples
    ///
    /// ```
    /// use helixrouter::{Router, RouterConfig};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), helixrouter::router::BuildError> {
    /// let router = Router::builder(RouterConfig::default()).build().await?;
    /// assert_eq!(router.stats().submitted, 0);
    /// # Ok(()) }
    /// ```
    pub fn builder(cfg: RouterConfig) -> RouterBuilder {
        RouterBuilder {
            cfg,
            learner: None,
            #[cfg(feature = "remote")]
            remote: None,
            #[cfg(feature = "remote")]
            tasks: Default::default(),
            #[cfg(feature = "remote")]
            error: None,
        }
    }
}

impl RouterBuilder {
    /// Starts the neural router from `learner` (e.g. weights loaded from disk) instead
    /// of a warm start from the heuristic.
    pub fn learner(mut self, learner: NeuralRouter) -> Self {
        self.learner = Some(learner);
        self
    }

    /// Connects to remote workers through the NATS server of `remote`.
    #[cfg(feature = "remote")]
    pub fn remote(mut self, remote: RemoteConfig) -> Self {
        self.remote = Some(remote);
        self
    }

    /// Lets [`Router::run_task`] send tasks `T` to remote workers (they must register
    /// `T` too).
    #[cfg(feature = "remote")]
    pub fn register<T: RemoteTask>(mut self) -> Self {
        match crate::remote::protocol::check_task_name(T::NAME) {
            Ok(()) => {
                self.tasks.insert(T::NAME);
            }
            Err(e) => {
                self.error.get_or_insert(e.into());
            }
        }
        self
    }

    /// Builds the router (spawning its background tasks on the current Tokio runtime)
    /// and, when remote is configured, connects to NATS.
    ///
    /// # Errors
    ///
    /// [`BuildError::Config`] naming each broken field; with `remote`,
    /// [`BuildError::Remote`] when a task name is unusable or the server unreachable.
    #[tracing::instrument(name = "router_build", skip_all, fields(cpu_parallelism = self.cfg.cpu_parallelism))]
    pub async fn build(self) -> Result<Router, BuildError> {
        #[cfg(feature = "remote")]
        if let Some(e) = self.error {
            return Err(e.into());
        }
        self.cfg.validate()?;
        let learner = match self.learner {
            Some(l) => l,
            None => super::learning::warm_learner(&self.cfg),
        };
        let router = Router::with_learner(self.cfg, learner)?;
        #[cfg(feature = "remote")]
        if let Some(cfg) = self.remote {
            let remote = crate::remote::Remote::connect(cfg, self.tasks).await?;
            let _ = router.inner.remote.set(remote);
        }
        Ok(router)
    }
}
