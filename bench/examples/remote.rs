//! The remote scenario (see `helix_overload::remote`): the router pinned to one core,
//! one worker process pinned to another, the same schedule at 2× the one-core capacity
//! run local-only and then with the worker. Starts its own `nats-server` (Debian's
//! package; on a free loopback port with a temporary store) unless `--nats` is given,
//! and its own worker (this program re-run with `--worker`). Prints a table, writes
//! `remote.json`, and exits non-zero when a bar is missed.
//!
//! ```text
//! cargo run --release -p helix-overload --example remote -- --secs 4 --out-dir docs/overload
//! cargo run --release -p helix-overload --example remote -- --secs 1 --no-bars   # smoke run
//! ```

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use helix_overload::remote::{OverloadTask, RemoteScenario, pin_to_core, run_remote};
use helixrouter::remote::{Worker, WorkerConfig};

#[derive(Debug, Parser)]
#[command(name = "remote", about)]
struct Args {
    /// Arrival window of each run, seconds.
    #[arg(long, default_value_t = 4.0)]
    secs: f64,
    /// Offered load as a multiple of the one-core capacity.
    #[arg(long, default_value_t = 2.0)]
    load: f64,
    /// Seed of the schedule.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// The router's core.
    #[arg(long, default_value_t = 0)]
    router_core: usize,
    /// The worker's core [default: 1, or 0 on a one-core machine].
    #[arg(long)]
    worker_core: Option<usize>,
    /// Use this NATS server instead of starting one.
    #[arg(long)]
    nats: Option<String>,
    /// Where remote.json is written.
    #[arg(long, default_value = "target/overload")]
    out_dir: PathBuf,
    /// Exit 0 even when a bar is missed (smoke runs too short to meet them).
    #[arg(long)]
    no_bars: bool,
    /// Run as the worker (what this program starts for itself).
    #[arg(long, hide = true)]
    worker: bool,
}

/// A child process killed (SIGKILL) and reaped on drop, so nothing outlives the run.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Starts `nats-server` with JetStream on a free loopback port and waits until it
/// accepts connections.
fn start_nats(store: &std::path::Path) -> Result<(Reaped, String), String> {
    let port = free_port().map_err(|e| format!("no free port: {e}"))?;
    let child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(store)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting nats-server (apt-get install nats-server): {e}"))?;
    let child = Reaped(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        if Instant::now() > deadline {
            return Err("nats-server did not accept connections within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((child, format!("nats://127.0.0.1:{port}")))
}

/// The worker: one task slot on its own core, serving the harness's task.
fn worker(url: &str, core: usize) -> Result<(), String> {
    pin_to_core(core).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let cfg = WorkerConfig {
            parallelism: 1,
            ..WorkerConfig::nats(url)
        };
        let w = Worker::builder(cfg)
            .register::<OverloadTask>()
            .build()
            .await
            .map_err(|e| e.to_string())?;
        w.run().await.map_err(|e| e.to_string())
    })
}

fn worker_core(args: &Args) -> usize {
    args.worker_core.unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        usize::from(cores >= 2)
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.worker {
        let url = args.nats.as_deref().unwrap_or_default();
        return match worker(url, worker_core(&args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("remote worker: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match scenario(&args) {
        Ok(met) if met || args.no_bars => ExitCode::SUCCESS,
        Ok(_) => {
            eprintln!("remote: a bar was missed (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("remote: {e}");
            ExitCode::FAILURE
        }
    }
}

fn scenario(args: &Args) -> Result<bool, String> {
    // Pin first: every thread started from here on (runtimes, the router's pool, the
    // arrival generator) inherits core `router_core`.
    pin_to_core(args.router_core).map_err(|e| e.to_string())?;
    let store = tempfile::tempdir().map_err(|e| format!("temporary store: {e}"))?;
    let (nats, url) = match &args.nats {
        Some(url) => (None, url.clone()),
        None => {
            let (child, url) = start_nats(store.path())?;
            (Some(child), url)
        }
    };
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let worker = Reaped(
        Command::new(exe)
            .args(["--worker", "--nats", &url, "--worker-core"])
            .arg(worker_core(args).to_string())
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting the worker: {e}"))?,
    );
    let mut cfg = RemoteScenario::new(url);
    cfg.secs = args.secs;
    cfg.load = args.load;
    cfg.seed = args.seed;
    cfg.processes.push(("worker process".into(), worker.0.id()));
    if let Some(n) = &nats {
        cfg.processes.push(("nats-server".into(), n.0.id()));
    }
    let report = run_remote(&cfg).map_err(|e| e.to_string())?;
    drop(worker);
    drop(nats);
    print!("{}", report.render_table());
    std::fs::create_dir_all(&args.out_dir)
        .map_err(|e| format!("creating {}: {e}", args.out_dir.display()))?;
    let json = args.out_dir.join("remote.json");
    report.write_json(&json).map_err(|e| e.to_string())?;
    println!("\nwrote {}", json.display());
    Ok(report.all_bars_met())
}
