//! The built-in demo kinds as a remote task: what `helixrouter worker` serves and the
//! binary's simulator offloads.

use serde::{Deserialize, Serialize};

use super::RemoteTask;
use crate::strategies::execute_job;
use crate::types::{Job, Output};

/// A built-in [`Job`] (hash mix, prime count, Monte-Carlo risk) as a remote task.
///
/// # Examples
///
/// ```
/// use helixrouter::remote::{DemoJob, RemoteTask};
/// use helixrouter::{Job, JobKind, Output};
/// let job = Job { id: 1, kind: JobKind::HashMix, inputs: vec![1, 2], compute_cost: 2_000,
///                 scaling_potential: 0.0, latency_budget_ms: 10 };
/// assert!(matches!(DemoJob(job).run(), Output::U64(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoJob(pub Job);

impl RemoteTask for DemoJob {
    const NAME: &'static str = "helix_demo_job";
    type Output = Output;

    fn run(self) -> Output {
        execute_job(&self.0)
    }
}
