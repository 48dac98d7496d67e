//! A `helixrouter` binary started as a child process for tests: output captured to
//! files, health and exit waited on with bounds, killed if the test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_helixrouter");

/// A port that was free a moment ago.
pub fn free_port(ip: &str) -> u16 {
    let l = std::net::TcpListener::bind((ip, 0)).expect("bind port 0");
    l.local_addr().expect("addr").port()
}

/// A running `helixrouter` whose output goes to files; killed if the test fails.
pub struct Proc {
    child: Option<Child>,
    base: String,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Proc {
    /// Starts the binary with `env` (HELIX_* variables of the test's own environment
    /// are cleared first), logging into `logs`.
    pub fn start(logs: &Path, name: &str, addr: &str, env: &[(&str, &str)]) -> Proc {
        let stdout = logs.join(format!("{name}.out"));
        let stderr = logs.join(format!("{name}.err"));
        let mut cmd = Command::new(BIN);
        for (k, _) in std::env::vars() {
            if k.starts_with("HELIX_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("HELIX_HTTP_ADDR", addr)
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .current_dir(logs)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn helixrouter");
        let port = addr.rsplit(':').next().expect("port");
        Proc {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            stdout,
            stderr,
        }
    }

    /// The address the binary printed it listens on (`HELIX_HTTP_ADDR` may use port 0),
    /// waiting up to 30 s for it.
    pub async fn listening_addr(&self) -> String {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&self.stdout).unwrap_or_default();
            if let Some(rest) = text.split("listening on http://").nth(1)
                && let Some((a, _)) = rest.split_once('/')
                && !a.is_empty()
            {
                return a.to_string();
            }
            assert!(
                Instant::now() < end,
                "helixrouter printed no address\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// stdout and stderr so far.
    pub fn output(&self) -> String {
        let out = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        let err = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        format!("--- stdout\n{out}--- stderr\n{err}")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("child").id()
    }

    /// Waits until `/health` answers ok (fails the test after 20 s or if the process exits).
    pub async fn wait_healthy(&mut self) {
        let c = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(resp) = c.get(self.url("/health")).send().await
                && resp.status().is_success()
            {
                let v: serde_json::Value = resp.json().await.expect("health json");
                assert_eq!(v["status"], "ok");
                return;
            }
            if let Some(status) = self.exited() {
                panic!("helixrouter exited early with {status}\n{}", self.output());
            }
            assert!(
                Instant::now() < end,
                "helixrouter never became healthy\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The exit status if the process has exited (without waiting).
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .expect("child")
            .try_wait()
            .expect("wait")
    }

    /// Sends SIGTERM with the `kill` command.
    pub fn sigterm(&self) {
        let st = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -TERM failed");
    }

    /// Waits up to `secs` for the process to exit.
    pub async fn wait_exit(&mut self, secs: u64) -> ExitStatus {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.exited() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < end,
                "helixrouter did not exit within {secs} s\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then asserts a clean exit (status 0) within 15 s.
    pub async fn terminate(&mut self) {
        self.sigterm();
        let status = self.wait_exit(15).await;
        assert!(
            status.success(),
            "exit status {status:?} after SIGTERM\n{}",
            self.output()
        );
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
