//! The router's side of remote work: publishes jobs to the work-queue stream, matches
//! results to waiting callers (exactly one per job; the rest are counted), and keeps
//! the table of live workers from their heartbeats.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use futures_util::StreamExt;
use tokio::sync::oneshot;

use super::protocol::{self, Heartbeat, Status};
use super::{RemoteConfig, RemoteError};
use crate::metrics::LatencyWindow;
use crate::sync::lock;
use crate::types::{RemoteStats, WorkerInfo};

/// Jobs the stream holds at most; beyond, publishing fails and the work runs locally.
const STREAM_MAX_MSGS: i64 = 100_000;
/// How long publishing a job (and its stream ack) may take before it runs locally.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);
/// Round-trip overhead assumed before the first measurement (ns).
const INITIAL_ROUND_TRIP_NS: u64 = 1_000_000;

/// A worker's answer, as the waiting caller gets it.
#[derive(Debug)]
pub(crate) struct RemoteOutcome {
    pub(crate) status: Status,
    pub(crate) body: Vec<u8>,
    /// The task's run time on the worker (0 when not run).
    pub(crate) run_ns: u64,
}

/// Relaxed tallies of the remote side.
#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    expired: AtomicU64,
    timed_out: AtomicU64,
    duplicates: AtomicU64,
    malformed: AtomicU64,
    redelivered: AtomicU64,
    publish_failed: AtomicU64,
}

/// The remote side of a router.
pub(crate) struct Remote {
    cfg: RemoteConfig,
    client: async_nats::Client,
    js: jetstream::Context,
    results_subject: String,
    /// Task names registered with the router builder.
    tasks: HashSet<&'static str>,
    /// Callers waiting for a result, by job id; bounded by `cfg.max_in_flight`. An entry
    /// is removed by the first result, by the caller's timeout, or when the caller goes.
    pending: Mutex<HashMap<u64, oneshot::Sender<RemoteOutcome>>>,
    next_id: AtomicU64,
    /// Workers by id, with when their last heartbeat came.
    workers: Mutex<HashMap<String, (Heartbeat, Instant)>>,
    /// Measured round-trip overhead (total minus the worker's run time) per job.
    round_trip: LatencyWindow,
    /// EWMA of the round-trip overhead in ns (everything but the run: transport, the
    /// wait for a free worker, result delivery), for the remote finish estimate.
    round_trip_ema_ns: AtomicU64,
    /// EWMA of publishing a job until the stream's ack, in ns: the transport alone.
    publish_low_ns: AtomicU64,
    epoch: Instant,
    counters: Counters,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("results_subject", &self.results_subject)
            .field("tasks", &self.tasks)
            .finish_non_exhaustive()
    }
}

/// Opens (or creates) the work-queue stream.
pub(crate) async fn ensure_stream(
    js: &jetstream::Context,
    max_message_bytes: usize,
) -> Result<stream::Stream, RemoteError> {
    js.get_or_create_stream(stream::Config {
        name: protocol::STREAM.to_string(),
        subjects: vec![format!("{}>", protocol::JOB_PREFIX)],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        max_messages: STREAM_MAX_MSGS,
        discard: stream::DiscardPolicy::New,
        max_message_size: i32::try_from(max_message_bytes).unwrap_or(i32::MAX),
        ..Default::default()
    })
    .await
    .map_err(|e| RemoteError::Setup {
        what: format!("stream {}", protocol::STREAM),
        reason: e.to_string(),
    })
}

impl Remote {
    /// Connects, opens the stream, and starts listening for results and heartbeats.
    pub(crate) async fn connect(
        cfg: RemoteConfig,
        tasks: HashSet<&'static str>,
    ) -> Result<Arc<Remote>, RemoteError> {
        cfg.check()?;
        let client = cfg.nats.connect().await?;
        let js = jetstream::new(client.clone());
        ensure_stream(&js, cfg.nats.max_message_bytes).await?;
        // Unique per router: process, start time, and a per-process counter.
        static ROUTERS: AtomicU64 = AtomicU64::new(0);
        let router_id = format!(
            "r{}-{:x}-{}",
            std::process::id(),
            super::unix_ms(),
            ROUTERS.fetch_add(1, Relaxed)
        );
        let results_subject = protocol::results_subject(&router_id);
        let subscribe_err = |e: async_nats::SubscribeError| RemoteError::Setup {
            what: "subscription".to_string(),
            reason: e.to_string(),
        };
        let results = client
            .subscribe(results_subject.clone())
            .await
            .map_err(subscribe_err)?;
        let heartbeats = client
            .subscribe(protocol::HEARTBEAT_SUBJECT)
            .await
            .map_err(subscribe_err)?;
        let remote = Arc::new(Remote {
            cfg,
            client,
            js,
            results_subject,
            tasks,
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            workers: Mutex::new(HashMap::new()),
            round_trip: LatencyWindow::default(),
            round_trip_ema_ns: AtomicU64::new(INITIAL_ROUND_TRIP_NS),
            publish_low_ns: AtomicU64::new(INITIAL_ROUND_TRIP_NS / 2),
            epoch: Instant::now(),
            counters: Counters::default(),
        });
        tokio::spawn(results_loop(Arc::downgrade(&remote), results));
        tokio::spawn(heartbeat_loop(Arc::downgrade(&remote), heartbeats));
        Ok(remote)
    }

    pub(crate) fn config(&self) -> &RemoteConfig {
        &self.cfg
    }

    /// True when `name` was registered with the router.
    pub(crate) fn serves(&self, name: &str) -> bool {
        self.tasks.contains(name)
    }

    fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// The measured round-trip overhead (ns), queueing at the workers included.
    pub(crate) fn round_trip_ns(&self) -> u64 {
        self.round_trip_ema_ns.load(Relaxed)
    }

    /// The transport's round trip (ns): twice the publish-to-ack time's low-water mark
    /// (job there, result back). Work must be well above it to be worth sending. A
    /// low-water mark, not a mean: on a saturated router the publish waits for a CPU,
    /// and that wait is the local machine's, which offloading relieves, not the link's.
    pub(crate) fn transport_ns(&self) -> u64 {
        self.publish_low_ns.load(Relaxed).saturating_mul(2)
    }

    /// Estimated time from now until a job of task `name` costing `cost_ns` finishes
    /// remotely: the round trip, the wait behind what the live workers already hold,
    /// and the work. `None` when remote is unavailable for it: no connection, no live
    /// worker serving it, or its workers already hold
    /// [`RemoteConfig::queued_per_slot`](super::RemoteConfig::queued_per_slot) jobs per slot waiting.
    pub(crate) fn estimate_finish_ns(&self, name: &str, cost_ns: u64) -> Option<u64> {
        if !self.connected() {
            return None;
        }
        let (parallelism, busy) = {
            let workers = lock(&self.workers);
            workers
                .values()
                .filter(|(hb, seen)| {
                    seen.elapsed() < self.cfg.worker_timeout && hb.tasks.iter().any(|t| t == name)
                })
                .fold((0usize, 0usize), |(p, b), (hb, _)| {
                    (p + hb.parallelism, b + hb.running + hb.queued)
                })
        };
        if parallelism == 0 {
            return None;
        }
        let mine = lock(&self.pending).len();
        let backlog = busy.max(mine);
        if backlog >= (1 + self.cfg.queued_per_slot) * parallelism {
            return None;
        }
        let ahead = (backlog + 1).saturating_sub(parallelism) as u64;
        let wait = ahead.saturating_mul(cost_ns) / parallelism as u64;
        Some(self.round_trip_ns() + wait + cost_ns)
    }

    /// Publishes a job of task `name` and registers the caller's wait for it.
    /// `Err` when it could not be sent (the caller runs the work locally instead).
    pub(crate) async fn send(
        &self,
        name: &str,
        body: Vec<u8>,
        deadline_unix_ms: u64,
    ) -> Result<(u64, oneshot::Receiver<RemoteOutcome>), ()> {
        if body.len() > self.cfg.nats.max_message_bytes {
            return Err(());
        }
        let id = self.next_id.fetch_add(1, Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = lock(&self.pending);
            if pending.len() >= self.cfg.max_in_flight {
                return Err(());
            }
            pending.insert(id, tx);
        }
        let mut headers = HeaderMap::new();
        headers.insert(protocol::H_JOB, id.to_string().as_str());
        headers.insert(protocol::H_REPLY, self.results_subject.as_str());
        headers.insert(protocol::H_DEADLINE, deadline_unix_ms.to_string().as_str());
        let publish = async {
            let ack = self
                .js
                .publish_with_headers(protocol::job_subject(name), headers, body.into())
                .await
                .map_err(|_| ())?;
            ack.await.map_err(|_| ())
        };
        let t0 = Instant::now();
        match tokio::time::timeout(PUBLISH_TIMEOUT, publish).await {
            Ok(Ok(_)) => {
                self.counters.sent.fetch_add(1, Relaxed);
                let took = t0.elapsed().as_nanos() as u64;
                let _ = self
                    .publish_low_ns
                    .fetch_update(Relaxed, Relaxed, |low| Some(low_water(low, took)));
                Ok((id, rx))
            }
            _ => {
                self.forget(id);
                self.counters.publish_failed.fetch_add(1, Relaxed);
                Err(())
            }
        }
    }

    /// The caller stopped waiting for job `id` (timeout, or it went away): a later
    /// result for it is counted as a duplicate.
    pub(crate) fn forget(&self, id: u64) {
        lock(&self.pending).remove(&id);
    }

    /// Records how a remote job ended, from the caller's side.
    pub(crate) fn record_end(&self, status: Option<Status>, total_ns: u64, run_ns: u64) {
        let c = &self.counters;
        match status {
            Some(Status::Ok) => {
                c.completed.fetch_add(1, Relaxed);
                let overhead = total_ns.saturating_sub(run_ns);
                self.round_trip
                    .record(overhead, self.epoch.elapsed().as_nanos() as u64);
                let _ = self
                    .round_trip_ema_ns
                    .fetch_update(Relaxed, Relaxed, |ema| Some(ema - ema / 8 + overhead / 8));
            }
            Some(Status::Expired) => {
                c.expired.fetch_add(1, Relaxed);
            }
            Some(_) => {
                c.failed.fetch_add(1, Relaxed);
            }
            None => {
                c.timed_out.fetch_add(1, Relaxed);
            }
        }
    }

    fn on_result(&self, msg: async_nats::Message) {
        let header = |name: &str| {
            msg.headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_string())
        };
        let id = protocol::parse_u64(header(protocol::H_JOB).as_deref());
        let status = header(protocol::H_STATUS).and_then(|s| Status::parse(&s));
        let (Some(id), Some(status)) = (id, status) else {
            self.counters.malformed.fetch_add(1, Relaxed);
            return;
        };
        if msg.payload.len() > self.cfg.nats.max_message_bytes {
            self.counters.malformed.fetch_add(1, Relaxed);
            return;
        }
        if protocol::parse_u64(header(protocol::H_DELIVERED).as_deref()).is_some_and(|d| d > 1) {
            self.counters.redelivered.fetch_add(1, Relaxed);
        }
        let run_ns = protocol::parse_u64(header(protocol::H_RUN_NS).as_deref()).unwrap_or(0);
        let waiter = lock(&self.pending).remove(&id);
        match waiter {
            Some(tx) => {
                let _ = tx.send(RemoteOutcome {
                    status,
                    body: msg.payload.to_vec(),
                    run_ns,
                });
            }
            // At-least-once delivery: a redelivered job's second result, or one that
            // came after its caller's deadline. Exactly one result per job is used.
            None => {
                self.counters.duplicates.fetch_add(1, Relaxed);
            }
        }
    }

    fn on_heartbeat(&self, msg: async_nats::Message) {
        match Heartbeat::parse(&msg.payload) {
            Some(hb) => {
                let mut workers = lock(&self.workers);
                // Bounded: forget workers silent for long, and never track more than 4096.
                let timeout = self.cfg.worker_timeout * 10;
                workers.retain(|_, (_, seen)| seen.elapsed() < timeout);
                if workers.len() < 4_096 || workers.contains_key(&hb.worker) {
                    workers.insert(hb.worker.clone(), (hb, Instant::now()));
                }
            }
            None => {
                self.counters.malformed.fetch_add(1, Relaxed);
            }
        }
    }

    /// A snapshot for `RouterStats::remote`.
    pub(crate) fn stats(&self) -> RemoteStats {
        let c = &self.counters;
        let workers = lock(&self.workers)
            .values()
            .filter(|(_, seen)| seen.elapsed() < self.cfg.worker_timeout)
            .map(|(hb, seen)| WorkerInfo {
                id: hb.worker.clone(),
                parallelism: hb.parallelism,
                running: hb.running,
                queued: hb.queued,
                tasks: hb.tasks.clone(),
                last_seen_ms: seen.elapsed().as_millis() as u64,
            })
            .collect();
        let rt = self.round_trip.summary(0.15);
        RemoteStats {
            connected: self.connected(),
            results_subject: self.results_subject.clone(),
            tasks: {
                let mut t: Vec<String> = self.tasks.iter().map(|s| s.to_string()).collect();
                t.sort();
                t
            },
            workers,
            in_flight: lock(&self.pending).len(),
            sent: c.sent.load(Relaxed),
            completed: c.completed.load(Relaxed),
            failed: c.failed.load(Relaxed),
            expired: c.expired.load(Relaxed),
            timed_out: c.timed_out.load(Relaxed),
            duplicates: c.duplicates.load(Relaxed),
            malformed: c.malformed.load(Relaxed),
            redelivered: c.redelivered.load(Relaxed),
            publish_failed: c.publish_failed.load(Relaxed),
            round_trip_p50_us: (rt.count > 0).then_some(rt.p50_us),
            round_trip_p99_us: (rt.count > 0).then_some(rt.p99_us),
        }
    }
}

async fn results_loop(weak: Weak<Remote>, mut sub: async_nats::Subscriber) {
    while let Some(msg) = sub.next().await {
        let Some(remote) = weak.upgrade() else { return };
        remote.on_result(msg);
    }
}

async fn heartbeat_loop(weak: Weak<Remote>, mut sub: async_nats::Subscriber) {
    while let Some(msg) = sub.next().await {
        let Some(remote) = weak.upgrade() else { return };
        remote.on_heartbeat(msg);
    }
}

/// A low-water mark of `sample`s: follows a lower sample at once and a higher one
/// slowly (1/64 of the way), so it sits near the link's best case and still adapts
/// when the link itself gets slower.
fn low_water(low: u64, sample: u64) -> u64 {
    if sample <= low {
        sample
    } else {
        low + (sample - low) / 64
    }
}

#[cfg(test)]
mod tests {
    use super::low_water;

    #[test]
    fn low_water_follows_drops_at_once_and_rises_slowly() {
        assert_eq!(low_water(1_000, 400), 400);
        // One slow publish (a starved runtime) barely moves it.
        assert_eq!(low_water(400, 6_800), 500);
        // A link that really got slower is followed (to within 63 ns: the step is an integer 1/64).
        let mut low = 400;
        for _ in 0..300 {
            low = low_water(low, 2_000);
        }
        assert!((1_930..=2_000).contains(&low), "{low}");
    }
}
