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
// a phone, and a dropped stream is reported and recovered from. Prints one line per check and
// "N passed, N failed" last; exits non-zero when any check failed.
//
// playwright-core is installed on first use (npm ci here, no browser download).

import {
  isLocalUrl,
  freePort,
  launchChromium,
  loadPlaywright,
  rmTree,
  sleep,
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
  const work = tempDir("helix-browser-");
  const profile = tempDir("helix-chromium-");
  const profilePhone = tempDir("helix-chromium-phone-");
  const port = await freePort();
  let server = startServer({ port, workDir: work, liveRate: LIVE_RATE });
  const base = server.base;
  let context = null;
  let phone = null;
  const watchdog = setTimeout(() => {
    console.log("not ok - overall timeout");
    console.log(`${results.filter((r) => r.ok).length} passed, ${results.filter((r) => !r.ok).length + 1} failed`);
    server.child.kill("SIGKILL");
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
      assert(cells.length === 9, `latency row has ${cells.length} cells`);
      const p = await page.textContent("#pressure-score");
      assert(/^\d+(\.\d+)? %$/.test(p.trim()), `pressure score ${JSON.stringify(p)} is not a percentage`);
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

    await check("a strategy has one colour everywhere, five distinct colours", async () => {
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
      assert(Object.keys(colours).length >= 5 && distinct.size === Object.keys(colours).length, `colours ${JSON.stringify(colours)}`);
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
      const m = await p.evaluate(() => ({
        inner: window.innerWidth,
        doc: document.documentElement.scrollWidth,
        body: document.body.scrollWidth,
        wide: [...document.querySelectorAll("body *")]
          .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1 && !el.closest(".table-wrap, .heat-scroll"))
          .slice(0, 5)
          .map((el) => `${el.tagName.toLowerCase()}#${el.id}.${el.className}`),
      }));
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
