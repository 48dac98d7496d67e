//! Runs one executor on one schedule: a fresh multi-threaded runtime with `cores`
//! workers, the open-loop generator on the calling thread, the starvation probe on the
//! runtime, and the drain/abandon protocol that keeps steps from overlapping.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

use super::HarnessError;
use super::executor::{ClassRt, Exec, ExecutorKind, StepShared, WorkItem, job_task};
use super::hints::JobHint;
use super::schedule::Schedule;
use super::stats::Outcome;
use super::workload::Mix;
use helixrouter::config::RouterConfig;
use helixrouter::router::RouterStats;

/// The scheduling priority the arrival generator's thread ran with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GeneratorPriority {
    /// `SCHED_FIFO`: it preempts the executors' threads, so its lag is timer jitter.
    Realtime,
    /// The highest normal (nice) priority the process may set.
    Raised,
    /// No change was permitted: under saturation it competes with the executors'
    /// threads for the cores and its lag shows it.
    Normal,
}

/// CPU time one group of threads used during a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadCpu {
    /// Thread name with any trailing number removed (`helix-cpu-1` → `helix-cpu`;
    /// `harness-worker` covers the runtime's async workers and its blocking threads).
    pub group: String,
    /// Threads of the group seen.
    pub threads: usize,
    /// User + system CPU seconds used during the step.
    pub cpu_secs: f64,
}

/// Clock ticks per second of `/proc/*/stat` times (`USER_HZ`, 100 on Linux).
const USER_HZ: f64 = 100.0;

/// `utime + stime` ticks of a `/proc/<pid>/stat` or `/proc/<pid>/task/<tid>/stat` line
/// (fields 14 and 15, counted after the parenthesised name, which may hold spaces).
pub(crate) fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    Some(rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?)
}

/// `(tid, name, utime + stime ticks)` of every thread of this process, from
/// `/proc/self/task` (empty where that does not exist).
fn thread_ticks() -> Vec<(u64, String, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let tid: u64 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let name = stat.get(open + 1..close)?.to_owned();
        Some((tid, name, stat_cpu_ticks(&stat)?))
    })
    .collect()
}

/// CPU time of the calling thread, ns (the first field of
/// `/proc/thread-self/schedstat`: the kernel's exact run time, not 10 ms ticks).
fn own_thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Ticks of the whole machine, busy (user, nice, system, irq, softirq, steal) and idle
/// (idle, iowait), from `/proc/stat`, and this process's own ticks (every thread it
/// ever had) from `/proc/self/stat`.
#[derive(Debug, Clone, Copy)]
struct Ticks {
    busy: u64,
    idle: u64,
    mine: u64,
}

fn machine_and_self_ticks() -> Option<Ticks> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<u64> = cpu
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let field = |i: usize| f.get(i).copied().unwrap_or(0);
    let busy = [0, 1, 2, 5, 6, 7].into_iter().map(field).sum();
    let idle = field(3) + field(4);
    let mine = stat_cpu_ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    Some(Ticks { busy, idle, mine })
}

/// What the machine did during a step, in CPU seconds (Linux).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MachineCpu {
    /// CPU this process used (every thread, including the generator).
    pub process_secs: f64,
    /// CPU other processes (and the hypervisor's steal) used.
    pub foreign_secs: f64,
    /// CPU time no one used.
    pub idle_secs: f64,
}

impl MachineCpu {
    fn between(a: Ticks, b: Ticks) -> MachineCpu {
        let secs = |t: u64| t as f64 / USER_HZ;
        let mine = b.mine.saturating_sub(a.mine);
        MachineCpu {
            process_secs: secs(mine),
            foreign_secs: secs(b.busy.saturating_sub(a.busy).saturating_sub(mine)),
            idle_secs: secs(b.idle.saturating_sub(a.idle)),
        }
    }
}

/// CPU used per thread group between two [`thread_ticks`] snapshots (threads born
/// in between count from zero; threads that died in between are missed).
fn cpu_by_group(before: &[(u64, String, u64)], after: &[(u64, String, u64)]) -> Vec<ThreadCpu> {
    let mut groups: Vec<ThreadCpu> = Vec::new();
    for (tid, name, ticks) in after {
        let start = before
            .iter()
            .find(|(t, _, _)| t == tid)
            .map_or(0, |&(_, _, t)| t);
        let group = name
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .trim_end_matches(['-', '_', ' '])
            .to_owned();
        let secs = ticks.saturating_sub(start) as f64 / USER_HZ;
        match groups.iter_mut().find(|g| g.group == group) {
            Some(g) => {
                g.threads += 1;
                g.cpu_secs += secs;
            }
            None => groups.push(ThreadCpu {
                group,
                threads: 1,
                cpu_secs: secs,
            }),
        }
    }
    groups.retain(|g| g.cpu_secs > 0.0);
    groups.sort_by(|a, b| b.cpu_secs.total_cmp(&a.cpu_secs));
    groups
}

/// The generator thread's name, and its group in [`ThreadCpu`].
pub const GENERATOR_GROUP: &str = "harness-generator";
/// Period of the starvation probe's sleep.
pub const PROBE_PERIOD: Duration = Duration::from_millis(1);
/// The generator wakes at most once per tick and issues every arrival then due, so
/// an arrival is issued up to one tick late (its lag, reported; latency still runs
/// from the planned arrival).
pub const GENERATOR_TICK: Duration = Duration::from_micros(200);
/// Time between building a step and its first scheduled arrival.
const LEAD_TIME: Duration = Duration::from_millis(20);
/// How long to wait for abandoned jobs to return before giving up on them.
const ABANDON_WAIT: Duration = Duration::from_secs(60);
/// Poll period of the controller while it waits for jobs to end.
const POLL: Duration = Duration::from_millis(2);

/// Raw results of one step.
#[derive(Debug)]
pub(crate) struct StepRun {
    /// `(outcome, latency_ns)` per arrival.
    pub(crate) results: Vec<(Outcome, u64)>,
    /// How late the generator issued each arrival, ns.
    pub(crate) lag_ns: Vec<u64>,
    /// The scheduling priority the generator thread got.
    pub(crate) generator_priority: GeneratorPriority,
    /// CPU per thread group from the first arrival to the end of the drain.
    pub(crate) thread_cpu: Vec<ThreadCpu>,
    /// What the machine's CPU did meanwhile.
    pub(crate) machine_cpu: Option<MachineCpu>,
    /// Lateness of each wake-up of the 1 ms sleeper, ns.
    pub(crate) lateness_ns: Vec<u64>,
    /// The router's own snapshot at the end of the step (HelixRouter only).
    pub(crate) router: Option<RouterStats>,
    /// Wall time from the first scheduled arrival to the last job's end.
    pub(crate) wall: Duration,
}

/// What a step needs.
#[derive(Debug)]
pub(crate) struct StepPlan<'a> {
    pub(crate) kind: ExecutorKind,
    pub(crate) schedule: &'a Schedule,
    pub(crate) mix: &'a Mix,
    /// The mix's classes as the job tasks see them (built once per run).
    pub(crate) classes: &'a [ClassRt],
    /// What each arrival tells HelixRouter, indexed like the schedule.
    pub(crate) hints: &'a [JobHint],
    /// The nominal work of each arrival (ns), indexed like the schedule: its class's
    /// cost, or that × its size factor in the sized workload. A job past its end runs
    /// its class's cost.
    pub(crate) work_ns: &'a [u64],
    pub(crate) cores: usize,
    pub(crate) router: &'a RouterConfig,
    /// Extra wait after the last arrival's largest possible deadline before abandoning.
    pub(crate) grace: Duration,
    /// The NATS server of [`ExecutorKind::HelixRemote`] (`None` for the others).
    pub(crate) nats: Option<&'a str>,
}

fn runtime(cores: usize) -> Result<Runtime, HarnessError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.max(1))
        .thread_name("harness-worker")
        .enable_all()
        .build()
        .map_err(HarnessError::Runtime)
}

/// Wakes at `start`, then sleeps `PROBE_PERIOD` in a loop until `stop`, recording how
/// late each wake-up was (the first one included, so a runtime starved for the whole
/// window still yields one, very late, sample). A starved executor wakes it late.
async fn starvation_probe(start: Instant, stop: Arc<AtomicBool>) -> Vec<u64> {
    let mut lateness = Vec::with_capacity(4_096);
    let mut due = start;
    loop {
        tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
        let woke = Instant::now();
        lateness.push(woke.saturating_duration_since(due).as_nanos() as u64);
        if stop.load(Ordering::Relaxed) {
            return lateness;
        }
        due = woke + PROBE_PERIOD;
    }
}

/// The probe alone on an idle runtime of the same shape: the reference lateness
/// (Tokio's timer has 1 ms granularity, so even an idle runtime wakes up to ~1 ms late).
pub(crate) fn idle_lateness(cores: usize, dur: Duration) -> Result<Vec<u64>, HarnessError> {
    let rt = runtime(cores)?;
    let stop = Arc::new(AtomicBool::new(false));
    let probe = rt.spawn(starvation_probe(Instant::now(), Arc::clone(&stop)));
    std::thread::sleep(dur);
    stop.store(true, Ordering::Relaxed);
    let v = rt
        .block_on(probe)
        .map_err(|e| HarnessError::Probe(e.to_string()))?;
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(v)
}

/// Issues each arrival at its planned time with `Runtime::spawn`, whatever the
/// executor is doing, and returns how late each one was issued (ns).
fn generate(
    rt: &tokio::runtime::Handle,
    exec: &Exec,
    classes: &[ClassRt],
    plan: &StepPlan<'_>,
    shared: &Arc<StepShared>,
    t0: Instant,
) -> Vec<u64> {
    let arrivals = &plan.schedule.arrivals;
    let mut lag_ns = Vec::with_capacity(arrivals.len());
    let mut woke = Instant::now();
    for (idx, a) in arrivals.iter().enumerate() {
        let scheduled = t0 + Duration::from_nanos(a.at_ns);
        let now = Instant::now();
        if scheduled > now {
            // Sleep until the arrival is due, but wake at most once per tick: at tens of
            // thousands of arrivals per second, one wake-up each would cost the
            // generator (and the runtime it wakes) a large share of a core.
            std::thread::sleep(scheduled.max(woke + GENERATOR_TICK) - now);
            woke = Instant::now();
        }
        lag_ns.push(scheduled.elapsed().as_nanos() as u64);
        let Some(&class) = classes.get(usize::from(a.class)) else {
            continue; // a class outside the mix: never issued, counted unfinished
        };
        let Some(&hint) = plan.hints.get(idx) else {
            continue; // no hint for it: never issued, counted unfinished
        };
        let cost_ns = plan.work_ns.get(idx).copied().unwrap_or(class.cost_ns());
        let item = WorkItem::new(class, hint, cost_ns, a.seed, Arc::clone(shared));
        rt.spawn(job_task(exec.clone(), item, idx, a.scaling, scheduled));
    }
    lag_ns
}

/// Raises the calling thread's priority as far as the OS lets this process: first
/// `SCHED_FIFO` (real time; the generator sleeps between arrivals, so it takes little
/// CPU), else the highest normal priority, else none.
fn raise_priority() -> GeneratorPriority {
    use thread_priority::{
        RealtimeThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
        set_current_thread_priority, set_thread_priority_and_policy, thread_native_id,
    };
    let rt_prio = ThreadPriorityValue::try_from(50u8)
        .map(ThreadPriority::Crossplatform)
        .unwrap_or(ThreadPriority::Max);
    let fifo = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo);
    if set_thread_priority_and_policy(thread_native_id(), rt_prio, fifo).is_ok() {
        GeneratorPriority::Realtime
    } else if set_current_thread_priority(ThreadPriority::Max).is_ok() {
        GeneratorPriority::Raised
    } else {
        GeneratorPriority::Normal
    }
}

fn wait_until(cond: impl Fn() -> bool, deadline: Instant) {
    while !cond() && Instant::now() < deadline {
        std::thread::sleep(POLL);
    }
}

/// Runs one step (see the module docs).
pub(crate) fn run_step(plan: &StepPlan<'_>) -> Result<StepRun, HarnessError> {
    let rt = runtime(plan.cores)?;
    let n = plan.schedule.arrivals.len();
    let shared = Arc::new(StepShared::new(n));
    let exec = rt.block_on(Exec::build(plan.kind, plan.cores, plan.router, plan.nats))?;
    let t0 = Instant::now() + LEAD_TIME;
    let stop = Arc::new(AtomicBool::new(false));
    let probe = rt.spawn(starvation_probe(t0, Arc::clone(&stop)));

    // The open-loop generator runs on its own thread at raised priority (when the OS
    // allows), so that it keeps time even while the executor saturates every core.
    let ticks_before = thread_ticks();
    let machine_before = machine_and_self_ticks();
    let handle = rt.handle().clone();
    let gen_exec = exec.clone();
    let (classes, shared_ref) = (plan.classes, &shared);
    let (lag_ns, generator_priority, generator_ns) = std::thread::scope(|scope| {
        let gen_thread = std::thread::Builder::new()
            .name(GENERATOR_GROUP.into())
            .spawn_scoped(scope, move || {
                let prio = raise_priority();
                let before = own_thread_cpu_ns();
                let lag = generate(&handle, &gen_exec, classes, plan, shared_ref, t0);
                let used = own_thread_cpu_ns()
                    .zip(before)
                    .map(|(a, b)| a.saturating_sub(b));
                (lag, prio, used)
            })
            .map_err(|e| HarnessError::Generator(e.to_string()))?;
        gen_thread
            .join()
            .map_err(|_| HarnessError::Generator("the generator thread panicked".into()))
    })?;
    let window_end = t0 + Duration::from_nanos(plan.schedule.duration_ns);
    let now = Instant::now();
    if window_end > now {
        std::thread::sleep(window_end - now);
    }
    stop.store(true, Ordering::Relaxed);

    // Every job that can still be on time ends before the cutoff; after it, whatever
    // has not started returns without computing.
    let cutoff = window_end + Duration::from_nanos(plan.mix.max_budget_ns()) + plan.grace;
    wait_until(|| shared.done() >= n, cutoff);
    shared.abandon();
    wait_until(|| shared.done() >= n, Instant::now() + ABANDON_WAIT);
    let wall = t0.elapsed();
    let mut thread_cpu = cpu_by_group(&ticks_before, &thread_ticks());
    // The generator's thread has ended by now: it measured itself.
    if let Some(ns) = generator_ns.filter(|&ns| ns > 0) {
        thread_cpu.push(ThreadCpu {
            group: GENERATOR_GROUP.to_owned(),
            threads: 1,
            cpu_secs: ns as f64 / 1e9,
        });
    }
    let machine_cpu = machine_before
        .zip(machine_and_self_ticks())
        .map(|(a, b)| MachineCpu::between(a, b));

    let lateness_ns = rt
        .block_on(probe)
        .map_err(|e| HarnessError::Probe(e.to_string()))?;
    let router = match exec.router() {
        Some(r) => {
            let snapshot = r.stats();
            rt.block_on(r.shutdown());
            Some(snapshot)
        }
        None => None,
    };
    drop(exec);
    rt.shutdown_timeout(Duration::from_secs(5));
    Ok(StepRun {
        results: shared.results(),
        lag_ns,
        generator_priority,
        thread_cpu,
        machine_cpu,
        lateness_ns,
        router,
        wall,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_grouped_by_name_without_the_number() {
        let before = vec![
            (1, "helix-cpu-0".to_owned(), 100),
            (2, "main".to_owned(), 5),
        ];
        let after = vec![
            (1, "helix-cpu-0".to_owned(), 250),
            (3, "helix-cpu-1".to_owned(), 50),
            (2, "main".to_owned(), 5),
            (4, "harness-worker".to_owned(), 300),
        ];
        let g = cpu_by_group(&before, &after);
        assert_eq!(g.len(), 2, "{g:?}"); // `main` used nothing
        assert_eq!(g[0].group, "harness-worker");
        assert!((g[0].cpu_secs - 3.0).abs() < 1e-9);
        assert_eq!(g[1].group, "helix-cpu");
        assert_eq!(g[1].threads, 2);
        assert!((g[1].cpu_secs - 2.0).abs() < 1e-9);
    }

    #[test]
    fn stat_ticks_are_read_after_a_name_with_spaces_and_parentheses() {
        let stat = "42 (tokio rt) (x)) S 1 42 42 0 -1 4194560 100 0 0 0 150 25 0 0 20 0";
        assert_eq!(stat_cpu_ticks(stat), Some(175));
        assert_eq!(stat_cpu_ticks("42 (short) S 1"), None);
    }

    #[test]
    fn this_process_has_readable_cpu_times_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(!thread_ticks().is_empty());
            let t = machine_and_self_ticks().unwrap();
            assert!(t.busy >= t.mine && t.idle > 0);
        }
    }
}
