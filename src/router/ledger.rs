//! Where run time went: every job that ran adds its run time to the ledger of its
//! strategy (and of its class) under how it ended — on time, late, or aborted (its
//! result reached no one). An operator reads the waste at a glance: late and aborted
//! time is CPU the router spent on work nobody could use.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

/// How a job that ran ended, as the ledger counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WorkEnd {
    /// It finished within its budget and its caller got the result.
    OnTime,
    /// It finished over its budget.
    Late,
    /// Its result reached no one: the caller had stopped waiting, or the work panicked.
    Aborted,
}

impl WorkEnd {
    /// How a job ended from what its bookkeeping knows.
    #[inline]
    pub(crate) fn of(ok: bool, late: bool, caller_gone: bool) -> WorkEnd {
        match (ok && !caller_gone, late) {
            (false, _) => WorkEnd::Aborted,
            (true, true) => WorkEnd::Late,
            (true, false) => WorkEnd::OnTime,
        }
    }
}

/// Run time in nanoseconds by [`WorkEnd`]: three `Relaxed` tallies.
#[derive(Debug, Default)]
pub(crate) struct WorkLedger([AtomicU64; 3]);

impl WorkLedger {
    #[inline]
    pub(crate) fn add(&self, end: WorkEnd, ns: u64) {
        self.0[end as usize].fetch_add(ns, Relaxed);
    }

    /// The ledger in seconds.
    pub(crate) fn snapshot(&self) -> WorkTime {
        let secs = |i: usize| self.0[i].load(Relaxed) as f64 / 1e9;
        WorkTime {
            on_time_secs: secs(WorkEnd::OnTime as usize),
            late_secs: secs(WorkEnd::Late as usize),
            aborted_secs: secs(WorkEnd::Aborted as usize),
        }
    }
}

/// Seconds spent running jobs, by how they ended. For pool and batch work, the CPU time
/// the pool thread spent on each job (its thread clock: a low-priority pool thread
/// preempted mid-job does not count the pause); for inline and spawned work, the time
/// from the start to the end of its work on the async worker. Jobs that never ran
/// (shed, cancelled before they started) cost nothing here.
///
/// # Examples
///
/// ```
/// use helixrouter::router::WorkTime;
///
/// let w = WorkTime::default();
/// assert_eq!(w.total_secs(), 0.0);
/// assert_eq!(w.wasted_share(), 0.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkTime {
    /// Run time of jobs that finished within their budget.
    pub on_time_secs: f64,
    /// Run time of jobs that finished over their budget (wasted: their callers'
    /// deadlines had passed).
    pub late_secs: f64,
    /// Run time of jobs whose result reached no one: the caller had stopped waiting by
    /// the time the work ended, or the work panicked (wasted).
    pub aborted_secs: f64,
}

impl WorkTime {
    /// All run time, however the jobs ended.
    pub fn total_secs(&self) -> f64 {
        self.on_time_secs + self.late_secs + self.aborted_secs
    }

    /// The share of run time spent on late or aborted work (0 when nothing ran).
    pub fn wasted_share(&self) -> f64 {
        let total = self.total_secs();
        if total > 0.0 {
            (self.late_secs + self.aborted_secs) / total
        } else {
            0.0
        }
    }
}

/// Ledgers summed (stripes into a strategy or a class, strategies into the total).
impl std::iter::Sum for WorkTime {
    fn sum<I: Iterator<Item = WorkTime>>(iter: I) -> WorkTime {
        iter.fold(WorkTime::default(), |a, b| WorkTime {
            on_time_secs: a.on_time_secs + b.on_time_secs,
            late_secs: a.late_secs + b.late_secs,
            aborted_secs: a.aborted_secs + b.aborted_secs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_end_goes_to_its_own_tally() {
        let l = WorkLedger::default();
        l.add(WorkEnd::of(true, false, false), 3_000_000_000);
        l.add(WorkEnd::of(true, true, false), 1_000_000_000);
        l.add(WorkEnd::of(true, false, true), 500_000_000);
        l.add(WorkEnd::of(false, false, false), 500_000_000);
        let w = l.snapshot();
        assert_eq!(w.on_time_secs, 3.0);
        assert_eq!(w.late_secs, 1.0);
        assert_eq!(w.aborted_secs, 1.0);
        assert_eq!(w.total_secs(), 5.0);
        assert!((w.wasted_share() - 0.4).abs() < 1e-12);
    }

    #[test]
    fn a_late_job_whose_caller_left_is_aborted_once() {
        assert_eq!(WorkEnd::of(true, true, true), WorkEnd::Aborted);
        assert_eq!(WorkEnd::of(false, true, false), WorkEnd::Aborted);
    }
}
