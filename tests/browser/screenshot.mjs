// Screenshots of the dashboard with live data; run through scripts/screenshot.sh.
//
//   node tests/browser/screenshot.mjs [OUT_DIR]
//
// Starts $HELIX_BIN (default target/debug/helixrouter) on a free loopback port with
// HELIX_LIVE_RATE (default 200) jobs/s, waits $SHOT_WAIT_MS (default 6000) for the
// panels to fill, and writes OUT_DIR/dashboard.png (1280×800),
// OUT_DIR/dashboard-phone.png (390×844) and OUT_DIR/dashboard-full.png (the whole
// page at 1280 px wide).

import path from "node:path";
import { freePort, isLocalUrl, launchChromium, loadPlaywright, rmTree, sleep, startServer, tempDir, waitHealthy } from "./lib.mjs";

const out = path.resolve(process.argv[2] || ".");
const waitMs = Number(process.env.SHOT_WAIT_MS || 6000);
const work = tempDir("helix-shot-");
const server = startServer({ port: await freePort(), workDir: work, liveRate: Number(process.env.HELIX_LIVE_RATE || 200) });
const profiles = [];
let code = 0;
try {
  await waitHealthy(server, 90000);
  const playwright = await loadPlaywright();
  const shots = [
    { file: "dashboard.png", viewport: { width: 1280, height: 800 }, fullPage: false },
    { file: "dashboard-phone.png", viewport: { width: 390, height: 844 }, fullPage: false },
    { file: "dashboard-full.png", viewport: { width: 1280, height: 800 }, fullPage: true },
  ];
  for (const shot of shots) {
    const profile = tempDir("helix-shot-chromium-");
    profiles.push(profile);
    const ctx = await launchChromium(playwright, { userDataDir: profile, viewport: shot.viewport });
    await ctx.route("**/*", (r) => (isLocalUrl(r.request().url()) ? r.continue() : r.abort("blockedbyclient")));
    const page = ctx.pages()[0] || (await ctx.newPage());
    await page.goto(server.base + "/", { waitUntil: "load" });
    await sleep(waitMs);
    const file = path.join(out, shot.file);
    await page.screenshot({ path: file, fullPage: shot.fullPage });
    console.log(`wrote ${file}`);
    await ctx.close();
  }
} catch (e) {
  console.error(String((e && e.stack) || e));
  console.error(server.log().slice(-3000));
  code = 1;
} finally {
  await server.stop();
  rmTree(work);
  profiles.forEach(rmTree);
}
process.exit(code);
