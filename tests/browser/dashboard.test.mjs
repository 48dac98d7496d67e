// The dashboard in a real browser (Debian's Chromium, headless, via playwright-core).
//
//   node tests/browser/dashboard.test.mjs
//
// Starts $HELIX_BIN (default target/debug/helixrouter; build it first with
// `cargo build`) on a free loopback port with a live simulated load, loads `/`, and
// checks what a person would: the totals and the work classes table match /api/stats,
// decisions stream into the feed with their class, the stream reports "live", class
// names are shown as text (never parsed as markup), nothing logs a JavaScript or
// console error, the feed stays bounded, no request leaves the machine, the page fits
// a phone, and a dropped stream is reported and recovered from. The remote workers panel
// says remote is off on this server; fed made-up stats it shows worker ids as text and
// caps its rows; and against a real nats-server (`nats-server` on PATH, or
// $NATS_SERVER) with one `helixrouter worker` and a second server started with
// `--nats`, it shows that worker, connected, and the jobs sent to it. Prints one line
// per check and "N passed, N failed" last; exits non-zero when any check failed.
//
// playwright-core is installed on first use (npm ci here, no browser download).

import net from "node:net";

import {
  helixBin,
  isLocalUrl,
  freePort,
  launchChromium,
  loadPlaywright,
  rmTree,
  sleep,
  startProcess,
  startServer,
  tempDir,
  waitHealthy,
} from "./lib.mjs";

const LIVE_RATE = 200;
const FEED_MAX = 100;
const OVERALL_TIMEOUT_MS = 240000;

const results = [];
async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`ok - ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push({ name, ok: false });
    console.log(`not ok - ${name}\n    ${String((e && e.stack) || e).split("\n").join("\n    ")}`);
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}
function digits(text) {
  const t = String(text).replace(/[^0-9]/g, "");
  assert(t.length > 0, `no number in ${JSON.stringify(text)}`);
  return Number(t);
}

/** Waits until 127.0.0.1:`port` accepts a TCP connection (`proc` must stay alive). */
async function waitPort(port, proc, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exited()) throw new Error(`exited early (${JSON.stringify(proc.exited())}):\n${proc.log()}`);
    const ok = await new Promise((resolve) => {
      const sock = net.connect({ host: "127.0.0.1", port }, () => {
        sock.destroy();
        resolve(true);
      });
      sock.on("error", () => resolve(false));
      sock.setTimeout(1000, () => {
        sock.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms:\n${proc.log()}`);
}

/** startServer with `vars` added to the environment it inherits (restored right after). */
function startServerWithEnv(vars, opts) {
  const saved = {};
  for (const [k, v] of Object.entries(vars)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  try {
    return startServer(opts);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** The remote workers panel, read in one synchronous page evaluation. */
function readRemote(page) {
  return page.evaluate(() => {
    const t = (id) => document.getElementById(id).textContent.trim();
    return {
      state: document.getElementById("remote").getAttribute("data-state"),
      offShown: !document.getElementById("remote-off").hidden,
      off: t("remote-off"),
      bodyShown: !document.getElementById("remote-body").hidden,
      conn: t("remote-conn"),
      pill: document.getElementById("remote-pill").getAttribute("data-state"),
      rows: [...document.querySelectorAll("#remote-workers tr")].map((tr) => ({
        id: tr.getAttribute("data-worker-id"),
        shownId: tr.querySelector(".worker-id") && tr.querySelector(".worker-id").textContent,
        cells: [...tr.children].map((c) => c.textContent.trim()),
      })),
      moreShown: !document.getElementById("remote-more").hidden,
      more: t("remote-more"),
      emptyShown: !document.getElementById("remote-workers-empty").hidden,
      workers: t("rm-workers"),
      inFlight: t("rm-in-flight"),
      share: t("rm-share"),
      p50: t("rm-rt-p50"),
      p99: t("rm-rt-p99"),
      sent: t("rm-sent"),
      completed: t("rm-completed"),
      redelivered: t("rm-redelivered"),
      duplicates: t("rm-duplicates"),
      expired: t("rm-expired"),
      timedOut: t("rm-timed-out"),
      timedOutAttn: document.getElementById("rm-timed-out").classList.contains("attn"),
      tasks: t("rm-tasks"),
      subject: t("rm-subject"),
    };
  });
}

/** Page width checks of the phone layout: nothing wider than the viewport outside a scroller. */
function readOverflow(page) {
  return page.evaluate(() => ({
    inner: window.innerWidth,
    doc: document.documentElement.scrollWidth,
    body: document.body.scrollWidth,
    wide: [...document.querySelectorAll("body *")]
      .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1 && !el.closest(".table-wrap, .heat-scroll"))
      .slice(0, 5)
      .map((el) => `${el.tagName.toLowerCase()}#${el.id}.${el.className}`),
  }));
}

async function getJson(base, p) {
  const r = await fetch(base + p, { signal: AbortSignal.timeout(5000) });
  assert(r.ok, `GET ${p}: HTTP ${r.status}`);
  return r.json();
}

/** Reads the rendered totals in one synchronous page evaluation (one consistent frame). */
function readTotals(page) {
  return page.evaluate(() => {
    const t = (id) => document.getElementById(id).textContent;
    return {
      seq: Number(document.getElementById("totals").getAttribute("data-seq") || 0),
      submitted: t("total-submitted"),
      completed: t("total-completed"),
      dropped: t("total-dropped"),
      failed: t("total-failed"),
      cancelled: t("total-cancelled"),
      in_flight: t("total-in-flight"),
      work_detail: t("work-detail"),
      work_wasted: t("work-wasted"),
    };
  });
}

/** The classes the built-in simulator submits (its built-in kinds). */
const SIM_CLASSES = ["hash_mix", "prime_count", "monte_carlo_risk"];

/** Reads the work classes table in one synchronous page evaluation. */
function readClasses(page) {
  return page.evaluate(() => ({
    seq: Number(document.getElementById("totals").getAttribute("data-seq") || 0),
    rows: [...document.querySelectorAll("#classes-body tr")].map((tr) => ({
      name: tr.getAttribute("data-class"),
      shownName: tr.querySelector(".class-name") && tr.querySelector(".class-name").textContent,
      mismatch: tr.getAttribute("data-mismatch"),
      rowFlag: tr.classList.contains("mismatch"),
      badge: tr.querySelector(".badge-hint") ? tr.querySelector(".badge-hint").textContent : null,
      cells: [...tr.children].map((c) => c.textContent.trim()),
    })),
    head: [...document.querySelectorAll("#classes-table thead th")].map((th) => th.textContent.trim()),
  }));
}

async function main() {
  // The first server runs without remote workers whatever the caller's environment says.
  delete process.env.HELIX_NATS_URL;
  delete process.env.HELIX_NATS_CREDS;
  const work = tempDir("helix-browser-");
  const profile = tempDir("helix-chromium-");
  const profilePhone = tempDir("helix-chromium-phone-");
  const port = await freePort();
  let server = startServer({ port, workDir: work, liveRate: LIVE_RATE });
  const base = server.base;
  let context = null;
  let phone = null;
  // The remote check's nats-server, worker and second server, and their directories.
  const remote = { nats: null, worker: null, server: null, dirs: [] };
  const stopRemote = async () => {
    // The router first (it may still wait on results), then the worker, then NATS.
    for (const k of ["server", "worker", "nats"]) {
      if (remote[k]) await remote[k].stop().catch(() => {});
      remote[k] = null;
    }
    remote.dirs.splice(0).forEach(rmTree);
  };
  const watchdog = setTimeout(() => {
    console.log("not ok - overall timeout");
    console.log(`${results.filter((r) => r.ok).length} passed, ${results.filter((r) => !r.ok).length + 1} failed`);
    server.child.kill("SIGKILL");
    for (const k of ["server", "worker", "nats"]) if (remote[k]) remote[k].child.kill("SIGKILL");
    remote.dirs.forEach(rmTree);
    process.exit(1);
  }, OVERALL_TIMEOUT_MS);

  const pageErrors = [];
  const consoleErrors = [];
  const requests = [];
  const foreign = [];
  let collectErrors = true;

  try {
    let healthy = false;
    await check("server answers /health", async () => {
      const h = await waitHealthy(server, 90000);
      assert(h.status === "ok", `health: ${JSON.stringify(h)}`);
      healthy = true;
    });
    if (!healthy) return;

    const playwright = await loadPlaywright();
    context = await launchChromium(playwright, { userDataDir: profile, viewport: { width: 1280, height: 800 } });
    // Anything that is not loopback is recorded and refused before it leaves.
    await context.route("**/*", (route) => {
      const url = route.request().url();
      if (isLocalUrl(url)) return route.continue();
      foreign.push(url);
      return route.abort("blockedbyclient");
    });
    context.on("request", (req) => {
      requests.push(req.url());
      if (!isLocalUrl(req.url()) && !foreign.includes(req.url())) foreign.push(req.url());
    });
    const page = context.pages()[0] || (await context.newPage());
    page.on("pageerror", (err) => collectErrors && pageErrors.push(String(err && err.stack ? err.stack : err)));
    page.on("console", (msg) => {
      if (collectErrors && msg.type() === "error") consoleErrors.push(`${msg.text()} @ ${JSON.stringify(msg.location())}`);
    });

    await check("page loads with its assets", async () => {
      const resp = await page.goto(base + "/", { waitUntil: "load", timeout: 30000 });
      assert(resp && resp.status() === 200, `GET / -> ${resp && resp.status()}`);
      assert((await page.title()).includes("HelixRouter"), `title: ${await page.title()}`);
      for (const p of ["/assets/app.js", "/assets/style.css"]) {
        assert(requests.some((u) => new URL(u).pathname === p), `page did not load ${p}`);
      }
      const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert(bg !== "rgba(0, 0, 0, 0)" && bg !== "rgb(255, 255, 255)", `stylesheet not applied (body background ${bg})`);
    });

    await check("live stats are rendered", async () => {
      await page.waitForFunction(
        () => {
          const el = document.getElementById("total-submitted");
          return el && /\d/.test(el.textContent) && Number(el.textContent.replace(/\D/g, "")) > 0;
        },
        null,
        { timeout: 20000 },
      );
      const rows = await page.$$eval("#latency-table tbody tr", (trs) => trs.map((tr) => tr.getAttribute("data-strategy")));
      const api = await getJson(base, "/api/stats");
      assert(rows.length >= 5 && rows.length === api.strategies.length, `latency table has ${rows.length} rows, /api/stats ${api.strategies.length} strategies`);
      assert(
        JSON.stringify(rows) === JSON.stringify(api.strategies.map((s) => s.strategy)),
        `latency rows ${rows} != strategies of /api/stats`,
      );
      const cells = await page.$$eval("#latency-table tbody tr:first-child td", (tds) => tds.map((td) => td.textContent));
      assert(cells.length === 10, `latency row has ${cells.length} cells`);
      const head = await page.$$eval("#latency-table thead th", (ths) => ths.map((th) => th.textContent.trim().split(/\s/)[0]));
      assert(head[2] === "shed", `the latency table's third column is ${JSON.stringify(head[2])}, not "shed"`);

      const p = await page.textContent("#pressure-score");
      assert(/^\d+(\.\d+)? %$/.test(p.trim()), `pressure score ${JSON.stringify(p)} is not a percentage`);
    });

    await check("the strategy mix and the latency table list remote", async () => {
      const r = await page.evaluate(() => {
        const li = document.querySelector('#donut-legend li[data-s="remote"]');
        const tr = document.querySelector('#latency-body tr[data-strategy="remote"]');
        return {
          legend: li && li.children[1].textContent,
          chip: tr && tr.querySelector(".chip") && tr.querySelector(".chip").textContent,
          // The palette colour, not the fallback of an unknown strategy.
          colour: tr && getComputedStyle(tr.querySelector(".chip"), "::before").backgroundColor,
          unknown: (() => {
            const probe = document.createElement("span");
            probe.className = "chip";
            probe.setAttribute("data-s", "no-such-strategy");
            document.body.appendChild(probe);
            const c = getComputedStyle(probe, "::before").backgroundColor;
            probe.remove();
            return c;
          })(),
        };
      });
      assert(r.legend === "remote", `donut legend label for remote: ${JSON.stringify(r.legend)}`);
      assert(r.chip === "remote", `latency table label for remote: ${JSON.stringify(r.chip)}`);
      assert(r.colour && r.colour !== r.unknown, `remote is drawn in the unknown-strategy colour ${r.unknown}`);
    });

    await check("without NATS the remote panel says remote is not configured", async () => {
      const api = await getJson(base, "/api/stats");
      assert(api.remote == null, `/api/stats remote is ${JSON.stringify(api.remote)} on a server without --nats`);
      await page.waitForFunction(() => document.getElementById("remote").getAttribute("data-state") === "off", null, { timeout: 10000 });
      const r = await readRemote(page);
      assert(r.offShown && !r.bodyShown, `panel shows off ${r.offShown}, body ${r.bodyShown}`);
      assert(/not configured/.test(r.off) && /--nats/.test(r.off), `off text ${JSON.stringify(r.off)}`);
      assert(r.conn === "off" && r.pill === "off", `connection ${JSON.stringify(r.conn)}, pill ${r.pill}`);
      assert(r.rows.length === 0, `${r.rows.length} worker rows without remote`);
    });

    await check("rendered totals match /api/stats", async () => {
      // before <= rendered <= after for the monotone counters: `before` is fetched,
      // then we wait for two more renders (the page polls in a chain, so the second
      // was fetched after `before` returned), read the page, and fetch `after`.
      for (let attempt = 0; ; attempt++) {
        const before = await getJson(base, "/api/stats");
        const seq0 = (await readTotals(page)).seq;
        await page.waitForFunction(
          (s) => Number(document.getElementById("totals").getAttribute("data-seq")) >= s + 2,
          seq0,
          { timeout: 10000 },
        );
        const shown = await readTotals(page);
        const after = await getJson(base, "/api/stats");
        const r = {};
        for (const k of ["submitted", "completed", "dropped", "failed", "cancelled", "in_flight"]) r[k] = digits(shown[k]);
        const problems = [];
        for (const k of ["submitted", "completed", "dropped", "failed", "cancelled"]) {
          if (!(before[k] <= r[k] && r[k] <= after[k])) problems.push(`${k}: ${before[k]} <= ${r[k]} <= ${after[k]} fails`);
        }
        const identity = r.submitted - r.completed - r.dropped - r.failed - r.cancelled;
        if (r.in_flight !== identity) problems.push(`in flight ${r.in_flight} != submitted - ended ${identity}`);
        if (after.submitted <= before.submitted) problems.push("the live load is not running (submitted did not grow)");
        // The wasted run time tile: its total run time lies between the snapshots'.
        const runTotal = (s) => s.work.on_time_secs + s.work.late_secs + s.work.aborted_secs;
        const m = /of ([0-9.]+) s$/.exec(shown.work_detail);
        if (!m) problems.push(`wasted run time detail "${shown.work_detail}" has no total`);
        else if (!(runTotal(before) - 0.05 <= Number(m[1]) && Number(m[1]) <= runTotal(after) + 0.05)) {
          problems.push(`run time shown ${m[1]} s is not within ${runTotal(before)}..${runTotal(after)} s`);
        }
        if (!/%$/.test(shown.work_wasted)) problems.push(`wasted share "${shown.work_wasted}" is not a percentage`);
        if (!problems.length) return;
        if (attempt >= 1) throw new Error(problems.join("; "));
      }
    });

    await check("the work classes table has the simulator's classes, its numbers match /api/stats", async () => {
      await page.waitForFunction(
        (want) => {
          const names = [...document.querySelectorAll("#classes-body tr")].map((tr) => tr.getAttribute("data-class"));
          return want.every((n) => names.includes(n));
        },
        SIM_CLASSES,
        { timeout: 20000 },
      );
      const head = (await readClasses(page)).head;
      const col = (label) => {
        const i = head.findIndex((t) => t.split(/\s/)[0] === label);
        assert(i >= 0, `no "${label}" column in ${JSON.stringify(head)}`);
        return i;
      };
      const ci = {};
      for (const k of ["samples", "completed", "dropped", "late", "cancelled"]) ci[k] = col(k);
      const learnedCol = col("learned");
      const wastedCol = col("wasted");
      // As for the totals: before <= shown <= after for every monotone per-class counter.
      for (let attempt = 0; ; attempt++) {
        const before = await getJson(base, "/api/stats");
        const seq0 = (await readClasses(page)).seq;
        await page.waitForFunction(
          (s) => Number(document.getElementById("totals").getAttribute("data-seq")) >= s + 2,
          seq0,
          { timeout: 10000 },
        );
        const shown = await readClasses(page);
        const after = await getJson(base, "/api/stats");
        const problems = [];
        const names = shown.rows.map((r) => r.name);
        const apiNames = after.classes.map((c) => c.name);
        if (JSON.stringify(names) !== JSON.stringify(apiNames)) problems.push(`rows ${names} != classes of /api/stats ${apiNames}`);
        for (const name of SIM_CLASSES) {
          const row = shown.rows.find((r) => r.name === name);
          const b = before.classes.find((c) => c.name === name);
          const a = after.classes.find((c) => c.name === name);
          if (!row || !a || !b) {
            problems.push(`class ${name}: row ${!!row}, in /api/stats ${!!a}`);
            continue;
          }
          if (row.shownName !== name) problems.push(`class ${name} is shown as ${JSON.stringify(row.shownName)}`);
          for (const [k, i] of Object.entries(ci)) {
            const v = digits(row.cells[i]);
            if (!(b[k] <= v && v <= a[k])) problems.push(`${name}.${k}: ${b[k]} <= ${v} <= ${a[k]} fails`);
          }
          if (a.completed > 0 && !/^\d+(\.\d+)? ?(ns|µs|ms|s)$/.test(row.cells[learnedCol])) {
            problems.push(`${name} learned cost ${JSON.stringify(row.cells[learnedCol])} is not a duration`);
          }
          // The wasted share of the class's run time, once it ran anything.
          const ran = b.work && b.work.on_time_secs + b.work.late_secs + b.work.aborted_secs > 0;
          if (ran && !/^\d+(\.\d+)? %$/.test(row.cells[wastedCol])) {
            problems.push(`${name} wasted ${JSON.stringify(row.cells[wastedCol])} is not a percentage`);
          }
        }
        // A mismatched row carries both the row class and a "hint off" badge (text, not colour alone).
        for (const r of shown.rows) {
          const flagged = r.mismatch === "true";
          if (flagged !== r.rowFlag || flagged !== (r.badge !== null && /hint off/.test(r.badge))) {
            problems.push(`row ${r.name}: data-mismatch ${r.mismatch}, row flag ${r.rowFlag}, badge ${JSON.stringify(r.badge)}`);
          }
        }
        if (!problems.length) return;
        if (attempt >= 1) throw new Error(problems.join("; "));
      }
    });

    await check('#sse-status says "live"', async () => {
      await page.waitForFunction(() => document.getElementById("sse-status").textContent.trim() === "live", null, {
        timeout: 15000,
      });
    });

    await check("SSE decisions appear in #feed, newest first", async () => {
      await page.waitForFunction(() => document.querySelectorAll("#feed .feed-row").length >= 10, null, { timeout: 15000 });
      const first = await page.$$eval("#feed .feed-row", (rows) => rows.map((r) => r.getAttribute("data-job-id")));
      assert(first.every((id) => /^\d+$/.test(id)), `bad data-job-id in ${first.slice(0, 5)}`);
      // New decisions keep arriving: the top row becomes one not seen before.
      await page.waitForFunction(
        (seen) => !seen.includes(document.querySelector("#feed .feed-row").getAttribute("data-job-id")),
        first,
        { timeout: 10000 },
      );
      // Newest first. Jobs run concurrently, so ids are only roughly ordered within a
      // burst: compare the medians of the top and bottom ten rows once the feed is long.
      await page.waitForFunction(() => document.querySelectorAll("#feed .feed-row").length >= 60, null, { timeout: 15000 });
      const ids = await page.$$eval("#feed .feed-row", (rows) => rows.map((r) => Number(r.getAttribute("data-job-id"))));
      const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
      const top = median(ids.slice(0, 10));
      const bottom = median(ids.slice(-10));
      assert(top > bottom, `newest rows (median id ${top}) are not above the oldest (median id ${bottom})`);
      const row = await page.$eval("#feed .feed-row", (r) => ({ s: r.getAttribute("data-s"), text: r.textContent }));
      assert(["inline", "spawn", "cpu_pool", "batch", "drop"].includes(row.s), `row strategy ${row.s}`);
      // Each row names its decision's class (the simulator's built-in kinds are classes).
      const head = await page.$$eval(".feed-table thead th", (ths) => ths.map((th) => th.textContent.trim()));
      assert(head.includes("class"), `no class column in the feed: ${head}`);
      const { rowCount, classes } = await page.evaluate(() => ({
        rowCount: document.querySelectorAll("#feed .feed-row").length,
        classes: [...document.querySelectorAll("#feed .feed-row td.col-class")].map((td) => td.textContent),
      }));
      assert(classes.length === rowCount, `${classes.length} class cells for ${rowCount} rows`);
      const odd = classes.filter((c) => !SIM_CLASSES.includes(c));
      assert(odd.length === 0, `feed classes not from the simulator: ${[...new Set(odd)].slice(0, 5)}`);
    });

    await check(`the feed stays bounded (<= ${FEED_MAX} rows) under ${LIVE_RATE} jobs/s`, async () => {
      const n0 = await page.evaluate(() => document.getElementsByTagName("*").length);
      await sleep(4000);
      const { rows, children, n1 } = await page.evaluate(() => ({
        rows: document.querySelectorAll("#feed .feed-row").length,
        children: document.getElementById("feed").children.length,
        n1: document.getElementsByTagName("*").length,
      }));
      assert(rows > 0 && rows <= FEED_MAX, `feed has ${rows} rows`);
      assert(children <= FEED_MAX, `feed has ${children} children`);
      assert(n1 <= n0 + 200, `document grew from ${n0} to ${n1} elements in 4 s`);
    });

    await check("a strategy has one colour everywhere, six distinct colours (remote included)", async () => {
      const colours = await page.evaluate(() => {
        const by = {};
        const add = (s, c) => {
          (by[s] = by[s] || new Set()).add(c);
        };
        document.querySelectorAll(".chip[data-s]").forEach((el) => add(el.dataset.s, getComputedStyle(el, "::before").backgroundColor));
        document.querySelectorAll("#donut-legend li[data-s] .sw").forEach((el) => add(el.parentElement.dataset.s, getComputedStyle(el).backgroundColor));
        document.querySelectorAll("circle.donut-seg[data-s]").forEach((el) => add(el.dataset.s, getComputedStyle(el).stroke));
        return Object.fromEntries(Object.entries(by).map(([k, v]) => [k, [...v]]));
      });
      for (const [s, cs] of Object.entries(colours)) assert(cs.length === 1, `${s} is drawn in ${cs.join(", ")}`);
      const distinct = new Set(Object.values(colours).map((c) => c[0]));
      assert(Object.keys(colours).length >= 6 && "remote" in colours && distinct.size === Object.keys(colours).length, `colours ${JSON.stringify(colours)}`);
    });

    await check("every panel shows data (neural, config, autoscaler, pressure)", async () => {
      await page.waitForFunction(
        () =>
          document.querySelectorAll("#config-body tr[data-key]").length > 5 &&
          document.querySelectorAll("#kind-body tr").length > 0 &&
          /\d/.test(document.getElementById("nn-samples").textContent),
        null,
        { timeout: 15000 },
      );
      const cfg = await getJson(base, "/api/config");
      const keys = await page.$$eval("#config-body tr[data-key]", (trs) => trs.map((t) => t.dataset.key));
      assert(keys.length === Object.keys(cfg).length, `config shows ${keys.length} of ${Object.keys(cfg).length} keys`);
      const auto = await page.evaluate(() => ({
        empty: !document.getElementById("autoscaler-empty").hidden,
        emptyText: document.getElementById("autoscaler-empty").textContent,
        body: !document.getElementById("autoscaler-body").hidden,
      }));
      assert(auto.empty !== auto.body, `autoscaler panel shows ${JSON.stringify(auto)}`);
      const heat = await page.evaluate(() => {
        const c = document.getElementById("heatmap");
        return { w: c.width, h: c.height };
      });
      assert(heat.w > 100 && heat.h >= 50, `heat map canvas is ${heat.w}x${heat.h}`);
    });

    await check("sheds are shown as sheds (mix, latency table) and a class's model and fit are shown", async () => {
      // Made-up /api/stats: 100 jobs routed to the pool of which 30 were shed in its
      // queue, and 20 shed at routing; a class learning a units fit.
      const p = await context.newPage();
      await p.route("**/api/stats", async (route) => {
        const resp = await route.fetch();
        const s = await resp.json();
        for (const x of s.strategies) {
          x.routed = 0;
          x.dropped = 0;
        }
        const pool = s.strategies.find((x) => x.strategy === "cpu_pool");
        const drop = s.strategies.find((x) => x.strategy === "drop");
        Object.assign(pool, { routed: 100, dropped: 30 });
        Object.assign(drop, { routed: 20, dropped: 20 });
        const base0 = s.classes[0] || {};
        s.classes.push({ ...base0, name: "sized", model: "units", fixed_ns: 30000, ns_per_unit: 12.5, residual_spread: 1.1, units_samples: 64 });
        return route.fulfill({ response: resp, json: s });
      });
      try {
        await p.goto(base + "/", { waitUntil: "load" });
        await p.waitForFunction(() => [...document.querySelectorAll("#classes-body tr")].some((tr) => tr.getAttribute("data-class") === "sized"), null, {
          timeout: 15000,
        });
        const r = await p.evaluate(() => {
          const n = (s) => Number(document.querySelector(`#donut-legend li[data-s="${s}"] .n`).textContent.replace(/\D/g, ""));
          const tr = [...document.querySelectorAll("#classes-body tr")].find((t) => t.getAttribute("data-class") === "sized");
          return {
            drop: n("drop"),
            pool: n("cpu_pool"),
            poolShed: document.querySelector('#latency-body tr[data-strategy="cpu_pool"] .col-shed').textContent,
            model: tr.querySelector(".col-model").textContent,
            fit: tr.querySelector(".col-fit").textContent,
          };
        });
        assert(r.drop === 50 && r.pool === 70, `mix: drop ${r.drop} (want 50 = every shed), cpu_pool ${r.pool} (want 70)`);
        assert(r.poolShed.trim() === "30", `cpu_pool shed cell ${JSON.stringify(r.poolShed)}`);
        assert(r.model === "units" && /30(\.0)? µs \+ 12\.5 ns\/u ±1\.1/.test(r.fit), `model ${r.model}, fit ${JSON.stringify(r.fit)}`);
      } finally {
        await p.close();
      }
    });

    await check("class names are shown as text; the overflow note appears", async () => {
      // No HTTP route submits work of a chosen class, so this page sees /api/stats with
      // a class whose name is markup added (and class_overflow set).
      const hostile = '<b id="injected">bold</b><img src="/x-injected" onerror="window.__pwned=1">';
      const p = await context.newPage();
      const errs = [];
      p.on("pageerror", (e) => errs.push(String(e)));
      p.on("console", (m) => m.type() === "error" && errs.push(m.text()));
      await p.route("**/api/stats", async (route) => {
        const resp = await route.fetch();
        const s = await resp.json();
        const base0 = s.classes[0] || {};
        s.classes.push({ ...base0, name: hostile, mismatch: true, hint_ns: 5000000, hint_ratio: 14.2, completed: 4242 });
        s.class_overflow = 1234;
        return route.fulfill({ response: resp, json: s });
      });
      try {
        await p.goto(base + "/", { waitUntil: "load" });
        await p.waitForFunction((n) => [...document.querySelectorAll("#classes-body tr")].some((tr) => tr.getAttribute("data-class") === n), hostile, {
          timeout: 15000,
        });
        const r = await p.evaluate((n) => {
          const tr = [...document.querySelectorAll("#classes-body tr")].find((t) => t.getAttribute("data-class") === n);
          const note = document.getElementById("class-overflow");
          return {
            markup: document.querySelectorAll("#classes-table b, #classes-table img, #injected").length,
            shown: tr.querySelector(".class-name").textContent,
            badge: tr.querySelector(".badge-hint") && tr.querySelector(".badge-hint").textContent,
            text: tr.textContent,
            pwned: window.__pwned === 1,
            noteHidden: note.hidden,
            note: note.textContent,
          };
        }, hostile);
        assert(r.markup === 0, `${r.markup} element(s) were made from a class name`);
        assert(r.shown === hostile, `class name shown as ${JSON.stringify(r.shown)}`);
        assert(!r.pwned, "an onerror handler from a class name ran");
        assert(r.badge && /hint off/.test(r.badge) && /14\.2× above/.test(r.badge), `badge ${JSON.stringify(r.badge)}`);
        assert(/4,242/.test(r.text), `completed 4242 not in ${JSON.stringify(r.text)}`);
        assert(!r.noteHidden && /1,234 lookups beyond max_classes/.test(r.note) && /_overflow/.test(r.note), `overflow note ${JSON.stringify(r.note)}`);
        assert(!requests.some((u) => u.includes("x-injected")), "the page requested an image named in a class name");
        assert(errs.length === 0, `errors: ${errs.join(" | ")}`);
        // The real stats never overflowed: the live page keeps the note hidden.
        assert(await page.evaluate(() => document.getElementById("class-overflow").hidden), "overflow note shown on the live page");
      } finally {
        await p.close();
      }
    });

    await check("remote panel: worker ids are shown as text, rows are capped at 32 with \"+N more\", it fits a phone", async () => {
      // No real setup has 40 workers or a worker id made of markup: this page sees
      // /api/stats with a made-up `remote` (and half the jobs routed to remote).
      const hostile = '<b id="injected-worker">w</b><img src="/x-injected-worker" onerror="window.__pwnedWorker=1">';
      const long = "worker-with-a-very-long-id-" + "x".repeat(120);
      const workers = Array.from({ length: 40 }, (_, i) => ({
        id: i === 0 ? hostile : i === 1 ? long : `worker-${String(i).padStart(2, "0")}`,
        parallelism: 8,
        running: i % 9,
        queued: i,
        tasks: ["helix_demo_job", `<i>task ${i}</i>`],
        last_seen_ms: i === 2 ? 9000 : 250 + i,
      }));
      const fake = {
        connected: false,
        results_subject: "helix.results.<script>window.__pwnedWorker=1</script>",
        tasks: ["helix_demo_job"],
        workers,
        in_flight: 17,
        sent: 1234,
        completed: 1200,
        failed: 0,
        expired: 2,
        timed_out: 5,
        duplicates: 3,
        malformed: 0,
        redelivered: 4,
        publish_failed: 0,
        round_trip_p50_us: null,
        round_trip_p99_us: null,
      };
      const p = await context.newPage();
      const errs = [];
      p.on("pageerror", (e) => errs.push(String(e)));
      p.on("console", (m) => m.type() === "error" && errs.push(m.text()));
      await p.route("**/api/stats", async (route) => {
        const resp = await route.fetch();
        const s = await resp.json();
        const others = s.strategies.filter((x) => x.strategy !== "remote").reduce((n, x) => n + x.routed, 0);
        const rs = s.strategies.find((x) => x.strategy === "remote");
        if (rs) rs.routed = others;
        s.remote = fake;
        return route.fulfill({ response: resp, json: s });
      });
      try {
        await p.goto(base + "/", { waitUntil: "load" });
        await p.waitForFunction(() => document.querySelectorAll("#remote-workers tr").length > 0, null, { timeout: 15000 });
        const r = await readRemote(p);
        const extra = await p.evaluate(() => ({
          markup: document.querySelectorAll("#remote b, #remote img, #remote i, #remote script, #injected-worker").length,
          pwned: window.__pwnedWorker === 1,
          staleRows: [...document.querySelectorAll("#remote-workers tr.stale")].map((tr) => tr.getAttribute("data-worker-id")),
        }));
        assert(r.bodyShown && !r.offShown && r.state === "disconnected", `panel state ${r.state}, body ${r.bodyShown}, off ${r.offShown}`);
        assert(r.conn === "disconnected" && r.pill === "down", `connection ${JSON.stringify(r.conn)}, pill ${r.pill}`);
        assert(r.rows.length === 32, `${r.rows.length} worker rows for 40 workers (cap 32)`);
        assert(r.moreShown && r.more === "+8 more workers", `more note ${r.moreShown} ${JSON.stringify(r.more)}`);
        assert(r.workers === "40", `workers count ${JSON.stringify(r.workers)}`);
        assert(extra.markup === 0, `${extra.markup} element(s) were made from remote data`);
        assert(!extra.pwned && !requests.some((u) => u.includes("x-injected-worker")), "markup in a worker id ran or loaded");
        assert(r.rows[0].id === hostile && r.rows[0].shownId === hostile, `worker id shown as ${JSON.stringify(r.rows[0].shownId)}`);
        assert(r.rows[1].shownId === long, "the long worker id is not shown whole (as text)");
        assert(r.rows[3].cells[1] === "3 / 8" && r.rows[3].cells[2] === "3", `row 3 cells ${JSON.stringify(r.rows[3].cells)}`);
        assert(JSON.stringify(extra.staleRows) === JSON.stringify(["worker-02"]), `stale rows ${JSON.stringify(extra.staleRows)}`);
        assert(r.rows[2].cells[4] === "9.00 s ago" && r.rows[3].cells[4] === "253 ms ago", `last seen ${r.rows[2].cells[4]}, ${r.rows[3].cells[4]}`);
        assert(/^50\.0 %/.test(r.share), `remote share ${JSON.stringify(r.share)} (half the jobs were routed to remote)`);
        assert(r.p50 === "—" && r.p99 === "—", `round trips without data: ${r.p50} / ${r.p99}`);
        const counts = { sent: "1,234", completed: "1,200", redelivered: "4", duplicates: "3", expired: "2", timedOut: "5" };
        for (const [k, v] of Object.entries(counts)) assert(r[k] === v, `${k} shown as ${JSON.stringify(r[k])}, want ${v}`);
        assert(r.inFlight.startsWith("17"), `in flight ${JSON.stringify(r.inFlight)}`);
        assert(r.timedOutAttn, "timed out > 0 is not flagged");
        assert(r.subject === fake.results_subject, `results subject ${JSON.stringify(r.subject)}`);
        // The same page at phone width: the panel and its 32 rows fit (the table scrolls inside its box).
        await p.setViewportSize({ width: 390, height: 844 });
        await sleep(300);
        const m = await readOverflow(p);
        assert(m.doc <= m.inner && m.body <= m.inner, `page is ${m.doc}/${m.body} px wide in a ${m.inner} px viewport; wide: ${m.wide}`);
        assert(m.wide.length === 0, `elements overflow the viewport: ${m.wide.join(", ")}`);
        const table = await p.evaluate(() => {
          const wrap = document.querySelector("#remote .table-wrap");
          return { scroll: wrap.scrollWidth, client: wrap.clientWidth };
        });
        assert(table.scroll <= table.client + 1, `the workers table is ${table.scroll} px in a ${table.client} px box on a phone`);
        assert(errs.length === 0, `errors: ${errs.join(" | ")}`);
      } finally {
        await p.close();
      }
    });

    await check("with nats-server and a worker: the remote panel shows the worker, connected, and jobs sent", async () => {
      const natsPort = await freePort();
      const natsUrl = `nats://127.0.0.1:${natsPort}`;
      const natsDir = tempDir("helix-nats-");
      const workerDir = tempDir("helix-worker-");
      const work2 = tempDir("helix-browser-remote-");
      remote.dirs.push(natsDir, workerDir, work2);
      const logs = () =>
        ["nats", "worker", "server"]
          .filter((k) => remote[k])
          .map((k) => `---- ${k} log (tail) ----\n${remote[k].log().slice(-2000)}`)
          .join("\n");
      const p = await context.newPage();
      const errs = [];
      p.on("pageerror", (e) => errs.push(String(e)));
      p.on("console", (m) => m.type() === "error" && errs.push(m.text()));
      try {
        remote.nats = startProcess(process.env.NATS_SERVER || "nats-server", ["-a", "127.0.0.1", "-p", String(natsPort), "-js", "-sd", natsDir]);
        await waitPort(natsPort, remote.nats);
        const env = { ...process.env };
        delete env.HELIX_NATS_URL;
        remote.worker = startProcess(helixBin(), ["worker", "--nats", natsUrl, "--parallelism", "2"], { cwd: workerDir, env });
        const port2 = await freePort();
        remote.server = startServerWithEnv({ HELIX_NATS_URL: natsUrl }, { port: port2, workDir: work2, liveRate: 50 });
        await waitHealthy(remote.server, 60000);
        const base2 = remote.server.base;

        // The worker's first heartbeat (every 1 s) makes it appear in /api/stats.
        let api = null;
        const deadline = Date.now() + 15000;
        while (Date.now() < deadline) {
          if (remote.worker.exited()) throw new Error(`the worker exited: ${JSON.stringify(remote.worker.exited())}`);
          api = await getJson(base2, "/api/stats");
          if (api.remote && api.remote.connected && api.remote.workers.length > 0) break;
          await sleep(250);
        }
        assert(api && api.remote, `/api/stats remote is ${JSON.stringify(api && api.remote)} on a server with --nats`);
        assert(api.remote.connected, "the router is not connected to NATS");
        assert(api.remote.workers.length === 1, `/api/stats lists ${api.remote.workers.length} workers after 15 s, want 1`);
        const id = api.remote.workers[0].id;
        assert(typeof id === "string" && id.length > 0, `worker id ${JSON.stringify(id)}`);

        await p.goto(base2 + "/", { waitUntil: "load" });
        await p.waitForFunction(
          (want) => {
            const rows = document.querySelectorAll("#remote-workers tr");
            return rows.length === 1 && rows[0].getAttribute("data-worker-id") === want && document.getElementById("remote-conn").textContent.trim() === "connected";
          },
          id,
          { timeout: 15000 },
        );
        const r = await readRemote(p);
        assert(r.state === "connected" && r.pill === "live" && r.bodyShown && !r.offShown, `panel ${JSON.stringify({ state: r.state, pill: r.pill })}`);
        assert(r.rows.length === 1 && r.rows[0].shownId === id, `worker rows ${JSON.stringify(r.rows)}, want ${id}`);
        assert(/^\d+ \/ 2$/.test(r.rows[0].cells[1]), `running / parallelism ${JSON.stringify(r.rows[0].cells[1])} (worker started with --parallelism 2)`);
        assert(/ ago$/.test(r.rows[0].cells[4]), `last seen ${JSON.stringify(r.rows[0].cells[4])}`);
        assert(!r.moreShown && !r.emptyShown, "a +N more / no worker note next to one worker");
        assert(r.tasks === api.remote.tasks.join(", "), `tasks ${JSON.stringify(r.tasks)} vs ${JSON.stringify(api.remote.tasks)}`);

        // The live load offloads heavy jobs: they show as sent, in the remote share,
        // in the donut and with a round trip.
        await p.waitForFunction(
          () =>
            Number(document.getElementById("rm-sent").textContent.replace(/\D/g, "")) > 0 &&
            Number(document.getElementById("rm-completed").textContent.replace(/\D/g, "")) > 0 &&
            / ms$/.test(document.getElementById("rm-rt-p50").textContent) &&
            document.querySelector('circle.donut-seg[data-s="remote"]') !== null,
          null,
          { timeout: 30000 },
        );
        const r2 = await readRemote(p);
        const api2 = await getJson(base2, "/api/stats");
        const routed = api2.strategies.find((x) => x.strategy === "remote").routed;
        assert(routed > 0, "/api/stats has no job routed to remote");
        assert(/^\d+\.\d %/.test(r2.share) && !/^0\.0 %/.test(r2.share), `remote share ${JSON.stringify(r2.share)}`);
        assert(digits(r2.sent) <= api2.remote.sent, `sent shown ${r2.sent} > /api/stats ${api2.remote.sent} fetched after`);
        const legend = await p.$eval('#donut-legend li[data-s="remote"]', (li) => li.textContent);
        assert(/^remote/.test(legend) && !/ 0 jobs/.test(legend), `donut legend ${JSON.stringify(legend)}`);
        assert(errs.length === 0, `errors: ${errs.join(" | ")}`);
      } catch (e) {
        throw new Error(`${(e && e.message) || e}\n${logs()}`);
      } finally {
        await p.close().catch(() => {});
        await stopRemote();
      }
    });

    await check("no request went to a non-loopback host", async () => {
      assert(requests.length > 0, "no request seen at all");
      assert(foreign.length === 0, `requests left the machine: ${foreign.join(", ")}`);
      const paths = new Set(requests.map((u) => new URL(u).pathname));
      for (const p of ["/api/stats", "/api/neural", "/api/config", "/api/stream/decisions"]) {
        assert(paths.has(p), `the page never requested ${p}`);
      }
    });

    await check("phone width (390 px): no horizontal overflow", async () => {
      phone = await launchChromium(playwright, { userDataDir: profilePhone, viewport: { width: 390, height: 844 } });
      await phone.route("**/*", (route) => (isLocalUrl(route.request().url()) ? route.continue() : route.abort("blockedbyclient")));
      const p = phone.pages()[0] || (await phone.newPage());
      const errs = [];
      p.on("pageerror", (e) => errs.push(String(e)));
      p.on("console", (m) => m.type() === "error" && errs.push(m.text()));
      await p.goto(base + "/", { waitUntil: "load" });
      await p.waitForFunction(() => document.querySelectorAll("#feed .feed-row").length > 5 && document.querySelectorAll("#config-body tr[data-key]").length > 5, null, {
        timeout: 20000,
      });
      await sleep(500);
      const m = await readOverflow(p);
      assert(m.doc <= m.inner && m.body <= m.inner, `page is ${m.doc}/${m.body} px wide in a ${m.inner} px viewport; wide: ${m.wide}`);
      assert(m.wide.length === 0, `elements overflow the viewport: ${m.wide.join(", ")}`);
      const size = await p.$eval("#total-submitted", (el) => parseFloat(getComputedStyle(el).fontSize));
      assert(size >= 16, `totals are ${size}px on a phone`);
      assert(errs.length === 0, `errors on the phone page: ${errs.join(" | ")}`);
      await phone.close();
      phone = null;
    });

    await check("no JavaScript error and no console error was logged", async () => {
      assert(pageErrors.length === 0, `page errors:\n${pageErrors.join("\n")}`);
      assert(consoleErrors.length === 0, `console errors:\n${consoleErrors.join("\n")}`);
    });

    // Last: the server goes away (this logs failed requests, so error collection stops).
    collectErrors = false;
    await check('a dropped stream shows "disconnected — reconnecting" and recovers', async () => {
      await server.stop();
      await page.waitForFunction(
        () => /disconnected/.test(document.getElementById("sse-status").textContent) && /reconnecting/.test(document.getElementById("sse-status").textContent),
        null,
        { timeout: 15000 },
      );
      const state = await page.getAttribute("#sse-pill", "data-state");
      assert(state === "down", `pill state ${state}`);
      server = startServer({ port, workDir: work, liveRate: LIVE_RATE });
      await waitHealthy(server, 60000);
      await page.waitForFunction(() => document.getElementById("sse-status").textContent.trim() === "live", null, { timeout: 45000 });
      const top = await page.$eval("#feed .feed-row", (r) => r.getAttribute("data-job-id"));
      await page.waitForFunction((t) => document.querySelector("#feed .feed-row").getAttribute("data-job-id") !== t, top, { timeout: 10000 });
    });
  } finally {
    clearTimeout(watchdog);
    if (phone) await phone.close().catch(() => {});
    if (context) await context.close().catch(() => {});
    await stopRemote();
    const exit = await server.stop();
    const failed = results.filter((r) => !r.ok).length;
    if (failed && process.env.HELIX_TEST_VERBOSE !== "0") {
      console.log("---- server log (tail) ----\n" + server.log().slice(-4000) + "\n---- end server log ----");
    }
    if (exit && exit.signal === "SIGKILL") console.log("note: the server ignored SIGTERM for 8 s and was killed");
    rmTree(work);
    rmTree(profile);
    rmTree(profilePhone);
  }
}

main()
  .catch((e) => {
    results.push({ name: "harness", ok: false });
    console.log(`not ok - harness\n    ${String((e && e.stack) || e)}`);
  })
  .finally(() => {
    const passed = results.filter((r) => r.ok).length;
    const failed = results.length - passed;
    console.log(`${passed} passed, ${failed} failed`);
    process.exitCode = failed ? 1 : 0;
  });
