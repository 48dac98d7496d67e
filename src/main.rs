//! `helixrouter`: serves the dashboard, `/metrics` and the API over a router fed by the
//! built-in simulator. Thin: CLI, tracing, wiring, signals.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use helixrouter::WorkHint;
use helixrouter::config::RouterConfig;
use helixrouter::neural_router::NeuralRouter;
use helixrouter::remote::{DemoJob, NatsAuth, RemoteConfig, RemoteTask, Worker, WorkerConfig};
use helixrouter::router::{Router, neural_config, reload, warm_learner};
use helixrouter::simulator::{Simulator, SimulatorConfig};
use helixrouter::types::{Job, Strategy};
use helixrouter::web::{self, AppState, MutationPolicy};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// Adaptive async compute routing: dashboard, Prometheus metrics and API over a
/// router fed by the built-in simulator. Every flag can also be set by its env var.
#[derive(Debug, Parser)]
#[command(name = "helixrouter", version, about)]
struct Cli {
    /// Address to serve HTTP on.
    #[arg(long, env = "HELIX_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Jobs in the startup warm-up simulation (0 = serve only: no warm-up, no live load).
    #[arg(long, env = "HELIX_SIM_JOBS", default_value_t = 200)]
    sim_jobs: usize,
    /// Seed of the simulator (reproducible workloads).
    #[arg(long, env = "HELIX_SIM_SEED", default_value_t = 7)]
    sim_seed: u64,
    /// Simulated jobs per second kept running after the warm-up so the dashboard is
    /// live [default: 25, or 0 when --sim-jobs is 0].
    #[arg(long, env = "HELIX_LIVE_RATE")]
    live_rate: Option<u32>,
    /// JSON config file: loaded at start as a patch, then watched for changes.
    #[arg(long, env = "HELIX_CONFIG_PATH")]
    config_path: Option<PathBuf>,
    /// Where neural weights are loaded from at start and saved to on shutdown.
    #[arg(long, env = "HELIX_WEIGHTS_PATH", default_value = "helix_weights.json")]
    weights_path: PathBuf,
    /// Seconds between autoscaler / adaptive-threshold ticks.
    #[arg(long, env = "HELIX_TICK_SECS", default_value_t = 10)]
    tick_secs: u64,
    /// Seconds between polls of the config file.
    #[arg(long, env = "HELIX_RELOAD_SECS", default_value_t = 5)]
    reload_secs: u64,
    /// Bearer token required on mutating routes.
    #[arg(long, env = "HELIX_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// Maximum concurrent SSE clients (503 beyond).
    #[arg(long, env = "HELIX_SSE_LIMIT", default_value_t = web::DEFAULT_SSE_LIMIT)]
    sse_limit: usize,
    /// Open HTTP connections at most (further clients wait in the listen backlog).
    #[arg(long, env = "HELIX_MAX_CONNECTIONS", default_value_t = web::MAX_CONNECTIONS as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: u64,
    /// Seconds a client has to send a complete request head (slow-loris guard; also
    /// closes idle keep-alive connections).
    #[arg(long, env = "HELIX_HEADER_TIMEOUT_SECS", default_value_t = web::HEADER_READ_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout_secs: u64,
    /// Seconds a blocked write to a client may last before the connection is closed.
    #[arg(long, env = "HELIX_WRITE_STALL_SECS", default_value_t = web::WRITE_STALL_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    write_stall_secs: u64,
    /// NATS server of remote workers; when set, the simulator's heavy jobs may be
    /// offloaded to `helixrouter worker` processes.
    #[arg(long, env = "HELIX_NATS_URL")]
    nats: Option<String>,
    /// NATS credentials file (`.creds`), for `--nats` and `worker --nats`.
    #[arg(long, env = "HELIX_NATS_CREDS", global = true)]
    nats_creds: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Run a remote worker serving the built-in demo kinds over NATS JetStream.
    Worker {
        /// NATS server URL.
        #[arg(long, env = "HELIX_NATS_URL", default_value = "nats://127.0.0.1:4222")]
        nats: String,
        /// Tasks run at once (default: the cores available).
        #[arg(long, env = "HELIX_WORKER_PARALLELISM", value_parser = clap::value_parser!(u64).range(1..=4096))]
        parallelism: Option<u64>,
        /// Seconds JetStream waits for a job's ack before redelivering it (set when the
        /// shared consumer is first created).
        #[arg(long, env = "HELIX_WORKER_ACK_WAIT_SECS", default_value_t = 10,
              value_parser = clap::value_parser!(u64).range(1..=3600))]
        ack_wait_secs: u64,
    },
}

fn nats_auth(creds: &Option<PathBuf>) -> NatsAuth {
    creds.clone().map_or(NatsAuth::None, NatsAuth::CredsFile)
}

/// `helixrouter worker`: serves the demo kinds until SIGINT/SIGTERM.
async fn run_worker(
    nats: String,
    parallelism: Option<u64>,
    ack_wait_secs: u64,
    creds: &Option<PathBuf>,
) -> Result<(), String> {
    let mut cfg = WorkerConfig::nats(nats).auth(nats_auth(creds));
    cfg.ack_wait = Duration::from_secs(ack_wait_secs);
    if let Some(p) = parallelism {
        cfg.parallelism = usize::try_from(p).map_err(|e| e.to_string())?;
    }
    let worker = Worker::builder(cfg)
        .register::<DemoJob>()
        .build()
        .await
        .map_err(|e| e.to_string())?;
    println!("HelixRouter worker serving {}", DemoJob::NAME);
    worker
        .run_until(web::shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    if let Some(Command::Worker {
        nats,
        parallelism,
        ack_wait_secs,
    }) = &cli.command
    {
        return run_worker(nats.clone(), *parallelism, *ack_wait_secs, &cli.nats_creds).await;
    }
    let router = build_router(&cli).await?;
    let server = start_server(&cli, router.clone()).await?;
    let offload = cli.nats.is_some();
    if cli.sim_jobs > 0 {
        warm_up(&router, cli.sim_jobs, cli.sim_seed, offload).await;
    }
    spawn_background(&cli, &router, offload);
    // Runs until SIGINT/SIGTERM stops the server (graceful: open requests finish).
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "server failed"),
        Err(e) => tracing::error!(error = %e, "server task failed"),
    }
    let report = router.shutdown().await;
    tracing::info!(?report, "router drained");
    match router.save_weights(&cli.weights_path) {
        Ok(()) => tracing::info!(path = %cli.weights_path.display(), "neural weights saved"),
        Err(e) => {
            tracing::error!(path = %cli.weights_path.display(), error = %e, "could not save neural weights")
        }
    }
    Ok(())
}

/// The config to start with: the defaults, patched by the config file when there is a
/// valid one (an unreadable or invalid file is logged and ignored).
fn start_config(path: Option<&std::path::Path>) -> RouterConfig {
    let cfg = RouterConfig::default();
    let Some(path) = path else {
        return cfg;
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "config file unreadable at start");
            return cfg;
        }
    };
    match helixrouter::config::RouterConfigPatch::from_json(&text).and_then(|p| cfg.apply(&p)) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring invalid config file at start");
            cfg
        }
    }
}

/// The router: the start config, the saved learner, and the remote side with `--nats`.
async fn build_router(cli: &Cli) -> Result<Router, String> {
    let cfg = start_config(cli.config_path.as_deref());
    let learner = load_learner(&cli.weights_path, &cfg);
    let mut builder = Router::builder(cfg).learner(learner);
    if let Some(url) = &cli.nats {
        builder = builder
            .remote(RemoteConfig::nats(url.clone()).auth(nats_auth(&cli.nats_creds)))
            .register::<DemoJob>();
    }
    builder.build().await.map_err(|e| e.to_string())
}

/// Binds `--addr` and spawns the HTTP server, which runs until SIGINT/SIGTERM.
async fn start_server(
    cli: &Cli,
    router: Router,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>, String> {
    let listener = TcpListener::bind(cli.addr)
        .await
        .map_err(|e| format!("cannot bind {}: {e}", cli.addr))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let policy = MutationPolicy::new(cli.api_token.clone(), local.ip().is_loopback());
    let state = AppState::new(router, policy).with_sse_limit(cli.sse_limit);
    let limits = web::ServeLimits {
        header_read_timeout: Duration::from_secs(cli.header_timeout_secs),
        max_connections: usize::try_from(cli.max_connections).unwrap_or(usize::MAX),
        write_stall_timeout: Duration::from_secs(cli.write_stall_secs),
    };
    let server = tokio::spawn(web::serve_on_with(
        listener,
        state,
        web::shutdown_signal(),
        limits,
    ));
    println!("HelixRouter listening on http://{local}/");
    Ok(server)
}

/// Spawns the live simulated load (unless its rate is 0), the control ticks and, with
/// a config file, its reload watch.
fn spawn_background(cli: &Cli, router: &Router, offload: bool) {
    let live_rate = cli
        .live_rate
        .unwrap_or(if cli.sim_jobs > 0 { 25 } else { 0 });
    if live_rate > 0 {
        tokio::spawn(live_load(
            router.clone(),
            live_rate,
            cli.sim_seed.wrapping_add(1),
            offload,
        ));
    }
    tokio::spawn(ticks(
        router.clone(),
        Duration::from_secs(cli.tick_secs.max(1)),
    ));
    if let Some(path) = cli.config_path.clone() {
        tokio::spawn(reload::watch(
            router.clone(),
            path,
            Duration::from_secs(cli.reload_secs.max(1)),
        ));
    }
}

/// Loads saved weights; a missing file is normal, a bad one is logged and replaced by
/// a warm start.
fn load_learner(path: &std::path::Path, cfg: &RouterConfig) -> NeuralRouter {
    if !path.exists() {
        return warm_learner(cfg);
    }
    match NeuralRouter::load(path, neural_config(cfg)) {
        Ok(n) => {
            tracing::info!(path = %path.display(), samples = n.samples(), "neural weights loaded");
            n
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring unusable weights file; warm-starting from the heuristic");
            warm_learner(cfg)
        }
    }
}

/// Runs a simulated job: through `run_task` (so it may go to a remote worker) when
/// offloading, else through `submit`.
async fn run_job(router: &Router, job: Job, offload: bool) {
    if offload {
        let hint = WorkHint::from(&job);
        let _ = router.run_task(hint, DemoJob(job)).await;
    } else {
        let _ = router.submit(job).await;
    }
}

async fn warm_up(router: &Router, jobs: usize, seed: u64, offload: bool) {
    let sim = Simulator::new(SimulatorConfig {
        seed,
        total_jobs: jobs,
        ..SimulatorConfig::default()
    });
    let handles: Vec<_> = sim
        .all_jobs()
        .into_iter()
        .map(|job| {
            let r = router.clone();
            tokio::spawn(async move { run_job(&r, job, offload).await })
        })
        .collect();
    for h in handles {
        let _ = h.await;
    }
    let s = router.stats();
    println!("Simulation result ({jobs} jobs, seed {seed}):");
    println!(
        "  completed: {}  dropped: {}  failed: {}",
        s.completed, s.dropped, s.failed
    );
    println!(
        "  adaptive_spawn_threshold: {}  pressure: {:.2}",
        s.adaptive_spawn_threshold, s.pressure.score
    );
    for st in s
        .strategies
        .iter()
        .filter(|st| st.strategy != Strategy::Drop)
    {
        println!(
            "  {:<9} {:>5} jobs  p50: {:>9.1} µs  p95: {:>9.1} µs",
            st.strategy.as_str(),
            st.completed,
            st.latency.p50_us,
            st.latency.p95_us
        );
    }
}

/// Keeps `rate` simulated jobs per second flowing, with at most 1024 outstanding.
async fn live_load(router: Router, rate: u32, seed: u64, offload: bool) {
    let permits = Arc::new(tokio::sync::Semaphore::new(1_024));
    let mut round = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let per_tick = (rate as usize).div_ceil(10);
    loop {
        tick.tick().await;
        if router.is_shutting_down() {
            return;
        }
        let sim = Simulator::new(SimulatorConfig {
            seed: seed.wrapping_add(round),
            total_jobs: per_tick,
            ..SimulatorConfig::default()
        });
        round += 1;
        for mut job in sim.all_jobs() {
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                break;
            };
            job.id += round * 1_000_000;
            let r = router.clone();
            tokio::spawn(async move {
                run_job(&r, job, offload).await;
                drop(permit);
            });
        }
    }
}

/// Periodic control ticks: adaptive spawn threshold (and the autoscaler).
async fn ticks(router: Router, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        if router.is_shutting_down() {
            return;
        }
        router.maybe_adapt_threshold();
        router.autoscale_tick();
    }
}
