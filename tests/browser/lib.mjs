// Shared helpers of the browser test and the screenshot script: start the helixrouter
// binary on a free loopback port, wait for it, and launch Debian's Chromium headless
// through playwright-core (which never downloads a browser of its own here).

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, "..", "..");
export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/** Arguments every launch uses: headless, sandbox off (root in CI), nothing phoning home. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Imports playwright-core, running `npm ci` here first when it is not installed. */
export async function loadPlaywright() {
  try {
    return await import("playwright-core");
  } catch (first) {
    if (!existsSync(path.join(HERE, "package-lock.json"))) throw first;
    process.stderr.write("playwright-core missing: running npm ci in tests/browser\n");
    const r = spawnSync("npm", ["ci", "--no-audit", "--no-fund"], {
      cwd: HERE,
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...process.env, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: "1" },
    });
    if (r.status !== 0) throw new Error("npm ci failed in tests/browser");
    return await import("playwright-core");
  }
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The binary to run: $HELIX_BIN, else target/debug/helixrouter of this repository. */
export function helixBin() {
  const bin = process.env.HELIX_BIN || "target/debug/helixrouter";
  return path.isAbsolute(bin) ? bin : path.resolve(REPO, bin);
}

/**
 * Starts a process (the binary, nats-server, a worker) with its output kept. Returns
 * { child, log(), exited(), stop() }; stop() sends SIGTERM and, after 8 s, SIGKILL.
 */
export function startProcess(cmd, args, { cwd, env } = {}) {
  const child = spawn(cmd, args, { cwd, env: env || process.env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const keep = (chunk) => {
    out += chunk.toString();
    if (out.length > 64 * 1024) out = out.slice(-48 * 1024);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  let exited = null;
  const done = new Promise((resolve) => {
    child.on("exit", (code, signal) => resolve((exited = exited || { code, signal })));
    // A command that cannot start (not installed) emits "error" and no "exit".
    child.on("error", (e) => resolve((exited = exited || { error: String(e.message || e) })));
  });
  return {
    child,
    log: () => out,
    exited: () => exited,
    async stop() {
      if (exited) return exited;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 8000);
      const r = await done;
      clearTimeout(t);
      return r;
    },
  };
}

/**
 * Starts the server on 127.0.0.1:`port` with a live simulated load. Returns
 * { child, base, log(), stop() }; stop() sends SIGTERM and, after 8 s, SIGKILL.
 */
export function startServer({ port, workDir, liveRate = 200 }) {
  const bin = helixBin();
  if (!existsSync(bin)) {
    throw new Error(`no binary at ${bin}: build it (cargo build) or set HELIX_BIN`);
  }
  const env = {
    ...process.env,
    HELIX_HTTP_ADDR: `127.0.0.1:${port}`,
    HELIX_SIM_JOBS: "0",
    HELIX_LIVE_RATE: String(liveRate),
    HELIX_WEIGHTS_PATH: path.join(workDir, "w.json"),
  };
  delete env.HELIX_API_TOKEN;
  return { ...startProcess(bin, [], { cwd: workDir, env }), base: `http://127.0.0.1:${port}` };
}

export async function waitHealthy(server, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (server.exited && server.exited()) {
      throw new Error(`server exited early (${JSON.stringify(server.exited())}):\n${server.log()}`);
    }
    try {
      const r = await fetch(`${server.base}/health`, { signal: AbortSignal.timeout(2000) });
      const body = await r.json();
      if (r.ok && body.status === "ok") return body;
      last = `HTTP ${r.status} ${JSON.stringify(body)}`;
    } catch (e) {
      last = String(e.message || e);
    }
    await sleep(200);
  }
  throw new Error(`server not healthy after ${timeoutMs} ms (${last}):\n${server.log()}`);
}

/** A fresh temporary directory; remove it with rmTree. */
export function tempDir(prefix) {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}
export function rmTree(dir) {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    /* best effort */
  }
}

/**
 * Launches Chromium with a fresh --user-data-dir (a persistent context over a new
 * temporary profile). Returns the playwright BrowserContext.
 */
export async function launchChromium(playwright, { userDataDir, viewport }) {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium`);
  }
  return playwright.chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: viewport || { width: 1280, height: 800 },
    deviceScaleFactor: 1,
    serviceWorkers: "block",
    timeout: 60000,
  });
}

/** True for URLs that stay on this machine (loopback hosts) or carry no request. */
export function isLocalUrl(u) {
  let url;
  try {
    url = new URL(u);
  } catch {
    return false;
  }
  if (url.protocol === "data:" || url.protocol === "blob:" || url.protocol === "about:") return true;
  const host = url.hostname.replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
