//! The physical limit on goodput, computed from the schedule itself.
//!
//! # The upper bound
//!
//! Serving jobs on `m` cores — even with preemption and migration, as the OS does with
//! threads (each job runs on at most one core at a time, at speed 1) — is a special case
//! of a single processor of speed `m` that may share itself between jobs: give each job
//! the rate it had on the cores. So the number of jobs that *any*
//! executor can finish within budget on `m` cores is at most the maximum on that fluid
//! machine. We relax once more by dropping release times (a job may be worked on before
//! it arrives); what remains is `1 || Σ U_j` — maximise the number of on-time jobs on one
//! machine with deadlines `d_j = arrival_j + budget_j` — which Moore–Hodgson solves
//! exactly: take jobs in deadline order, and whenever the work taken so far no longer
//! fits before the current deadline (`Σ cost > m · d_j`), give up the most expensive job
//! taken so far. That is "serve the cheapest first, each within its budget", and it is
//! an upper bound on every executor's on-time count for the given per-job CPU costs.
//! (Jobs whose cost exceeds their own budget are left out first: a job runs on one core
//! at a time, so no executor can finish one in time.)
//!
//! Dropping release times only lends the bound capacity from idle periods before jobs
//! arrive; under sustained overload a good schedule has almost none, so the bound stays
//! tight there. To show how tight, [`goodput_bound`] also returns a *feasible* count:
//! the jobs kept by Moore–Hodgson, run by a clairvoyant preemptive EDF on `m` real cores
//! with release times (preemption and migration are what the OS does to threads),
//! giving up any job that can no longer finish in time. That schedule exists, so the
//! true optimum (for preemptive cores, the setting every executor here runs in) lies
//! between the two numbers.
//!
//! Both use CPU costs as given, per job (the harness passes each class's *measured*
//! kernel time, see [`crate::capacity`], times the job's size factor in the sized
//! workload, see [`crate::sizes`]; [`schedule_jobs`] builds the jobs), and no dispatch
//! overhead: they are limits, not targets.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use serde::{Deserialize, Serialize};

use super::schedule::Schedule;
use super::workload::{JobClass, Mix};

/// One job as the bound sees it (all times in ns from the start of the step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundJob {
    /// Arrival time.
    pub release_ns: u64,
    /// CPU time it needs on one core.
    pub cost_ns: u64,
    /// Absolute deadline (`release + budget`).
    pub deadline_ns: u64,
}

/// The goodput limit of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Bound {
    /// Upper bound on jobs finished within budget (Moore–Hodgson on the fluid relaxation).
    pub upper: u64,
    /// Jobs a clairvoyant preemptive EDF on the real cores finishes within budget: the
    /// optimum is at least this.
    pub feasible: u64,
}

/// The bound's view of `schedule`: each arrival released at its planned time, due at
/// that time + its class's budget, costing `cost_ns` (per job, indexed like the
/// arrivals; a job past its end costs 0).
pub fn schedule_jobs(schedule: &Schedule, mix: &Mix, cost_ns: &[u64]) -> Vec<BoundJob> {
    schedule
        .arrivals
        .iter()
        .enumerate()
        .map(|(i, a)| BoundJob {
            release_ns: a.at_ns,
            cost_ns: cost_ns.get(i).copied().unwrap_or(0),
            deadline_ns: a.at_ns
                + mix
                    .classes
                    .get(usize::from(a.class))
                    .map_or(0, JobClass::budget_ns),
        })
        .collect()
}

/// Computes [`Bound`] for `jobs` on `cores` cores (see the module docs).
///
/// # Examples
///
/// ```
/// use helix_overload::bound::{BoundJob, goodput_bound};
/// let job = |r, c, d| BoundJob { release_ns: r, cost_ns: c, deadline_ns: d };
/// // One core, 10 ns until every deadline: two 5 ns jobs fit, the 10 ns one does not.
/// let b = goodput_bound(&[job(0, 10, 10), job(0, 5, 10), job(0, 5, 10)], 1);
/// assert_eq!((b.upper, b.feasible), (2, 2));
/// ```
pub fn goodput_bound(jobs: &[BoundJob], cores: usize) -> Bound {
    let kept = moore_hodgson(jobs, cores.max(1));
    let feasible = edf_feasible(&kept, cores.max(1));
    Bound {
        upper: kept.len() as u64,
        feasible,
    }
}

/// Moore–Hodgson on one machine of speed `m`, release times ignored. Returns the kept
/// jobs (a maximum-cardinality set that meets every deadline on that machine).
fn moore_hodgson(jobs: &[BoundJob], m: usize) -> Vec<BoundJob> {
    // A job runs on one core at a time: one longer than its own window cannot be on
    // time however idle the machine is (the fluid machine alone would let it).
    let mut order: Vec<&BoundJob> = jobs
        .iter()
        .filter(|j| j.cost_ns <= j.deadline_ns.saturating_sub(j.release_ns))
        .collect();
    order.sort_by_key(|j| (j.deadline_ns, j.cost_ns));
    let m = m as u128;
    let mut work: u128 = 0;
    // Max-heap on cost; the index breaks ties deterministically.
    let mut taken: BinaryHeap<(u64, usize)> = BinaryHeap::with_capacity(order.len());
    for (i, j) in order.iter().enumerate() {
        taken.push((j.cost_ns, i));
        work += u128::from(j.cost_ns);
        if work > m * u128::from(j.deadline_ns)
            && let Some((c, _)) = taken.pop()
        {
            work -= u128::from(c);
        }
    }
    taken.into_iter().map(|(_, i)| *order[i]).collect()
}

/// Preemptive global EDF with release times on `m` cores: at every arrival and
/// completion the `m` ready jobs with the earliest deadlines run; a job that can no
/// longer finish by its deadline even if it ran without interruption is given up.
/// Counts the jobs finished in time. (Preemption and migration are what the OS does
/// to threads, so this is a schedule real cores can follow.)
fn edf_feasible(jobs: &[BoundJob], m: usize) -> u64 {
    let mut by_release: Vec<BoundJob> = jobs.to_vec();
    by_release.sort_by_key(|j| j.release_ns);
    // Ready jobs: (deadline, remaining work), earliest deadline first.
    let mut ready: BinaryHeap<Reverse<(u64, u64)>> = BinaryHeap::new();
    let mut running: Vec<(u64, u64)> = Vec::with_capacity(m);
    let mut next = 0;
    let mut done = 0u64;
    let mut t = 0u64;
    loop {
        while let Some(j) = by_release.get(next).filter(|j| j.release_ns <= t) {
            ready.push(Reverse((j.deadline_ns, j.cost_ns)));
            next += 1;
        }
        running.clear();
        while running.len() < m {
            match ready.pop() {
                Some(Reverse((d, rem))) if t.saturating_add(rem) <= d => running.push((d, rem)),
                Some(_) => {} // cannot make it any more
                None => break,
            }
        }
        let next_release = by_release.get(next).map(|j| j.release_ns);
        let Some(first_end) = running.iter().map(|&(_, rem)| t + rem).min() else {
            match next_release {
                Some(r) => {
                    t = r;
                    continue;
                }
                None => break,
            }
        };
        let until = next_release.map_or(first_end, |r| r.min(first_end));
        let dt = until - t;
        for &(d, rem) in &running {
            if rem <= dt {
                done += 1;
            } else {
                ready.push(Reverse((d, rem - dt)));
            }
        }
        t = until;
    }
    done
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn job(r: u64, c: u64, d: u64) -> BoundJob {
        BoundJob {
            release_ns: r,
            cost_ns: c,
            deadline_ns: d,
        }
    }

    /// Exact optimum on one preemptive core (n <= 8, integer times): every subset,
    /// checked by unit-step preemptive EDF, which meets all deadlines of a set whenever
    /// any preemptive schedule does.
    fn brute_force_one_core(jobs: &[BoundJob]) -> u64 {
        fn edf_meets_all(set: &[BoundJob]) -> bool {
            let mut rem: Vec<u64> = set.iter().map(|j| j.cost_ns).collect();
            let horizon = set.iter().map(|j| j.deadline_ns).max().unwrap_or(0);
            for t in 0..horizon {
                if let Some(i) = (0..set.len())
                    .filter(|&i| rem[i] > 0 && set[i].release_ns <= t)
                    .min_by_key(|&i| set[i].deadline_ns)
                {
                    rem[i] -= 1;
                    if rem[i] == 0 && t + 1 > set[i].deadline_ns {
                        return false;
                    }
                }
            }
            rem.iter().all(|&r| r == 0)
        }
        let n = jobs.len();
        let mut best = 0;
        for mask in 0u32..(1 << n) {
            let subset: Vec<BoundJob> = (0..n)
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| jobs[i])
                .collect();
            if subset.len() as u64 > best && edf_meets_all(&subset) {
                best = subset.len() as u64;
            }
        }
        best
    }

    #[test]
    fn everything_fits_when_underloaded() {
        let jobs: Vec<_> = (0..100).map(|i| job(i * 100, 10, i * 100 + 50)).collect();
        assert_eq!(
            goodput_bound(&jobs, 1),
            Bound {
                upper: 100,
                feasible: 100
            }
        );
    }

    #[test]
    fn cheapest_are_kept_under_a_shared_deadline() {
        // 2 cores, 100 ns: capacity 200 ns. Costs 150, 60, 50, 40, 30 → keep 60+50+40+30.
        let jobs = [
            job(0, 150, 100),
            job(0, 60, 100),
            job(0, 50, 100),
            job(0, 40, 100),
            job(0, 30, 100),
        ];
        let b = goodput_bound(&jobs, 2);
        assert_eq!(b.upper, 4);
        // EDF runs 30 and 40, then 50 (30..80) and 60 (40..100): all four in time.
        assert_eq!(b.feasible, 4);
    }

    #[test]
    fn global_edf_is_only_a_lower_bound() {
        // Three 10 ns jobs due at 15 ns on 2 cores: the fluid machine fits all three, and
        // so would McNaughton's wrap-around on the real cores; global EDF runs two to
        // completion first and the third has only 5 ns left. `feasible` is a lower
        // bound on the optimum, not the optimum.
        let b = goodput_bound(&[job(0, 10, 15), job(0, 10, 15), job(0, 10, 15)], 2);
        assert_eq!(
            b,
            Bound {
                upper: 3,
                feasible: 2
            }
        );
    }

    #[test]
    fn a_job_longer_than_its_budget_never_counts() {
        let b = goodput_bound(&[job(0, 20, 10), job(5, 1, 100)], 4);
        assert_eq!(
            b,
            Bound {
                upper: 1,
                feasible: 1
            }
        );
    }

    #[test]
    fn tight_deadlines_after_a_heavy_job() {
        // One core: tiny jobs with 2 ns budgets arrive while a heavy job runs; EDF
        // preempts the heavy job for each, and it still ends by its own deadline.
        let mut jobs = vec![job(0, 100, 1_000)];
        jobs.extend((0..5).map(|i| job(10 + i * 10, 1, 12 + i * 10)));
        let b = goodput_bound(&jobs, 1);
        assert_eq!(
            b,
            Bound {
                upper: 6,
                feasible: 6
            }
        );
    }

    #[test]
    fn schedule_jobs_carry_per_job_costs_and_class_deadlines() {
        let mix = Mix::standard();
        let s =
            Schedule::generate(&mix, 2_000.0, std::time::Duration::from_millis(100), 3).unwrap();
        let costs: Vec<u64> = (1..=s.arrivals.len() as u64).collect();
        let jobs = schedule_jobs(&s, &mix, &costs);
        assert_eq!(jobs.len(), s.arrivals.len());
        for ((j, a), c) in jobs.iter().zip(&s.arrivals).zip(&costs) {
            assert_eq!((j.release_ns, j.cost_ns), (a.at_ns, *c));
            assert_eq!(
                j.deadline_ns - j.release_ns,
                mix.classes[usize::from(a.class)].budget_ns()
            );
        }
    }

    #[test]
    fn empty_schedule() {
        assert_eq!(goodput_bound(&[], 2), Bound::default());
    }

    proptest! {
        #[test]
        fn optimum_lies_between_feasible_and_upper(
            raw in prop::collection::vec((0u64..30, 1u64..12, 0u64..30), 0..7)
        ) {
            let jobs: Vec<BoundJob> = raw.iter().map(|&(r, c, slack)| job(r, c, r + c + slack / 2)).collect();
            let b = goodput_bound(&jobs, 1);
            let opt = brute_force_one_core(&jobs);
            prop_assert!(b.feasible <= opt, "feasible {} > opt {}", b.feasible, opt);
            prop_assert!(opt <= b.upper, "opt {} > upper {}", opt, b.upper);
        }

        #[test]
        fn more_cores_never_lower_the_bound(
            raw in prop::collection::vec((0u64..1000, 1u64..300, 0u64..500), 0..60)
        ) {
            let jobs: Vec<BoundJob> = raw.iter().map(|&(r, c, s)| job(r, c, r + s)).collect();
            let one = goodput_bound(&jobs, 1);
            let two = goodput_bound(&jobs, 2);
            prop_assert!(one.upper <= two.upper);
            prop_assert!(two.feasible <= two.upper);
            prop_assert!(two.upper <= jobs.len() as u64);
        }
    }
}
