//! [`Router::run_task`]: a registered remote task runs on a remote worker when
//! [`Inner::route_remote`](super::Inner::route_remote) says so, else locally through
//! [`Router::run`]. A remote job ends exactly once: with the first result for it, at its
//! deadline (dropped), or when its caller goes away (dropped; a later result is
//! counted as a duplicate).

use std::sync::Arc;

use super::hint::WorkHint;
use super::job::Timing;
use super::{Inner, Rejected, Router};
use crate::remote::{RemoteTask, protocol::Status};
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
        let inner = &self.inner;
        let remote = match inner.remote.get() {
            Some(r) if r.serves(T::NAME) => r.clone(),
            _ => return self.run(hint, move || task.run()).await,
        };
        let start = quanta::Instant::now();
        let cfg = inner.effective.load();
        let Some(route) = inner.route_remote(&remote, &hint, T::NAME, &cfg) else {
            return self.run(hint, move || task.run()).await;
        };
        drop(cfg);
        let Ok(body) = serde_json::to_vec(&task) else {
            return self.run(hint, move || task.run()).await;
        };
        let deadline_ms = crate::remote::unix_ms() + hint.latency_budget_ms;
        let Ok((id, rx)) = remote.send(T::NAME, body, deadline_ms).await else {
            // Not sent (link lost, stream full, too many in flight): run it here.
            return self.run(hint, move || task.run()).await;
        };
        drop(task);
        let mut hint = hint;
        let hint_ns = hint.compute_cost;
        hint.compute_cost = route.cost_ns;
        let timing = Timing {
            start,
            budget_ns: hint.budget_ns(),
            budget_ms: hint.latency_budget_ms,
            class: Some(route.class),
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
        let mut waiting = Waiting {
            inner: Arc::clone(&self.inner),
            id,
            timing,
            done: false,
        };
        let left =
            std::time::Duration::from_nanos(timing.budget_ns).saturating_sub(start.elapsed());
        let reply = tokio::time::timeout(left, rx).await;
        waiting.done = true;
        let total_ns = start.elapsed().as_nanos() as u64;
        match reply {
            Ok(Ok(out)) => {
                remote.record_end(Some(out.status), total_ns, out.run_ns);
                match out.status {
                    Status::Ok => match serde_json::from_slice::<T::Output>(&out.body) {
                        Ok(v) => {
                            inner.finish(Strategy::Remote, &timing, true, out.run_ns, None);
                            Ok(v)
                        }
                        Err(e) => {
                            inner.finish(Strategy::Remote, &timing, false, 0, None);
                            Err(Rejected::RemoteFailed {
                                reason: format!("output of {} does not decode: {e}", T::NAME),
                            })
                        }
                    },
                    Status::Expired => {
                        inner.record_drop(Strategy::Remote, &timing, None);
                        Err(Rejected::BudgetImpossible {
                            estimated_ms: total_ns as f64 / 1e6,
                            budget_ms: timing.budget_ms,
                        })
                    }
                    Status::Panicked => {
                        inner.finish(Strategy::Remote, &timing, false, 0, None);
                        Err(Rejected::Panicked)
                    }
                    Status::UnknownTask | Status::BadPayload => {
                        inner.finish(Strategy::Remote, &timing, false, 0, None);
                        Err(Rejected::RemoteFailed {
                            reason: format!(
                                "worker answered {} for {}",
                                out.status.as_str(),
                                T::NAME
                            ),
                        })
                    }
                }
            }
            // The remote side went away (router dropped): nothing will answer.
            Ok(Err(_)) => {
                inner.record_drop(Strategy::Remote, &timing, None);
                Err(Rejected::ShuttingDown)
            }
            Err(_) => {
                remote.forget(id);
                remote.record_end(None, total_ns, 0);
                inner.record_drop(Strategy::Remote, &timing, None);
                Err(Rejected::TimedOut {
                    budget_ms: timing.budget_ms,
                })
            }
        }
    }
}
