//! Open-loop load test of `examples/service` in its four modes: HelixRouter's tower
//! layer, `spawn_blocking`, and tower's `ConcurrencyLimit` + `LoadShed` per route and
//! around the whole router.
//!
//! For each mode it starts the service (`target/<profile>/examples/service`, built
//! beside this program) on a free loopback port. The capacity is measured once: the
//! CPU time (service + this generator, which share the cores) per request of each
//! route, route by route against the `spawn_blocking` mode, gives the rate of the mix
//! that needs every core. Every mode then gets the same seeded Poisson schedule at
//! each multiple of it. `/compress` bodies vary in size, log-uniform from
//! [`SMALLEST_BODY`] to [`LARGEST_BODY`] (their own seeded stream, so the same sizes in the
//! same order for every mode, and the capacity runs draw from the same distribution),
//! so a class holds both cheap and costly requests. Each request carries its route's
//! budget in `x-request-budget-ms`; its latency runs from its *scheduled* send time,
//! so a slow service cannot slow the generator down and hide its own latency
//! (no coordinated omission). A request not answered within budget + 50 ms is given
//! up and counted late. Goodput = 2xx answers within budget per second.
//!
//! ```text
//! scripts/service-bench.sh                 # full run, writes docs/service-bench/
//! cargo build --release --features tower --example service --example service_bench
//! target/release/examples/service_bench --secs 1 --loads 0.5,2 --no-bars --out-dir target/service-bench
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use plotters::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// A route of the mix.
#[derive(Debug, Clone, Copy)]
struct Route {
    name: &'static str,
    path: &'static str,
    post: bool,
    budget_ms: u64,
    weight: f64,
}

/// The mix: mostly cheap JSON, some compression, a few password hashes.
const ROUTES: [Route; 3] = [
    Route {
        name: "json",
        path: "/json",
        post: false,
        budget_ms: 50,
        weight: 0.6,
    },
    Route {
        name: "compress",
        path: "/compress",
        post: true,
        budget_ms: 100,
        weight: 0.3,
    },
    Route {
        name: "hash",
        path: "/hash",
        post: true,
        budget_ms: 300,
        weight: 0.1,
    },
];

/// Smallest `/compress` body (bytes).
const SMALLEST_BODY: usize = 1 << 10;
/// Largest `/compress` body (bytes), within the service's 2 MiB body limit.
const LARGEST_BODY: usize = 1 << 20;
/// Mixed into the seed of the body-size stream, so sizes do not move arrivals.
const SIZE_STREAM: u64 = 0x5EED_0B0D_1E55_123E;

/// A body size, log-uniform in [`SMALLEST_BODY`, `LARGEST_BODY`].
fn body_size(rng: &mut SmallRng) -> usize {
    let (lo, hi) = ((SMALLEST_BODY as f64).ln(), (LARGEST_BODY as f64).ln());
    let size = (lo + rng.random::<f64>() * (hi - lo)).exp().round() as usize;
    size.clamp(SMALLEST_BODY, LARGEST_BODY)
}

/// Extra wait past a request's budget before the client gives up on it.
const GIVE_UP_AFTER_BUDGET: Duration = Duration::from_millis(50);
/// Requests in flight at most; an arrival beyond it is not sent and counts as failed.
const MAX_IN_FLIGHT: usize = 8_192;

/// The service's modes: HelixRouter, then the baselines.
const MODES: [&str; 4] = ["helix", "spawn_blocking", "tower-shed", "tower-shed-global"];

struct Args {
    secs: f64,
    capacity_secs: f64,
    loads: Vec<f64>,
    seed: u64,
    out_dir: PathBuf,
    no_bars: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        secs: 5.0,
        capacity_secs: 3.0,
        loads: vec![0.5, 1.0, 2.0, 4.0],
        seed: 7,
        out_dir: PathBuf::from("target/service-bench"),
        no_bars: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |what: &str| it.next().ok_or(format!("{flag} needs {what}"));
        let num = |v: String, f: &str| {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x > 0.0)
                .ok_or(format!("{f}: `{v}` is not a number > 0"))
        };
        match flag.as_str() {
            "--secs" => a.secs = num(value("seconds")?, "--secs")?,
            "--capacity-secs" => a.capacity_secs = num(value("seconds")?, "--capacity-secs")?,
            "--loads" => {
                a.loads = value("a list like 0.5,1,2,4")?
                    .split(',')
                    .map(|x| num(x.trim().to_owned(), "--loads"))
                    .collect::<Result<_, _>>()?
            }
            "--seed" => {
                a.seed = value("a number")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            "--out-dir" => a.out_dir = PathBuf::from(value("a directory")?),
            "--no-bars" => a.no_bars = true,
            other => {
                return Err(format!(
                    "unknown flag `{other}`; flags: --secs S --capacity-secs S --loads L,.. --seed N --out-dir DIR --no-bars"
                ));
            }
        }
    }
    Ok(a)
}

/// The service in one mode, killed and reaped on drop.
struct Service {
    child: Child,
    base: String,
}

impl Service {
    fn start(mode: &str) -> Result<Service, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let bin = exe.with_file_name("service");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(&bin);
        cmd.args(["--addr", &addr])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if mode != "helix" {
            cmd.args(["--baseline", mode]);
        }
        let child = cmd.spawn().map_err(|e| {
            format!(
                "starting {} (build it: cargo build --release --features tower --example service): {e}",
                bin.display()
            )
        })?;
        let svc = Service {
            child,
            base: format!("http://{addr}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&addr).is_err() {
            if Instant::now() > deadline {
                return Err(format!("the {mode} service did not listen within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(svc)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq)]
enum End {
    /// 2xx, with its latency from the scheduled send (ms).
    Ok(f64),
    /// 503 (shed), answered after this many ms.
    Shed(f64),
    /// Another status, a connection error, or not sent (client at its in-flight cap).
    Failed,
    /// Not answered within budget + [`GIVE_UP_AFTER_BUDGET`].
    GaveUp,
}

/// Sends one request of `route`; a `/compress` body is `size` bytes.
async fn send(
    client: &reqwest::Client,
    base: &str,
    route: Route,
    body: &bytes_body::Body,
    size: usize,
) -> End {
    let url = format!("{base}{}", route.path);
    let req = if route.post {
        client.post(url).body(body.for_route(route.name, size))
    } else {
        client.get(url)
    };
    let req = req
        .header("x-request-budget-ms", route.budget_ms.to_string())
        .timeout(Duration::from_millis(route.budget_ms) + GIVE_UP_AFTER_BUDGET);
    match req.send().await {
        Ok(res) => {
            let status = res.status();
            // Read the whole body: the answer is not there until it is.
            match res.bytes().await {
                Ok(_) if status.is_success() => End::Ok(0.0),
                Ok(_) if status.as_u16() == 503 => End::Shed(0.0),
                Err(e) if e.is_timeout() => End::GaveUp,
                _ => End::Failed,
            }
        }
        Err(e) if e.is_timeout() => End::GaveUp,
        Err(_) => End::Failed,
    }
}

mod bytes_body {
    use super::LARGEST_BODY;

    /// Request bodies, made once (leaked, so each request borrows them): a password,
    /// and [`LARGEST_BODY`] of log-like text whose prefixes are the sized bodies.
    pub struct Body {
        text: &'static [u8],
    }

    impl Body {
        /// The bodies, built on first use.
        pub fn get() -> &'static Body {
            static BODY: std::sync::OnceLock<Body> = std::sync::OnceLock::new();
            BODY.get_or_init(Body::new)
        }

        fn new() -> Body {
            let mut text = Vec::with_capacity(LARGEST_BODY + 128);
            let mut i = 0u64;
            while text.len() < LARGEST_BODY {
                let line = format!(
                    "2026-12-02T11:{:02}:{:02}Z level=info route=/api/items/{} took_us={} user={}\n",
                    i / 60 % 60,
                    i % 60,
                    i * 7 % 1_000,
                    i * 37 % 9_973,
                    i % 17
                );
                text.extend_from_slice(line.as_bytes());
                i += 1;
            }
            Body {
                text: Vec::leak(text),
            }
        }

        /// The body of a request of route `name`: the password, or the first `size`
        /// bytes of the text (at most all of it).
        pub fn for_route(&self, name: &str, size: usize) -> reqwest::Body {
            match name {
                "hash" => reqwest::Body::from("correct horse battery staple"),
                _ => reqwest::Body::from(&self.text[..size.min(self.text.len())]),
            }
        }
    }
}

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| e.to_string())
}

fn pick(rng: &mut SmallRng) -> Route {
    let total: f64 = ROUTES.iter().map(|r| r.weight).sum();
    let mut x = rng.random::<f64>() * total;
    for r in ROUTES {
        if x < r.weight {
            return r;
        }
        x -= r.weight;
    }
    ROUTES[0]
}

/// CPU seconds (user + system) process `pid` has used, from `/proc/<pid>/stat`.
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let ticks = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// What one request of each route costs this machine: the CPU the service *and* this
/// generator use per answered request (both share the cores), measured route by route
/// with two clients back to back for `secs` each against the `spawn_blocking` mode,
/// with body sizes drawn as in the open-loop runs (from `seed`).
/// The capacity is the rate of the mix that needs every core: `cores / Σ weight × cost`.
async fn measure_capacity(
    svc: &Service,
    secs: f64,
    seed: u64,
) -> Result<(f64, Vec<(String, f64)>), String> {
    let client = client()?;
    let body = bytes_body::Body::get();
    let pid = svc.child.id().to_string();
    let mut costs = Vec::new();
    let total_weight: f64 = ROUTES.iter().map(|r| r.weight).sum();
    let mut mean_cost = 0.0;
    for (r, route) in ROUTES.into_iter().enumerate() {
        // No budget applies here: ask with a generous one.
        let route = Route {
            budget_ms: 10_000,
            ..route
        };
        let before = (cpu_secs(&pid), cpu_secs("self"));
        let stop = Instant::now() + Duration::from_secs_f64(secs);
        let mut tasks = Vec::new();
        for c in 0..2u64 {
            let (client, base) = (client.clone(), svc.base.clone());
            let mut sizes = SmallRng::seed_from_u64(seed ^ SIZE_STREAM ^ (((r as u64) << 8) | c));
            tasks.push(tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < stop {
                    let size = body_size(&mut sizes);
                    if matches!(send(&client, &base, route, body, size).await, End::Ok(_)) {
                        done += 1;
                    }
                }
                done
            }));
        }
        let mut done = 0;
        for t in tasks {
            done += t.await.map_err(|e| e.to_string())?;
        }
        let after = (cpu_secs(&pid), cpu_secs("self"));
        let used = match (before, after) {
            ((Some(s0), Some(g0)), (Some(s1), Some(g1))) => (s1 - s0) + (g1 - g0),
            _ => return Err("cannot read CPU times from /proc (Linux only)".into()),
        };
        if done == 0 {
            return Err(format!(
                "the capacity run of {} answered nothing",
                route.path
            ));
        }
        let cost = used / done as f64;
        mean_cost += route.weight / total_weight * cost;
        costs.push((route.name.to_owned(), cost * 1e3));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    Ok((cores / mean_cost.max(1e-9), costs))
}

/// One route's figures in one run.
#[derive(Debug, Clone, Serialize)]
struct RouteFigures {
    route: &'static str,
    budget_ms: u64,
    offered: u64,
    good: u64,
    late: u64,
    shed: u64,
    failed: u64,
    /// Of 2xx answers, ms from the scheduled send.
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
}

/// One mode at one load.
#[derive(Debug, Clone, Serialize)]
struct Run {
    mode: &'static str,
    load: f64,
    rate: f64,
    offered: u64,
    goodput_per_sec: f64,
    shed_per_sec: f64,
    failed: u64,
    gave_up: u64,
    /// How late the generator sent, p99 ms (its own health).
    send_lag_p99_ms: f64,
    routes: Vec<RouteFigures>,
}

fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).copied()
}

/// The open-loop run: Poisson arrivals at `rate` for `secs`.
async fn run_open(
    mode: &'static str,
    base: &str,
    load: f64,
    rate: f64,
    secs: f64,
    seed: u64,
) -> Result<Run, String> {
    let client = client()?;
    let body = bytes_body::Body::get();
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut sizes = SmallRng::seed_from_u64(seed ^ SIZE_STREAM);
    // The schedule first, identical for every mode at this load.
    let mut schedule = Vec::new();
    let mut t = 0.0;
    loop {
        t += -(1.0 - rng.random::<f64>()).ln() / rate;
        if t >= secs {
            break;
        }
        let route = pick(&mut rng);
        let size = body_size(&mut sizes);
        schedule.push((Duration::from_secs_f64(t), route, size));
    }
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let start = tokio::time::Instant::now() + Duration::from_millis(20);
    let mut tasks = Vec::with_capacity(schedule.len());
    let mut lags = Vec::with_capacity(schedule.len());
    for &(at, route, size) in &schedule {
        let due = start + at;
        tokio::time::sleep_until(due).await;
        lags.push(due.elapsed().as_secs_f64() * 1e3);
        let Ok(permit) = Arc::clone(&in_flight).try_acquire_owned() else {
            tasks.push((route, None));
            continue;
        };
        let (client, base) = (client.clone(), base.to_owned());
        tasks.push((
            route,
            Some(tokio::spawn(async move {
                let end = send(&client, &base, route, body, size).await;
                drop(permit);
                let ms = due.elapsed().as_secs_f64() * 1e3;
                match end {
                    End::Ok(_) => End::Ok(ms),
                    End::Shed(_) => End::Shed(ms),
                    e => e,
                }
            })),
        ));
    }
    let mut per_route: Vec<(RouteFigures, Vec<f64>)> = ROUTES
        .iter()
        .map(|r| {
            (
                RouteFigures {
                    route: r.name,
                    budget_ms: r.budget_ms,
                    offered: 0,
                    good: 0,
                    late: 0,
                    shed: 0,
                    failed: 0,
                    p50_ms: None,
                    p99_ms: None,
                },
                Vec::new(),
            )
        })
        .collect();
    let (mut good, mut shed, mut failed, mut gave_up) = (0u64, 0u64, 0u64, 0u64);
    for (route, task) in tasks {
        let end = match task {
            Some(t) => t.await.unwrap_or(End::Failed),
            None => End::Failed,
        };
        let Some((f, lat)) = per_route.iter_mut().find(|(f, _)| f.route == route.name) else {
            continue;
        };
        f.offered += 1;
        match end {
            End::Ok(ms) => {
                lat.push(ms);
                if ms <= route.budget_ms as f64 {
                    f.good += 1;
                    good += 1;
                } else {
                    f.late += 1;
                }
            }
            End::Shed(_) => {
                f.shed += 1;
                shed += 1;
            }
            End::GaveUp => {
                f.late += 1;
                gave_up += 1;
            }
            End::Failed => {
                f.failed += 1;
                failed += 1;
            }
        }
    }
    let routes = per_route
        .into_iter()
        .map(|(mut f, mut lat)| {
            lat.sort_by(f64::total_cmp);
            f.p50_ms = quantile(&lat, 0.5);
            f.p99_ms = quantile(&lat, 0.99);
            f
        })
        .collect();
    lags.sort_by(f64::total_cmp);
    Ok(Run {
        mode,
        load,
        rate,
        offered: schedule.len() as u64,
        goodput_per_sec: good as f64 / secs,
        shed_per_sec: shed as f64 / secs,
        failed,
        gave_up,
        send_lag_p99_ms: quantile(&lags, 0.99).unwrap_or(0.0),
        routes,
    })
}

#[derive(Debug, Serialize)]
struct Bar {
    name: String,
    value: f64,
    target: String,
    met: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    cores: usize,
    secs_per_run: f64,
    seed: u64,
    capacity_per_sec: f64,
    /// CPU (service + generator) per request of each route, ms.
    route_cost_ms: Vec<(String, f64)>,
    runs: Vec<Run>,
    bars: Vec<Bar>,
}

fn json_p99(runs: &[Run], mode: &str, load: f64) -> Option<f64> {
    runs.iter()
        .find(|r| r.mode == mode && r.load == load)?
        .routes
        .iter()
        .find(|f| f.route == "json")?
        .p99_ms
}

fn bars(runs: &[Run], loads: &[f64]) -> Vec<Bar> {
    let mut bars = Vec::new();
    let goodput = |mode: &str, load: f64| {
        runs.iter()
            .find(|r| r.mode == mode && r.load == load)
            .map(|r| r.goodput_per_sec)
    };
    let low = loads.iter().copied().fold(f64::INFINITY, f64::min);
    for run in runs.iter().filter(|r| r.mode == "helix" && r.load <= 0.5) {
        let shed = run.routes.iter().map(|f| f.shed).sum::<u64>();
        bars.push(Bar {
            name: format!("{}×: helix requests shed", run.load),
            value: shed as f64,
            target: "0".into(),
            met: shed == 0,
        });
    }
    for &load in loads.iter().filter(|&&l| l >= 2.0) {
        let helix = goodput("helix", load).unwrap_or(0.0);
        let best = MODES[1..]
            .iter()
            .filter_map(|m| goodput(m, load))
            .fold(0.0, f64::max);
        let ratio = helix / best.max(f64::MIN_POSITIVE);
        bars.push(Bar {
            name: format!("{load}×: helix goodput / best baseline"),
            value: ratio,
            target: ">= 1.3".into(),
            met: ratio >= 1.3,
        });
        if let (Some(p), Some(base)) = (json_p99(runs, "helix", load), json_p99(runs, "helix", low))
        {
            bars.push(Bar {
                name: format!("{load}×: helix /json p99 − its p99 at {low}× (ms)"),
                value: p - base,
                target: "<= 5".into(),
                met: p - base <= 5.0,
            });
        }
    }
    bars
}

fn render(report: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "service bench: {} cores shared by the service and this generator · capacity {:.0} req/s · {} s per run · seed {}",
        report.cores, report.capacity_per_sec, report.secs_per_run, report.seed
    );
    let costs: Vec<String> = report
        .route_cost_ms
        .iter()
        .map(|(r, ms)| format!("{r} {ms:.2} ms"))
        .collect();
    let _ = writeln!(
        s,
        "CPU per request (service + generator): {} · mix {} · compress bodies {}–{} KiB, log-uniform\n",
        costs.join(", "),
        ROUTES
            .iter()
            .map(|r| format!(
                "{} {:.0}% (budget {} ms)",
                r.name,
                r.weight * 100.0,
                r.budget_ms
            ))
            .collect::<Vec<_>>()
            .join(", "),
        SMALLEST_BODY >> 10,
        LARGEST_BODY >> 10
    );
    let _ = writeln!(
        s,
        "| load | mode | offered/s | goodput/s | 503/s | gave up | failed | json p50/p99 ms | compress p50/p99 ms | hash p50/p99 ms |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    let ms = |v: Option<f64>| v.map_or("—".to_owned(), |x| format!("{x:.1}"));
    for r in &report.runs {
        let cell = |name: &str| {
            r.routes
                .iter()
                .find(|f| f.route == name)
                .map_or("—".to_owned(), |f| {
                    format!("{} / {}", ms(f.p50_ms), ms(f.p99_ms))
                })
        };
        let _ = writeln!(
            s,
            "| {}× | {} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {} | {} |",
            r.load,
            r.mode,
            r.offered as f64 / report.secs_per_run,
            r.goodput_per_sec,
            r.shed_per_sec,
            r.gave_up,
            r.failed,
            cell("json"),
            cell("compress"),
            cell("hash")
        );
    }
    let _ = writeln!(s, "\nbars:");
    for b in &report.bars {
        let _ = writeln!(
            s,
            "  [{}] {}: {:.2} (target {})",
            if b.met { "met" } else { "MISSED" },
            b.name,
            b.value,
            b.target
        );
    }
    s
}

fn chart(report: &Report, path: &Path) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
    let root = SVGBackend::new(path, (900, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let max_load = report.runs.iter().map(|r| r.load).fold(1.0, f64::max);
    let max_good = report
        .runs
        .iter()
        .map(|r| r.goodput_per_sec)
        .fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "examples/service: goodput (2xx within budget) vs offered load, capacity {:.0} req/s",
                report.capacity_per_sec
            ),
            ("sans-serif", 18),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_load * 1.05, 0.0..max_good * 1.1)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("offered load (× measured capacity)")
        .y_desc("goodput, requests/s")
        .draw()
        .map_err(|e| err(&e))?;
    let colours = [
        RGBColor(0xd6, 0x27, 0x28),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0x94, 0x67, 0xbd),
        RGBColor(0x1f, 0x77, 0xb4),
    ];
    for (mode, colour) in MODES.iter().zip(colours) {
        let pts: Vec<(f64, f64)> = report
            .runs
            .iter()
            .filter(|r| r.mode == *mode)
            .map(|r| (r.load, r.goodput_per_sec))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), colour.stroke_width(3)))
            .map_err(|e| err(&e))?
            .label(*mode)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3))
            });
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 4, colour.filled())))
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

async fn bench(args: &Args) -> Result<Report, String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (capacity, route_cost_ms) = {
        let svc = Service::start("spawn_blocking")?;
        // Warm up (first argon2 allocations, connections), then measure.
        let _ = measure_capacity(&svc, 0.2, args.seed ^ 1).await?;
        measure_capacity(&svc, args.capacity_secs, args.seed).await?
    };
    eprintln!("capacity: {capacity:.0} req/s (CPU ms per request: {route_cost_ms:?})");
    let mut runs = Vec::new();
    for (i, &load) in args.loads.iter().enumerate() {
        let seed = args.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for mode in MODES {
            let svc = Service::start(mode)?;
            // A short warm-up at half capacity: the router learns its classes' costs
            // here, as a running service would have long before.
            let _ = run_open(mode, &svc.base, 0.5, capacity * 0.5, 0.5, seed ^ 1).await?;
            let run = run_open(mode, &svc.base, load, capacity * load, args.secs, seed).await?;
            eprintln!(
                "{load}× {mode}: goodput {:.0}/s of {:.0}/s offered",
                run.goodput_per_sec, run.rate
            );
            runs.push(run);
        }
    }
    let bars = bars(&runs, &args.loads);
    Ok(Report {
        cores,
        secs_per_run: args.secs,
        seed: args.seed,
        capacity_per_sec: capacity,
        route_cost_ms,
        runs,
        bars,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("service_bench: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("service_bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = match rt.block_on(bench(&args)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("service_bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let table = render(&report);
    print!("{table}");
    let write = || -> Result<(), String> {
        std::fs::create_dir_all(&args.out_dir)
            .map_err(|e| format!("creating {}: {e}", args.out_dir.display()))?;
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        for (name, text) in [
            ("service-bench.json", json),
            ("service-bench.md", table.clone()),
        ] {
            let p = args.out_dir.join(name);
            std::fs::write(&p, text).map_err(|e| format!("writing {}: {e}", p.display()))?;
        }
        chart(&report, &args.out_dir.join("service-bench.svg"))
    };
    if let Err(e) = write() {
        eprintln!("service_bench: {e}");
        return ExitCode::FAILURE;
    }
    println!(
        "\nwrote {}/service-bench.{{json,md,svg}}",
        args.out_dir.display()
    );
    if args.no_bars || report.bars.iter().all(|b| b.met) {
        ExitCode::SUCCESS
    } else {
        eprintln!("service_bench: a bar was missed (see above)");
        ExitCode::FAILURE
    }
}
