//! A worker process: pulls jobs of its registered tasks from the shared durable
//! consumers, runs them on a bounded pool of its own (panics caught), answers on each
//! job's reply subject, and publishes a heartbeat with its capacity and load.
//!
//! JetStream details (the README's remote section lists the server 2.9 traps): one durable pull consumer per task
//! name (filtered on that task's subject, so a work-queue stream accepts them all);
//! pulls of one message at a time, taken only when a pool slot is free, so one worker
//! never hoards; a job past its deadline is acked and answered `expired`, not run;
//! in-progress acks every third of `ack_wait` while a task runs (bounded by its
//! deadline), so a long task is not redelivered; the result is published before the
//! ack, so a worker dying in between causes a redelivery (and a duplicate result the
//! router ignores), never a lost job. A broken pull is recreated.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{self, pull};
use async_nats::jetstream::message::Acker;
use async_nats::jetstream::{self, AckKind};
use futures_util::StreamExt;
use tokio::sync::Semaphore;

use super::protocol::{self, Heartbeat, Status};
use super::{RemoteError, RemoteTask, TaskFailure, TaskFn, WorkerConfig, task_fn};

/// Builds a [`Worker`]: the connection and the tasks it runs.
#[derive(Debug)]
pub struct WorkerBuilder {
    cfg: WorkerConfig,
    tasks: Vec<(&'static str, Registered)>,
    error: Option<RemoteError>,
}

#[derive(Clone)]
struct Registered(TaskFn);

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TaskFn")
    }
}

impl WorkerBuilder {
    /// Registers task `T`: the worker pulls and runs jobs named `T::NAME`, and only those.
    pub fn register<T: RemoteTask>(mut self) -> Self {
        if let Err(e) = protocol::check_task_name(T::NAME) {
            self.error.get_or_insert(e.into());
        } else if !self.tasks.iter().any(|(n, _)| *n == T::NAME) {
            self.tasks.push((T::NAME, Registered(task_fn::<T>())));
        }
        self
    }

    /// Connects and opens the stream and the consumers of the registered tasks.
    ///
    /// # Errors
    ///
    /// [`RemoteError`] for a bad config or task name, no task registered, an
    /// unreachable server, or JetStream refusing the setup.
    #[tracing::instrument(name = "worker_build", skip_all, fields(worker = %self.cfg.id, parallelism = self.cfg.parallelism))]
    pub async fn build(self) -> Result<Worker, RemoteError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.cfg.check()?;
        if self.tasks.is_empty() {
            return Err(RemoteError::Config {
                field: "tasks",
                rule: "register at least one task",
            });
        }
        let client = self.cfg.nats.connect().await?;
        let js = jetstream::new(client.clone());
        let stream = super::client::ensure_stream(&js, self.cfg.nats.max_message_bytes).await?;
        let mut consumers = Vec::new();
        for (name, _) in &self.tasks {
            let durable = protocol::consumer_name(name);
            let consumer: consumer::PullConsumer = stream
                .get_or_create_consumer(
                    &durable,
                    pull::Config {
                        durable_name: Some(durable.clone()),
                        // One subject per consumer (2.9 ignores `filter_subjects`).
                        filter_subject: protocol::job_subject(name),
                        ack_policy: consumer::AckPolicy::Explicit,
                        ack_wait: self.cfg.ack_wait,
                        max_deliver: self.cfg.max_deliver,
                        max_ack_pending: 1_024,
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| RemoteError::Setup {
                    what: format!("consumer {durable}"),
                    reason: e.to_string(),
                })?;
            consumers.push((*name, consumer));
        }
        Ok(Worker {
            shared: Arc::new(Shared {
                cfg: self.cfg.clone(),
                client,
                tasks: self.tasks.into_iter().map(|(n, f)| (n, f.0)).collect(),
                slots: Arc::new(Semaphore::new(self.cfg.parallelism)),
                running: AtomicUsize::new(0),
                queued: AtomicUsize::new(0),
            }),
            consumers,
        })
    }
}

/// State the pull loops, the job handlers and the heartbeat share.
struct Shared {
    cfg: WorkerConfig,
    client: async_nats::Client,
    tasks: HashMap<&'static str, TaskFn>,
    /// Free pool slots (`parallelism` of them); a job holds one from pull to ack.
    slots: Arc<Semaphore>,
    /// Jobs running now (gauge).
    running: AtomicUsize,
    /// Jobs pulled and not yet running (gauge).
    queued: AtomicUsize,
}

/// A worker: see [`Worker::builder`].
pub struct Worker {
    shared: Arc<Shared>,
    consumers: Vec<(&'static str, consumer::PullConsumer)>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.shared.cfg.id)
            .field(
                "tasks",
                &self.consumers.iter().map(|c| c.0).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Starts building a worker.
    pub fn builder(cfg: WorkerConfig) -> WorkerBuilder {
        WorkerBuilder {
            cfg,
            tasks: Vec::new(),
            error: None,
        }
    }

    /// Runs until the process ends.
    ///
    /// # Errors
    ///
    /// Not in practice: lost connections and broken pulls are retried.
    pub async fn run(self) -> Result<(), RemoteError> {
        self.run_until(std::future::pending()).await
    }

    /// Runs until `shutdown` resolves, then stops pulling, lets running jobs finish
    /// (answering and acking them) and returns.
    ///
    /// # Errors
    ///
    /// Not in practice: lost connections and broken pulls are retried.
    #[tracing::instrument(name = "worker_run", skip_all, fields(worker = %self.shared.cfg.id))]
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), RemoteError> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut loops = Vec::new();
        for (name, consumer) in self.consumers {
            loops.push(tokio::spawn(pull_loop(
                self.shared.clone(),
                name,
                consumer,
                stop_rx.clone(),
            )));
        }
        loops.push(tokio::spawn(heartbeat_loop(
            self.shared.clone(),
            stop_rx.clone(),
        )));
        tracing::info!(
            worker = %self.shared.cfg.id,
            parallelism = self.shared.cfg.parallelism,
            tasks = ?self.shared.tasks.keys().collect::<Vec<_>>(),
            "remote worker running"
        );
        shutdown.await;
        let _ = stop_tx.send(true);
        for l in loops {
            let _ = l.await;
        }
        // Every slot back: every pulled job answered and acked (or left to redelivery).
        let _ = self
            .shared
            .slots
            .acquire_many(self.shared.cfg.parallelism as u32)
            .await;
        let _ = self.shared.client.flush().await;
        Ok(())
    }
}

/// Pulls jobs of one task, one at a time, while a pool slot is free.
async fn pull_loop(
    shared: Arc<Shared>,
    name: &'static str,
    consumer: consumer::PullConsumer,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut messages = None;
    loop {
        let permit = tokio::select! {
            p = shared.slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = stop.wait_for(|s| *s) => return,
        };
        if messages.is_none() {
            match consumer
                .stream()
                .max_messages_per_batch(1)
                .heartbeat(Duration::from_secs(5))
                .expires(Duration::from_secs(30))
                .messages()
                .await
            {
                Ok(m) => messages = Some(m),
                Err(e) => {
                    tracing::warn!(task = name, error = %e, "cannot open the pull; retrying");
                    drop(permit);
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
            }
        }
        let Some(stream) = messages.as_mut() else {
            continue;
        };
        let next = tokio::select! {
            m = stream.next() => m,
            _ = stop.wait_for(|s| *s) => return,
        };
        match next {
            Some(Ok(msg)) => {
                shared.queued.fetch_add(1, Relaxed);
                tokio::spawn(handle(shared.clone(), name, msg, permit));
            }
            Some(Err(e)) => {
                // A missed heartbeat or a reconnect: recreate the pull (an open report
                // says a pull can stall silently after a reconnect otherwise).
                tracing::warn!(task = name, error = %e, "pull failed; recreating it");
                messages = None;
                drop(permit);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            None => {
                messages = None;
                drop(permit);
            }
        }
    }
}

/// The protocol headers of a job.
struct JobHeaders {
    /// The job's id, echoed in the answer.
    job: String,
    /// The subject the answer goes to (one of the routers' results subjects).
    reply: String,
    /// The job's deadline (Unix ms): from then on it is answered `expired`, not run.
    deadline: u64,
}

impl JobHeaders {
    /// The headers of a job this protocol sent; `None` for any other message.
    fn parse(msg: &async_nats::Message) -> Option<JobHeaders> {
        let header = |h: &str| {
            msg.headers
                .as_ref()
                .and_then(|m| m.get(h))
                .map(|v| v.as_str().to_string())
        };
        Some(JobHeaders {
            job: header(protocol::H_JOB)?,
            reply: header(protocol::H_REPLY).filter(|r| r.starts_with(protocol::RESULTS_PREFIX))?,
            deadline: protocol::parse_u64(header(protocol::H_DEADLINE).as_deref())?,
        })
    }
}

/// What a job is answered: its status, the encoded output (empty unless `Ok`) and its
/// run time here (0 when not run).
struct Answer {
    status: Status,
    body: Vec<u8>,
    run_ns: u64,
}

impl Answer {
    /// An answer for a job that was not run.
    fn not_run(status: Status) -> Answer {
        Answer {
            status,
            body: Vec::new(),
            run_ns: 0,
        }
    }
}

/// Runs one job and answers it; holds its pool slot until acked.
async fn handle(
    shared: Arc<Shared>,
    name: &'static str,
    msg: jetstream::Message,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    // The job leaves the queue here, the one place that counts it out: everything
    // below answers it at once or runs it, with no wait before either.
    shared.queued.fetch_sub(1, Relaxed);
    let delivered = msg.info().map_or(1, |i| i.delivered.max(1) as u64);
    let (msg, acker) = msg.split();
    let Some(headers) = JobHeaders::parse(&msg) else {
        // Not a job this protocol sent: drop it for good (acked), never run it.
        tracing::warn!(task = name, "malformed job message acked and ignored");
        let _ = acker.ack().await;
        return;
    };
    let now = super::unix_ms();
    let answer = match shared.tasks.get(name).cloned() {
        _ if now >= headers.deadline => Answer::not_run(Status::Expired),
        None => Answer::not_run(Status::UnknownTask),
        _ if msg.payload.len() > shared.cfg.nats.max_message_bytes => {
            Answer::not_run(Status::BadPayload)
        }
        Some(f) => run_job(&shared, f, &msg, headers.deadline, &acker).await,
    };
    publish_answer(&shared, &headers, delivered, answer).await;
    // Result first, then the ack: dying in between means a redelivery (and a duplicate
    // result the router ignores), never a lost job.
    let _ = shared.client.flush().await;
    if let Err(e) = acker.ack().await {
        tracing::warn!(error = %e, "cannot ack a job (it will be redelivered)");
    }
}

/// Runs task `f` on the job's payload on the blocking pool, acking progress every
/// third of `ack_wait` until `deadline` so JetStream does not redeliver it meanwhile.
async fn run_job(
    shared: &Shared,
    f: TaskFn,
    msg: &async_nats::Message,
    deadline: u64,
    acker: &Acker,
) -> Answer {
    shared.running.fetch_add(1, Relaxed);
    let payload = msg.payload.clone();
    let started = Instant::now();
    let run = tokio::task::spawn_blocking(move || f(&payload));
    tokio::pin!(run);
    let mut progress = tokio::time::interval(shared.cfg.ack_wait / 3);
    progress.tick().await;
    let result = loop {
        tokio::select! {
            r = &mut run => break r,
            _ = progress.tick() => {
                // Still running: tell JetStream not to redeliver, until the
                // deadline passes (a bounded number of in-progress acks).
                if super::unix_ms() < deadline {
                    let _ = acker.ack_with(AckKind::Progress).await;
                }
            }
        }
    };
    shared.running.fetch_sub(1, Relaxed);
    let run_ns = started.elapsed().as_nanos() as u64;
    let (status, body) = match result {
        Ok(Ok(body)) if body.len() <= shared.cfg.nats.max_message_bytes => (Status::Ok, body),
        Ok(Ok(_)) | Ok(Err(TaskFailure::Panicked)) | Err(_) => (Status::Panicked, Vec::new()),
        Ok(Err(TaskFailure::BadPayload)) => (Status::BadPayload, Vec::new()),
    };
    Answer {
        status,
        body,
        run_ns,
    }
}

/// Publishes `answer` to the job's reply subject (a failure is logged: the router
/// then times the job out, or takes the answer of a redelivery).
async fn publish_answer(shared: &Shared, headers: &JobHeaders, delivered: u64, answer: Answer) {
    let mut h = HeaderMap::new();
    h.insert(protocol::H_JOB, headers.job.as_str());
    h.insert(protocol::H_STATUS, answer.status.as_str());
    h.insert(protocol::H_RUN_NS, answer.run_ns.to_string().as_str());
    h.insert(protocol::H_DELIVERED, delivered.to_string().as_str());
    if let Err(e) = shared
        .client
        .publish_with_headers(headers.reply.clone(), h, answer.body.into())
        .await
    {
        tracing::warn!(error = %e, "cannot publish a result");
    }
}

/// Publishes the worker's heartbeat every `heartbeat_every`.
async fn heartbeat_loop(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(shared.cfg.heartbeat_every);
    let mut tasks: Vec<String> = shared.tasks.keys().map(|s| s.to_string()).collect();
    tasks.sort();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let hb = Heartbeat {
            worker: shared.cfg.id.clone(),
            parallelism: shared.cfg.parallelism,
            running: shared.running.load(Relaxed).min(shared.cfg.parallelism),
            queued: shared.queued.load(Relaxed),
            tasks: tasks.clone(),
        };
        let Ok(body) = serde_json::to_vec(&hb) else {
            continue;
        };
        let _ = shared
            .client
            .publish(protocol::HEARTBEAT_SUBJECT, body.into())
            .await;
    }
}
