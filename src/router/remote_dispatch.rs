//! [`Router::run_task`]: a registered remote task runs on a remote worker when
//! [`Inner::route_remote`](super::Inner::route_remote) says so, else locally through
//! [`Router::run`]. A remote job ends exactly once: with the first result for it, at its
//! deadline (dropped), or when its caller goes away (dropped; a later result is
//! counted as a duplicate).

use std::sync::Arc;

use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use super::hint::WorkHint;
use super::job::Timing;
use super::record::Ended;
use super::route::RemoteRoute;
use super::{Inner, Rejected, Router};
use crate::remote::{Remote, RemoteOutcome, RemoteTask, protocol::Status};
use crate::types::{DecisionSource, Strategy};

/// Ends a remote job as dropped if its caller's future is dropped while it waits.
struct Waiting {
    inner: Arc<Inner>,
    id: u64,
    timing: Timing,
    done: bool,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.done {
            if let Some(remote) = self.inner.remote.get() {
                remote.forget(self.id);
            }
            self.inner.record_drop(Strategy::Remote, &self.timing, None);
        }
    }
}

/// A task routed to a remote worker and serialised, not sent yet.
struct RemoteJob {
    remote: Arc<Remote>,
    route: RemoteRoute,
    body: Vec<u8>,
    /// When `run_task` started routing it.
    start: quanta::Instant,
}

/// A remote job sent and counted as routed, its caller not yet answered.
struct Sent {
    remote: Arc<Remote>,
    rx: oneshot::Receiver<RemoteOutcome>,
    /// Ends the job as dropped if the caller goes away before it is answered.
    waiting: Waiting,
}

/// What a caller waiting for a remote job got.
#[derive(Debug)]
enum Reply {
    /// The worker's answer.
    Answer(RemoteOutcome),
    /// Nothing will answer: the remote side went away (router dropped).
    Gone,
    /// No answer within the job's budget.
    TimedOut,
}

/// How the router's books record a remote job's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Ran: completed (`ok`) or failed, `run_ns` on the worker (0 when failed).
    Finished { ok: bool, run_ns: u64 },
    /// Shed.
    Dropped,
}

/// The caller's result for what came back for a remote job of task `name`, `total_ns`
/// after it was routed with a budget of `budget_ms`, and how the job ends. Pure.
fn map_reply<O: DeserializeOwned>(
    reply: Reply,
    name: &str,
    total_ns: u64,
    budget_ms: u64,
) -> (Result<O, Rejected>, Ending) {
    let failed = |e: Rejected| {
        (
            Err(e),
            Ending::Finished {
                ok: false,
                run_ns: 0,
            },
        )
    };
    let out = match reply {
        Reply::Answer(out) => out,
        Reply::Gone => return (Err(Rejected::ShuttingDown), Ending::Dropped),
        Reply::TimedOut => return (Err(Rejected::TimedOut { budget_ms }), Ending::Dropped),
    };
    match out.status {
        Status::Ok => match serde_json::from_slice::<O>(&out.body) {
            Ok(v) => (
                Ok(v),
                Ending::Finished {
                    ok: true,
                    run_ns: out.run_ns,
                },
            ),
            Err(e) => failed(Rejected::RemoteFailed {
                reason: format!("output of {name} does not decode: {e}"),
            }),
        },
        Status::Expired => (
            Err(Rejected::BudgetImpossible {
                estimated_ms: total_ns as f64 / 1e6,
                budget_ms,
            }),
            Ending::Dropped,
        ),
        Status::Panicked => failed(Rejected::Panicked),
        Status::UnknownTask | Status::BadPayload => failed(Rejected::RemoteFailed {
            reason: format!("worker answered {} for {name}", out.status.as_str()),
        }),
    }
}

impl Router {
    /// Runs a remote task: on a remote worker when that finishes it within budget and
    /// the local path would not (or local pressure is high), otherwise locally exactly
    /// like [`Router::run`]. The hint's class defaults to `T::NAME`, so the task's cost
    /// is learned; tiny work never goes remote.
    ///
    /// # Errors
    ///
    /// As [`Router::run`], plus for remote runs [`Rejected::TimedOut`] (no result within
    /// the budget), [`Rejected::BudgetImpossible`] (a worker received it past its
    /// deadline) and [`Rejected::RemoteFailed`] (it did not decode on either side).
    pub async fn run_task<T: RemoteTask>(
        &self,
        hint: WorkHint,
        task: T,
    ) -> Result<T::Output, Rejected> {
        let hint = if hint.class.is_none() {
            hint.class(T::NAME)
        } else {
            hint
        };
        let Some(job) = self.route_task(&hint, &task) else {
            return self.run(hint, move || task.run()).await;
        };
        let Some(sent) = self.send(hint, T::NAME, job).await else {
            // Not sent (link lost, stream full, too many in flight): run it here.
            return self.run(hint, move || task.run()).await;
        };
        drop(task);
        self.await_reply(sent, T::NAME).await
    }

    /// The task routed remote and serialised; `None` when it runs locally: no remote
    /// side serves it, the route keeps it local, or it does not serialise.
    fn route_task<T: RemoteTask>(&self, hint: &WorkHint, task: &T) -> Option<RemoteJob> {
        let inner = &self.inner;
        let remote = match inner.remote.get() {
            Some(r) if r.serves(T::NAME) => r.clone(),
            _ => return None,
        };
        let start = quanta::Instant::now();
        let cfg = inner.config.effective();
        let route = inner.route_remote(&remote, hint, T::NAME, &cfg)?;
        drop(cfg);
        let body = serde_json::to_vec(task).ok()?;
        Some(RemoteJob {
            remote,
            route,
            body,
            start,
        })
    }

    /// Publishes the job of task `name`, then counts and logs it as routed remote;
    /// `None` when it could not be sent.
    async fn send(&self, hint: WorkHint, name: &'static str, job: RemoteJob) -> Option<Sent> {
        let inner = &self.inner;
        let deadline_ms = crate::remote::unix_ms() + hint.latency_budget_ms;
        let (id, rx) = job.remote.send(name, job.body, deadline_ms).await.ok()?;
        let mut hint = hint;
        let hint_ns = hint.compute_cost;
        hint.compute_cost = job.route.cost_ns;
        let timing = Timing {
            start: job.start,
            budget_ns: hint.budget_ns(),
            budget_ms: hint.latency_budget_ms,
            class: Some(job.route.class),
            hint_ns,
            units: hint.units,
            probe: false,
        };
        // Counted before its result can be taken (only this future takes it).
        inner.count_routed(Strategy::Remote, &timing);
        let busy = inner.pool.busy();
        inner.log_decision(
            &hint,
            Strategy::Remote,
            DecisionSource::Heuristic,
            &timing,
            busy,
        );
        Some(Sent {
            remote: job.remote,
            rx,
            waiting: Waiting {
                inner: Arc::clone(&self.inner),
                id,
                timing,
                done: false,
            },
        })
    }

    /// Waits for the sent job's result until its budget runs out, records how it ended
    /// and answers the caller.
    async fn await_reply<O: DeserializeOwned>(
        &self,
        sent: Sent,
        name: &str,
    ) -> Result<O, Rejected> {
        let Sent {
            remote,
            rx,
            mut waiting,
        } = sent;
        let (id, timing) = (waiting.id, waiting.timing);
        let left = std::time::Duration::from_nanos(timing.budget_ns)
            .saturating_sub(timing.start.elapsed());
        let reply = match tokio::time::timeout(left, rx).await {
            Ok(Ok(out)) => Reply::Answer(out),
            Ok(Err(_)) => Reply::Gone,
            Err(_) => Reply::TimedOut,
        };
        waiting.done = true;
        let total_ns = timing.start.elapsed().as_nanos() as u64;
        match &reply {
            Reply::Answer(out) => remote.record_end(Some(out.status), total_ns, out.run_ns),
            Reply::Gone => {}
            Reply::TimedOut => {
                remote.forget(id);
                remote.record_end(None, total_ns, 0);
            }
        }
        let (result, ending) = map_reply(reply, name, total_ns, timing.budget_ms);
        match ending {
            Ending::Finished { ok, run_ns } => {
                let end = Ended {
                    ok,
                    run_ns,
                    cpu_ns: 0,
                    caller_gone: false,
                    sample: None,
                };
                self.inner.finish(Strategy::Remote, &timing, end);
            }
            Ending::Dropped => self.inner.record_drop(Strategy::Remote, &timing, None),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: Status, body: &[u8], run_ns: u64) -> Reply {
        Reply::Answer(RemoteOutcome {
            status,
            body: body.to_vec(),
            run_ns,
        })
    }

    #[test]
    fn an_ok_answer_decodes_to_the_output() {
        let (r, end) = map_reply::<u64>(answer(Status::Ok, b"42", 7), "t", 1_000, 5);
        assert_eq!(r, Ok(42));
        assert_eq!(
            end,
            Ending::Finished {
                ok: true,
                run_ns: 7
            }
        );
    }

    #[test]
    fn failures_name_the_task_and_count_as_failed_runs() {
        let failed = Ending::Finished {
            ok: false,
            run_ns: 0,
        };
        let (r, end) = map_reply::<u64>(answer(Status::Ok, b"\"x\"", 7), "t", 1_000, 5);
        assert!(
            matches!(&r, Err(Rejected::RemoteFailed { reason }) if reason.starts_with("output of t does not decode: ")),
            "{r:?}"
        );
        assert_eq!(end, failed);
        let (r, end) = map_reply::<u64>(answer(Status::UnknownTask, b"", 0), "t", 1_000, 5);
        assert_eq!(
            r,
            Err(Rejected::RemoteFailed {
                reason: "worker answered unknown_task for t".to_owned()
            })
        );
        assert_eq!(end, failed);
        let (r, end) = map_reply::<u64>(answer(Status::Panicked, b"", 3), "t", 1_000, 5);
        assert_eq!((r, end), (Err(Rejected::Panicked), failed));
    }

    #[test]
    fn expiry_timeout_and_shutdown_drop_the_job() {
        let (r, end) = map_reply::<u64>(answer(Status::Expired, b"", 0), "t", 2_500_000, 5);
        assert_eq!(
            (r, end),
            (
                Err(Rejected::BudgetImpossible {
                    estimated_ms: 2.5,
                    budget_ms: 5
                }),
                Ending::Dropped
            )
        );
        let (r, end) = map_reply::<u64>(Reply::TimedOut, "t", 1_000, 5);
        assert_eq!(
            (r, end),
            (Err(Rejected::TimedOut { budget_ms: 5 }), Ending::Dropped)
        );
        let (r, end) = map_reply::<u64>(Reply::Gone, "t", 1_000, 5);
        assert_eq!((r, end), (Err(Rejected::ShuttingDown), Ending::Dropped));
    }
}
