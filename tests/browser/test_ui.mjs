// The status page (GET /ui) in a real browser: Debian's Chromium, headless,
// driven by playwright-core (pinned in package-lock.json, installed with
// `npm ci` by scripts/install-deps.sh).
//
// Each test starts the real volume-server on 127.0.0.1 (PORT=0, a fresh data
// directory), puts load on it, opens the page and waits, within a bound, for
// conditions read from the browser itself: the state the page reports
// (body[data-state]) and the data of its charts (Chart.getChart). Every
// request the browser makes is recorded; one that leaves 127.0.0.1 fails the
// test. Nothing waits for a fixed time.
//
//   node tests/browser/test_ui.mjs     (KV_BUILD_DIR: the build, default build/)
//   KV_UI_SCREENSHOT=docs/ui.png ...   also saves the page under load there
//   KV_UI_SCREENSHOT_PHONE=FILE ...    and the page at a phone's width
//   CHROMIUM=/path/to/chromium ...     another browser binary
//
// Exit status 77 (a skip for ctest), with the reason, only where Chromium
// cannot start.
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..", "..");
const BUILD_DIR = path.resolve(process.env.KV_BUILD_DIR || path.join(ROOT, "build"));
const SERVER = path.join(BUILD_DIR, "volume-server");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SCREENSHOT = process.env.KV_UI_SCREENSHOT || "";
const WAIT_MS = 90_000; // bound on every wait: generous for a loaded machine
const LOAD_LIMIT_MS = 240_000; // the load stops by itself after this at the latest
const CHROMIUM_FLAGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

let chromium;
try {
  ({ chromium } = await import("playwright-core"));
} catch (err) {
  console.error("playwright-core is not installed (tests/browser/node_modules): " +
                "run scripts/install-deps.sh, which runs npm ci there\n" + err.message);
  process.exit(1);
}

let browser;
try {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} does not exist`);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
                                    args: CHROMIUM_FLAGS, timeout: 60_000 });
} catch (err) {
  console.log(`SKIP: Chromium cannot start here (${CHROMIUM}): ` +
              String(err.message || err).split("\n")[0]);
  process.exit(77);
}
after(async () => { await browser.close(); });

// ---- the server -----------------------------------------------------------

class Server {
  constructor(env) {
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vs-ui-"));
    this.env = { ...process.env, PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "info",
                 DATA_DIR: path.join(this.tmp, "data"), ...env };
    this.log = "";
  }

  start() {
    this.proc = spawn(SERVER, [], { env: this.env, stdio: ["ignore", "ignore", "pipe"] });
    this.exited = new Promise((resolve) => this.proc.on("exit", resolve));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("volume-server did not start:\n" + this.log)),
                               30_000);
      this.proc.stderr.on("data", (chunk) => {
        this.log += chunk;
        const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(this.log);
        if (m && !this.port) {
          this.port = Number(m[1]);
          this.base = `http://127.0.0.1:${this.port}`;
          clearTimeout(timer);
          resolve(this);
        }
      });
      this.proc.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`volume-server exited with ${code}:\n${this.log}`));
      });
    });
  }

  async stop() {
    if (this.proc && this.proc.exitCode === null) {
      this.proc.kill("SIGTERM");
      const code = await Promise.race([this.exited, new Promise((r) => setTimeout(r, 30_000, "timeout"))]);
      if (code === "timeout") this.proc.kill("SIGKILL");
    }
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

function request(base, method, urlPath, { body = null, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(base + urlPath, { method, agent, headers }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers,
                                    body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

// Writes, overwrites, reads, deletes and listings from a few workers until
// stopped (or LOAD_LIMIT_MS at the latest): every kind of request the page
// draws, and dead bytes in the segments.
function startLoad(base, headers = {}) {
  let running = true;
  const deadline = Date.now() + LOAD_LIMIT_MS;
  const value = Buffer.alloc(1024, "v");
  const worker = async (w) => {
    for (let i = 0; running && Date.now() < deadline; i++) {
      const key = `/blobs/load/${w}-${i % 150}`;
      await request(base, "PUT", key, { body: value, headers });
      await request(base, "GET", key, { headers });
      await request(base, "GET", key, { headers });
      if (i % 7 === 3) await request(base, "DELETE", key, { headers });
      if (i % 20 === 0) await request(base, "GET", "/blobs?prefix=load/&limit=20", { headers });
    }
  };
  const done = Promise.all([0, 1, 2].map(worker));
  return async () => { running = false; await done; };
}

// ---- the browser ----------------------------------------------------------

// A page whose every request is recorded; a request to anything but
// 127.0.0.1 is refused and recorded as foreign.
async function openPage(viewport = { width: 1280, height: 1000 }) {
  const context = await browser.newContext({ viewport, serviceWorkers: "block" });
  const seen = { requests: [], foreign: [], errors: [] };
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith("data:")) return route.continue();
    const host = new URL(url).hostname;
    if (host !== "127.0.0.1") {
      seen.foreign.push(url);
      return route.abort("blockedbyclient");
    }
    return route.continue();
  });
  context.on("request", (req) => seen.requests.push({ url: req.url(), headers: req.headers() }));
  const page = await context.newPage();
  page.on("pageerror", (err) => seen.errors.push("page error: " + err.message));
  page.on("console", (msg) => {
    if (msg.type() === "error") seen.errors.push("console: " + msg.text());
  });
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI));
  });
  return { context, page, seen };
}

// What the charts hold, read from Chart.js itself: for each chart, the
// datasets' labels with their number of points that are numbers above 0.
function chartData() {
  const out = {};
  for (const id of ["chart-rate", "chart-latency", "chart-fsync", "chart-segments"]) {
    const chart = window.Chart && window.Chart.getChart(id);
    if (!chart) return null;
    out[id] = {
      labels: chart.data.labels.length,
      datasets: Object.fromEntries(chart.data.datasets.map((d) => [
        d.label, d.data.filter((v) => typeof v === "number" && v > 0).length])),
    };
  }
  out.state = document.body.dataset.state;
  out.keys = document.getElementById("keys").textContent;
  return out;
}

// True when every chart has data: `points` readings of request rates (gets
// and puts), of latency and of fsyncs, a writes-per-fsync figure, the wait of
// writes for their round of group commit, and live and dead bytes in the
// segments.
function chartsHaveData(points) {
  const d = window.Chart && ["chart-rate", "chart-latency", "chart-fsync", "chart-segments"]
    .map((id) => window.Chart.getChart(id));
  if (!d || d.some((c) => !c) || document.body.dataset.state !== "live") return false;
  const count = (chart, label) => {
    const ds = chart.data.datasets.find((x) => x.label === label);
    return ds ? ds.data.filter((v) => typeof v === "number" && v > 0).length : 0;
  };
  const [rate, latency, fsync, segments] = d;
  return count(rate, "http_get") >= points && count(rate, "http_put") >= points &&
    count(latency, "http_get p50") >= points && count(latency, "http_put p99") >= points &&
    count(fsync, "fsyncs/s") >= points && count(fsync, "writes per fsync") >= 1 &&
    count(latency, "batch_wait p50") >= 1 &&
    count(segments, "live") >= 1 && count(segments, "dead") >= 1;
}

function assertStayedLocal(seen, base) {
  assert.deepEqual(seen.foreign, [], "requests that left 127.0.0.1");
  assert.ok(seen.requests.length > 0, "no request recorded");
  for (const r of seen.requests) {
    assert.ok(r.url.startsWith(base + "/") || r.url.startsWith("data:"),
              `request outside ${base}: ${r.url}`);
  }
}

// ---- the tests --------------------------------------------------------------

test("the page draws live figures of a volume under load, from 127.0.0.1 alone", async () => {
  const server = await new Server({ SEGMENT_SIZE_MB: "1", COMPACTION_INTERVAL_SECS: "2",
                                    COMPACTION_THRESHOLD: "8" }).start();
  const stopLoad = startLoad(server.base);
  const { context, page, seen } = await openPage();
  try {
    await page.goto(server.base + "/ui");
    await page.waitForFunction(chartsHaveData, 3, { timeout: WAIT_MS, polling: 250 });
    const data = await page.evaluate(chartData);
    assert.equal(data.state, "live");
    assert.notEqual(data.keys, "–");
    assert.ok(data["chart-segments"].labels >= 1, JSON.stringify(data));
    for (const id of ["rps", "fsyncs", "wpf", "disk", "free", "compaction", "index"]) {
      const value = await page.textContent("#" + id);
      assert.ok(value && value !== "–", `tile #${id} shows no figure: ${value}`);
    }
    assert.match(await page.textContent("#chart-lib"), /^Chart\.js \d+\.\d+/);
    // Writes per fsync from the volume's own histogram, not estimated from
    // the counters.
    assert.match(await page.textContent("#wpf-source"), /^median over/);

    if (SCREENSHOT) {
      // A fuller picture for the README: two minutes' worth of points is
      // not needed, a few dozen are.
      await page.waitForFunction(chartsHaveData, 30, { timeout: WAIT_MS, polling: 500 });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      console.log(`screenshot: ${SCREENSHOT}`);
    }

    // A phone's width: one column, nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForFunction(() => {
      const c = document.getElementById("chart-rate");
      return document.documentElement.scrollWidth <= window.innerWidth &&
        c.getBoundingClientRect().width <= window.innerWidth && c.getBoundingClientRect().width > 200;
    }, null, { timeout: WAIT_MS, polling: 250 });
    if (process.env.KV_UI_SCREENSHOT_PHONE)
      await page.screenshot({ path: process.env.KV_UI_SCREENSHOT_PHONE, fullPage: true });

    assert.deepEqual(await page.evaluate(() => window.__cspViolations), []);
    assert.deepEqual(seen.errors, []);
    assertStayedLocal(seen, server.base);
    const metrics = seen.requests.filter((r) => new URL(r.url).pathname === "/metrics");
    assert.ok(metrics.length >= 4, `the page polled /metrics ${metrics.length} times`);
  } finally {
    await context.close();
    await stopLoad();
    await server.stop();
  }
});

test("with AUTH_TOKEN set the page asks for the token, and /metrics stays 401 without it", async () => {
  const token = "ui-test-token";
  const server = await new Server({ AUTH_TOKEN: token }).start();
  const auth = { Authorization: `Bearer ${token}` };
  const { context, page, seen } = await openPage();
  try {
    assert.equal((await request(server.base, "GET", "/metrics")).status, 401);
    assert.equal((await request(server.base, "GET", "/metrics?format=prometheus")).status, 401);
    assert.equal((await request(server.base, "PUT", "/blobs/k", { body: "v" })).status, 401);
    const shell = await request(server.base, "GET", "/ui");
    assert.equal(shell.status, 200);
    assert.ok(!shell.body.toString().includes("total_keys"), "the shell holds no data");
    for (let i = 0; i < 3; i++) {
      const r = await request(server.base, "PUT", `/blobs/auth/${i}`, { body: "v", headers: auth });
      assert.equal(r.status, 201);
    }

    await page.goto(server.base + "/ui");
    await page.waitForFunction(() => document.body.dataset.state === "login", null,
                               { timeout: WAIT_MS, polling: 100 });
    assert.ok(await page.isVisible("#token"), "the token field is visible");
    assert.ok(await page.isHidden("#dash"), "no figures before the token");
    assert.equal(await page.textContent("#keys"), "–");

    await page.fill("#token", "wrong");
    await page.click("button[type=submit]");
    await page.waitForFunction(() => /refused/.test(document.getElementById("login-error").textContent),
                               null, { timeout: WAIT_MS, polling: 100 });
    assert.equal(await page.evaluate(() => document.body.dataset.state), "login");

    await page.fill("#token", token);
    await page.click("button[type=submit]");
    await page.waitForFunction(() => document.body.dataset.state === "live" &&
                               document.getElementById("keys").textContent === "3", null,
                               { timeout: WAIT_MS, polling: 100 });
    assert.ok(await page.isHidden("#login"));
    assert.ok(await page.isVisible("#forget"));
    const polls = seen.requests.filter((r) => new URL(r.url).pathname === "/metrics");
    assert.ok(polls.some((r) => r.headers.authorization === `Bearer ${token}`),
              "the page sent the token as a bearer token");
    assert.ok(polls.every((r) => !r.url.includes(token)), "the token never goes in a URL");
    assertStayedLocal(seen, server.base);
    assert.deepEqual(seen.errors.filter((e) => !/401/.test(e)), []);
  } finally {
    await context.close();
    await server.stop();
  }
});

// A proxy that mounts the server under /vol-x/, as the gateway does
// (deploy/render-gateway.sh: location /vol-1a/ { proxy_pass http://addr/; }).
function startPrefixProxy(target, prefix) {
  const server = http.createServer((req, res) => {
    if (!req.url.startsWith(prefix)) {
      res.writeHead(404).end();
      return;
    }
    const up = http.request(target + req.url.slice(prefix.length - 1),
                            { method: req.method, headers: req.headers, agent }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on("error", () => res.writeHead(502).end());
    req.pipe(up);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

test("under a path prefix, as behind the gateway, every URL of the page stays under it", async () => {
  const server = await new Server({}).start();
  const proxy = await startPrefixProxy(server.base, "/vol-x/");
  const base = `http://127.0.0.1:${proxy.address().port}/vol-x`;
  const stopLoad = startLoad(server.base);
  const { context, page, seen } = await openPage({ width: 1024, height: 900 });
  try {
    await page.goto(base + "/ui");
    await page.waitForFunction(chartsHaveData, 2, { timeout: WAIT_MS, polling: 250 });
    assertStayedLocal(seen, base);
    const paths = seen.requests.map((r) => new URL(r.url).pathname);
    for (const p of ["/vol-x/ui", "/vol-x/ui/style.css", "/vol-x/ui/app.js",
                     "/vol-x/ui/chart.min.js", "/vol-x/metrics"]) {
      assert.ok(paths.includes(p), `${p} was not requested: ${paths.join(" ")}`);
    }
    assert.deepEqual(seen.errors, []);
  } finally {
    await context.close();
    await stopLoad();
    await new Promise((r) => proxy.close(r));
    await server.stop();
  }
});
