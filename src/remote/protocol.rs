//! What travels over NATS, and how it is checked. Pure: builds and parses subjects,
//! header values and JSON bodies; no connection, no clock (times come in as numbers).
//!
//! - A job is a JetStream message on `helix.jobs.<TASK NAME>` (work-queue stream
//!   [`STREAM`]), body = the task as JSON, headers: [`H_JOB`] (the router's id for it),
//!   [`H_REPLY`] (where the result goes: the JetStream `reply` is the ack subject),
//!   [`H_DEADLINE`] (Unix ms after which running it is pointless).
//! - A result is a core NATS message on the router's results subject, body = the
//!   output as JSON, headers: [`H_JOB`], [`H_STATUS`], [`H_RUN_NS`], [`H_DELIVERED`].
//! - A heartbeat is a core NATS message on [`HEARTBEAT_SUBJECT`], body = [`Heartbeat`].

use serde::{Deserialize, Serialize};

/// The JetStream stream holding queued jobs (work-queue retention).
pub(crate) const STREAM: &str = "HELIX_JOBS";
/// Subject prefix of jobs; the task's `NAME` follows.
pub(crate) const JOB_PREFIX: &str = "helix.jobs.";
/// Subject workers publish their heartbeats on.
pub(crate) const HEARTBEAT_SUBJECT: &str = "helix.workers.heartbeat";
/// Subject prefix of each router's results; its id follows.
pub(crate) const RESULTS_PREFIX: &str = "helix.results.";

/// Header: the router's id of the job (decimal).
pub(crate) const H_JOB: &str = "Helix-Job";
/// Header: the subject the result goes to.
pub(crate) const H_REPLY: &str = "Helix-Reply";
/// Header: the job's deadline, Unix milliseconds.
pub(crate) const H_DEADLINE: &str = "Helix-Deadline-Ms";
/// Header: the result's [`Status`].
pub(crate) const H_STATUS: &str = "Helix-Status";
/// Header: the task's run time on the worker, nanoseconds.
pub(crate) const H_RUN_NS: &str = "Helix-Run-Ns";
/// Header: how many times JetStream delivered the job (1 = first delivery).
pub(crate) const H_DELIVERED: &str = "Helix-Delivered";

/// Longest accepted task name (it becomes a subject token and a consumer name).
pub(crate) const MAX_NAME_LEN: usize = 64;

/// Why a task name cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "remote task name {name:?} is not usable: it must be 1..={MAX_NAME_LEN} characters of [A-Za-z0-9_-] (it becomes a NATS subject token)"
)]
pub struct BadTaskName {
    /// The refused name.
    pub name: String,
}

/// Checks a task name: 1..=64 of `[A-Za-z0-9_-]`, so it is one subject token and a
/// valid consumer name.
///
/// # Errors
///
/// [`BadTaskName`] naming the refused name.
pub(crate) fn check_task_name(name: &str) -> Result<(), BadTaskName> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(BadTaskName {
            name: name.to_string(),
        })
    }
}

/// The subject jobs of task `name` are published on.
pub(crate) fn job_subject(name: &str) -> String {
    format!("{JOB_PREFIX}{name}")
}

/// The durable consumer all workers share for task `name`.
pub(crate) fn consumer_name(name: &str) -> String {
    format!("helix-task-{name}")
}

/// The subject router `router_id` receives its results on.
pub(crate) fn results_subject(router_id: &str) -> String {
    format!("{RESULTS_PREFIX}{router_id}")
}

/// How a worker ended a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// It ran; the body is the output.
    Ok,
    /// It arrived past its deadline and was not run.
    Expired,
    /// It panicked on the worker.
    Panicked,
    /// The worker has no task of that name (it does not pull such jobs, so this means
    /// a misrouted message).
    UnknownTask,
    /// The body did not decode as the task.
    BadPayload,
}

impl Status {
    /// The header value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Expired => "expired",
            Status::Panicked => "panicked",
            Status::UnknownTask => "unknown_task",
            Status::BadPayload => "bad_payload",
        }
    }

    /// Parses a header value.
    pub(crate) fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "ok" => Status::Ok,
            "expired" => Status::Expired,
            "panicked" => Status::Panicked,
            "unknown_task" => Status::UnknownTask,
            "bad_payload" => Status::BadPayload,
            _ => return None,
        })
    }
}

/// A worker's periodic report of itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Heartbeat {
    /// The worker's id (unique per process).
    pub(crate) worker: String,
    /// Tasks it runs at once.
    pub(crate) parallelism: usize,
    /// Tasks running now.
    pub(crate) running: usize,
    /// Jobs it has pulled and not yet started.
    pub(crate) queued: usize,
    /// Task names it serves.
    pub(crate) tasks: Vec<String>,
}

/// Largest heartbeat body accepted (a worker serving many tasks stays well below).
pub(crate) const MAX_HEARTBEAT_BYTES: usize = 16 * 1024;

impl Heartbeat {
    /// Parses and checks a heartbeat body: bounded size, a non-empty id, sane counts.
    pub(crate) fn parse(body: &[u8]) -> Option<Heartbeat> {
        if body.len() > MAX_HEARTBEAT_BYTES {
            return None;
        }
        let hb: Heartbeat = serde_json::from_slice(body).ok()?;
        let sane = !hb.worker.is_empty()
            && hb.worker.len() <= 128
            && (1..=4_096).contains(&hb.parallelism)
            && hb.running <= hb.parallelism
            && hb.queued <= 1 << 20
            && hb.tasks.len() <= 1_024
            && hb.tasks.iter().all(|t| check_task_name(t).is_ok());
        sane.then_some(hb)
    }
}

/// Parses a decimal header value.
pub(crate) fn parse_u64(v: Option<&str>) -> Option<u64> {
    v?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_names_are_single_subject_tokens() {
        assert!(check_task_name("spin").is_ok());
        assert!(check_task_name("resize_v2-fast").is_ok());
        for bad in ["", "a.b", "a b", "a*", ">", "é", &"x".repeat(65)] {
            let e = check_task_name(bad).expect_err(bad);
            assert!(e.to_string().contains("[A-Za-z0-9_-]"), "{e}");
        }
        assert_eq!(job_subject("spin"), "helix.jobs.spin");
        assert_eq!(consumer_name("spin"), "helix-task-spin");
    }

    #[test]
    fn statuses_round_trip_and_garbage_is_refused() {
        for s in [
            Status::Ok,
            Status::Expired,
            Status::Panicked,
            Status::UnknownTask,
            Status::BadPayload,
        ] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("OK"), None);
        assert_eq!(parse_u64(Some(" 42 ")), Some(42));
        assert_eq!(parse_u64(Some("-1")), None);
        assert_eq!(parse_u64(None), None);
    }

    #[test]
    fn heartbeats_are_checked() {
        let hb = Heartbeat {
            worker: "w1".into(),
            parallelism: 2,
            running: 1,
            queued: 0,
            tasks: vec!["spin".into()],
        };
        let body = serde_json::to_vec(&hb).unwrap();
        assert_eq!(Heartbeat::parse(&body), Some(hb.clone()));
        for bad in [
            b"not json".to_vec(),
            b"{}".to_vec(),
            serde_json::to_vec(&Heartbeat {
                running: 3,
                ..hb.clone()
            })
            .unwrap(),
            serde_json::to_vec(&Heartbeat {
                parallelism: 0,
                ..hb.clone()
            })
            .unwrap(),
            serde_json::to_vec(&Heartbeat {
                tasks: vec!["a.b".into()],
                ..hb.clone()
            })
            .unwrap(),
            vec![b' '; MAX_HEARTBEAT_BYTES + 1],
        ] {
            assert_eq!(
                Heartbeat::parse(&bad),
                None,
                "{:?}",
                String::from_utf8_lossy(&bad)
            );
        }
    }
}
