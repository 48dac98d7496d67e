//! Configuration of the NATS connection, the router's remote side and a worker.

use std::path::PathBuf;
use std::time::Duration;

use super::RemoteError;

/// How to authenticate to the NATS server.
#[derive(Clone, Default)]
pub enum NatsAuth {
    /// No credentials (a server on loopback, for example).
    #[default]
    None,
    /// A token.
    Token(String),
    /// A user and password.
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// A `.creds` file (JWT + NKey seed), as `nsc` writes them.
    CredsFile(PathBuf),
}

impl std::fmt::Debug for NatsAuth {
    /// Never prints a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NatsAuth::None => f.write_str("None"),
            NatsAuth::Token(_) => f.write_str("Token(<redacted>)"),
            NatsAuth::UserPassword { user, .. } => write!(f, "UserPassword({user}, <redacted>)"),
            NatsAuth::CredsFile(p) => write!(f, "CredsFile({})", p.display()),
        }
    }
}

/// Where the NATS server is and how to talk to it.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// Server URL, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// Credentials.
    pub auth: NatsAuth,
    /// Largest job or result body sent or accepted, in bytes (default 1 MiB; the
    /// server's own `max_payload` may be lower).
    pub max_message_bytes: usize,
    /// How long connecting may take before `build` fails.
    pub connect_timeout: Duration,
}

impl NatsConfig {
    /// A connection to `url` with no credentials and the default limits.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            auth: NatsAuth::None,
            max_message_bytes: 1 << 20,
            connect_timeout: Duration::from_secs(3),
        }
    }

    fn check(&self) -> Result<(), RemoteError> {
        if !(1_024..=64 << 20).contains(&self.max_message_bytes) {
            return Err(RemoteError::Config {
                field: "max_message_bytes",
                rule: "must be in 1 KiB ..= 64 MiB",
            });
        }
        Ok(())
    }

    /// Connects (the client then reconnects by itself after a lost connection).
    pub(crate) async fn connect(&self) -> Result<async_nats::Client, RemoteError> {
        self.check()?;
        let mut opts = async_nats::ConnectOptions::new()
            .connection_timeout(self.connect_timeout)
            .max_reconnects(None::<usize>);
        opts = match &self.auth {
            NatsAuth::None => opts,
            NatsAuth::Token(t) => opts.token(t.clone()),
            NatsAuth::UserPassword { user, password } => {
                opts.user_and_password(user.clone(), password.clone())
            }
            NatsAuth::CredsFile(path) => {
                opts.credentials_file(path)
                    .await
                    .map_err(|source| RemoteError::Credentials {
                        path: path.clone(),
                        source,
                    })?
            }
        };
        opts.connect(self.url.as_str())
            .await
            .map_err(|e| RemoteError::Connect {
                url: self.url.clone(),
                reason: e.to_string(),
            })
    }
}

/// The router's remote side.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// The connection.
    pub nats: NatsConfig,
    /// Work estimated below this (ns of CPU) never goes remote: a loopback round trip
    /// costs ~0.3–1 ms, so offloading pays only for work well above it. Default 2 ms.
    pub min_cost_ns: u64,
    /// Remote work is considered only when it is at least this many times the measured
    /// round-trip overhead (default 4).
    pub min_cost_over_round_trip: u64,
    /// Remote jobs of this router in flight at most (default 1024).
    pub max_in_flight: usize,
    /// A worker whose last heartbeat is older than this is considered gone (default
    /// 3 s: three missed heartbeats).
    pub worker_timeout: Duration,
    /// Local pressure at or above which remote is preferred when it fits the budget,
    /// even if the local pool could make it (default 0.7).
    pub offload_pressure: f64,
    /// Jobs waiting per worker slot, beyond the ones running, at most (default 3):
    /// enough that a worker never idles for a round trip between jobs, few enough
    /// that a dead worker strands little work. Every job sent must also fit its
    /// budget behind what is queued.
    pub queued_per_slot: usize,
}

impl RemoteConfig {
    /// The defaults, connecting to `url`.
    pub fn nats(url: impl Into<String>) -> Self {
        Self {
            nats: NatsConfig::new(url),
            min_cost_ns: 2_000_000,
            min_cost_over_round_trip: 4,
            max_in_flight: 1_024,
            worker_timeout: Duration::from_secs(3),
            offload_pressure: 0.7,
            queued_per_slot: 3,
        }
    }

    /// Sets the credentials.
    pub fn auth(mut self, auth: NatsAuth) -> Self {
        self.nats.auth = auth;
        self
    }

    pub(crate) fn check(&self) -> Result<(), RemoteError> {
        if self.max_in_flight == 0 {
            return Err(RemoteError::Config {
                field: "max_in_flight",
                rule: "must be >= 1",
            });
        }
        if !(self.offload_pressure.is_finite() && (0.0..=1.0).contains(&self.offload_pressure)) {
            return Err(RemoteError::Config {
                field: "offload_pressure",
                rule: "must be a finite number in [0, 1]",
            });
        }
        if !(1..=1_024).contains(&self.queued_per_slot) {
            return Err(RemoteError::Config {
                field: "queued_per_slot",
                rule: "must be in 1..=1024",
            });
        }
        if self.worker_timeout.is_zero() {
            return Err(RemoteError::Config {
                field: "worker_timeout",
                rule: "must be > 0",
            });
        }
        Ok(())
    }
}

/// A worker process's configuration.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The connection.
    pub nats: NatsConfig,
    /// Tasks run at once on the worker's own pool (default: the cores available).
    pub parallelism: usize,
    /// How long JetStream waits for an ack before redelivering (default 10 s); long
    /// tasks send in-progress acks every third of it, so they are not run twice.
    pub ack_wait: Duration,
    /// Deliveries of one job at most (default 5), so a job that kills every worker is
    /// not retried forever.
    pub max_deliver: i64,
    /// How often the worker publishes its heartbeat (default 1 s).
    pub heartbeat_every: Duration,
    /// The worker's id in heartbeats (default: host-less, `worker-<pid>-<random>`).
    pub id: String,
}

impl WorkerConfig {
    /// The defaults, connecting to `url`.
    pub fn nats(url: impl Into<String>) -> Self {
        Self {
            nats: NatsConfig::new(url),
            parallelism: crate::config::available_cores(),
            ack_wait: Duration::from_secs(10),
            max_deliver: 5,
            heartbeat_every: Duration::from_secs(1),
            id: format!(
                "worker-{}-{:x}",
                std::process::id(),
                super::unix_ms() & 0xFF_FFFF
            ),
        }
    }

    /// Sets the credentials.
    pub fn auth(mut self, auth: NatsAuth) -> Self {
        self.nats.auth = auth;
        self
    }

    pub(crate) fn check(&self) -> Result<(), RemoteError> {
        let bad = |field, rule| Err(RemoteError::Config { field, rule });
        if !(1..=4_096).contains(&self.parallelism) {
            return bad("parallelism", "must be in 1..=4096");
        }
        if self.ack_wait < Duration::from_millis(100) {
            return bad("ack_wait", "must be >= 100 ms");
        }
        if self.max_deliver < 1 {
            return bad("max_deliver", "must be >= 1");
        }
        if self.heartbeat_every.is_zero() {
            return bad("heartbeat_every", "must be > 0");
        }
        Ok(())
    }
}
