// Overhead benchmark: server CPU time per request, with and without taskprof.
//
//   npm run build && node bench/overhead.mjs [--quick] [--requests N] [--rounds N]
//       [--rounds-per-process N] [--concurrency N] [--warmup N] [--app hello|realistic]
//       [--framework express|fastify] [--variants counts,sampled:0.02] [--timeout SECONDS]
//       [--window-seconds N] [--out NAME]
//
// Apps: `hello` answers "hello" after awaiting one promise (setImmediate);
// `realistic` awaits three async functions (one of them a setTimeout(0)
// promise) and answers about 2 KB of JSON.
//
// Method, and why:
// - The measure is the server's CPU time per request (process.cpuUsage(), user +
//   system, read over IPC before and after a fixed number of requests), not
//   requests per second. On a small, noisy machine the load generator competes
//   with the server for the cores, so throughput mostly measures the scheduler;
//   CPU time spent by the server on a known amount of work is far more stable.
// - Each variant is its own child process, so that async hooks of one variant
//   never run in another, and each keeps its warm JIT across rounds.
// - Variants alternate within every round, so that slow drifts of the machine
//   (thermal, other tenants) hit every variant alike rather than whichever
//   variant happened to run during them; and the order rotates from round to
//   round (round r starts at variant r mod n: A,B,C,D, B,C,D,A, C,D,A,B, ...,
//   `none` included), so that every variant takes every position equally often.
//   A fixed order carried a systematic error of 15-30 points on a 2-core VM
//   (Express, scraped vs sampled: -26% with one order, +2.9% with the reverse).
// - Fresh server processes every --rounds-per-process rounds (default 3): a
//   process can be fast or slow for its whole life, and the medians must not
//   rest on one process's luck.
// - A warm-up long enough to spend the stack budget's bank (200 ms of captures
//   at start, when every task gets its stack) before anything is measured:
//   what a long-running server costs is the share after it. Use --warmup of a
//   few seconds of load (100,000 Fastify hello requests); half of --requests,
//   the default, measured a fresh process's first seconds instead (+15%).
//   Each measurement spans at least a second (the budget's refill period).
// - Servers pinned to one core and the load generator to the other (taskset).
// - Medians over rounds, not means: one disturbed round must not move the result.
//   The overhead is given two ways: the ratio of the medians, and the median of
//   the per-round ratios (each variant against `none` of the same round).
//
// Continuous profiling (`/scraped`, `/hzN`, `--window-seconds`):
// - A variant with the flag `/scraped` (e.g. `sampled/scraped`) is scraped as
//   Grafana Alloy's default `pyroscope.scrape` does: every 15 s, all at once,
//   GET /debug/pprof/allocs, block, goroutine, mutex and
//   profile?seconds=14 (so the CPU profiler is on 14 s of every 15), with
//   `User-Agent: Alloy/v1.11.0 (linux)`, no Accept-Encoding. The PARENT runs
//   the loop, on its own sockets (agent: false, not the load generator's
//   agent), from the moment the child is ready (so through warm-up and every
//   round) until it is stopped. The scrapes' CPU in the server is counted in
//   the server's CPU: that is what is measured. Answers are tallied per path
//   (status, bytes, latency) into the results, to show the scrapes worked.
// - `/hzN` sets the child's taskprof option cpuProfileHz to N (default 100).
// - With any `/scraped` variant, every measurement (of every variant, alike)
//   is a time window of a whole number of scrape cycles, `--window-seconds`
//   (default 15, must be a multiple of 15), instead of a fixed request count:
//   the load runs until the window ends, and the CPU is divided by the
//   requests completed in it. A window of k × 15 s holds exactly k cycles'
//   worth of scrape work whatever its phase (k starts, k profile ends, 14 k s
//   of profiler on), so no alignment with the loop is needed; a fixed request
//   count would cover a varying fraction of a cycle. `--window-seconds`
//   without scraped variants times the windows the same way; without either,
//   measurements are by --requests as before.
// - Each scraped variant is also compared with its unscraped twin (the same
//   variant without `/scraped` and `/hzN`, e.g. `sampled`) when that is in the
//   run: the median, min and max of the per-round ratios scraped / twin, and the
//   bootstrap 95% interval of that median (the cost of being continuously profiled).
//   Scrape traffic to an idle scraped child (while another variant is measured)
//   runs on the servers' core too; it is not in the measured process's CPU time.
//
// Results: a markdown table on stdout, and bench/results/<out>-<framework>-<app>.json
// (--out, default `overhead`).
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { dirname, join } from 'node:path';
import v8 from 'node:v8';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { canPin, forkServer, median, pinToCpu } from './harness.mjs';
import { alloy, isScraped, scrapeSummary, scrapeTally, startScrapeLoop, unscrapedTwin } from './scrape-loop.mjs';

const here = dirname(fileURLToPath(import.meta.url));
// `--variants a,b` replaces the list; `none` always comes first.
let VARIANTS = ['none', 'counts', 'sampled', 'full', 'why-is-node-running'];
const FRAMEWORKS = ['express', 'fastify'];

// ---------------------------------------------------------------------------
// Child: one server, one variant. Talks to the parent over IPC only.

async function child(framework, variant, appName) {
  // The real package (a devDependency): importing it enables its hook, which
  // captures a stack for every async resource except promises. Imported before
  // the framework loads, as its README says.
  if (variant === 'why-is-node-running') await import('why-is-node-running');
  // The tracker alone, started through the API with nothing mounted (no
  // hook in the framework, no detector, no runtime stats): `tracker-counts`.
  if (variant.startsWith('tracker-')) {
    const { startTracking } = await import('taskprof');
    startTracking({ mode: variant.slice('tracker-'.length), stackBudget: 0 });
  }
  // The floor of any exact promise count: V8's promise hooks, empty.
  if (variant === 'promise-hooks') v8.promiseHooks.createHook({ init() {}, settled() {} });
  if (variant === 'promise-hooks-4') v8.promiseHooks.createHook({ init() {}, settled() {}, before() {}, after() {} });

  // `sampled:0.02/heapoff` sets stackBudget 0.02 and heapSampling 'off';
  // `/nodetect` turns the growth detector off (its sampling every 10 s is
  // periodic work, which callgrind's slowed clock charges to far fewer
  // requests than real time does); `/baseline` mounts the build of another
  // checkout, $TASKPROF_BASELINE (what a change adds, in one run). Flags
  // combine: `sampled:0/heapoff/nodetect`.
  const [spec, ...flags] = variant.split('/');
  const [mode, budget] = spec.split(':');
  const tracking = ['counts', 'sampled', 'full'].includes(mode) ? mode : undefined;
  const trackingOptions = { tracking };
  if (budget !== undefined) trackingOptions.stackBudget = Number(budget);
  if (flags.includes('heapoff')) trackingOptions.heapSampling = 'off';
  if (flags.includes('nodetect')) trackingOptions.leakDetection = false;
  // `/hz25`: CPU profiles (what a scraper's profile?seconds=14 starts) sample at 25 Hz.
  const hz = flags.find((f) => /^hz\d+$/.test(f));
  if (hz) trackingOptions.cpuProfileHz = Number(hz.slice(2));
  if (flags.includes('scraped') && !tracking) throw new Error(`${variant}: /scraped needs taskprof mounted (counts, sampled or full)`);
  const { respond, expected } = apps[appName];
  const middleware = (name) => (flags.includes('baseline') ? pathToFileURL(join(process.env.TASKPROF_BASELINE, 'dist', 'middleware', `${name}.js`)).href : `taskprof/${name}`);
  let server;
  let close;
  if (framework === 'express') {
    const { default: express } = await import('express');
    const app = express();
    if (tracking) {
      const { default: taskprof } = await import(middleware('express'));
      app.use(taskprof(trackingOptions));
    }
    app.get('/', async (_req, res) => {
      const body = await respond();
      if (typeof body === 'string') res.send(body);
      else res.json(body);
    });
    server = http.createServer(app);
    await new Promise((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
    close = () => new Promise((resolve) => server.close(resolve));
  } else if (framework === 'fastify') {
    const { default: Fastify } = await import('fastify');
    const app = Fastify({ logger: false });
    if (tracking) {
      const { default: taskprof } = await import(middleware('fastify'));
      await app.register(taskprof, trackingOptions);
    }
    app.get('/', async () => respond());
    await app.listen({ port: 0, host: '127.0.0.1' });
    server = app.server;
    close = () => app.close();
  } else {
    throw new Error(`unknown framework ${framework}`);
  }
  // Other variants run between this one's rounds, longer than the default 5 s
  // keep-alive timeout: without this the server would close idle sockets and the
  // client could race it (ECONNRESET), and reconnects would add noise.
  server.keepAliveTimeout = 0;

  process.on('disconnect', () => process.exit(0)); // parent gone: never linger
  process.on('message', async (message) => {
    if (message.type === 'gc') {
      // bench/instructions.mjs: every process starts its counted window right after a full collection.
      globalThis.gc?.();
      process.send({ id: message.id, collected: typeof globalThis.gc === 'function' });
    } else if (message.type === 'cpu') {
      process.send({ id: message.id, cpu: process.cpuUsage(), memory: process.memoryUsage() });
    } else if (message.type === 'stats') {
      process.send({ id: message.id, stats: await childStats(variant) });
    } else if (message.type === 'exit') {
      await close();
      process.exit(0);
    }
  });
  process.send({ type: 'ready', port: server.address().port });
}

// The handlers: what a request does, and the body the load generator checks.
const items = Array.from({ length: 20 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b', 'c'], price: i * 1.5, description: 'x'.repeat(40) }));
async function loadUser() {
  await null;
  return { id: 7, name: 'user' };
}
async function loadItems() {
  await new Promise((resolve) => setTimeout(resolve, 0));
  return items;
}
async function render(user, list) {
  await null;
  return { user, items: list };
}
const apps = {
  hello: {
    respond: async () => {
      await new Promise((resolve) => setImmediate(resolve));
      return 'hello';
    },
    expected: (body) => body === 'hello',
  },
  realistic: {
    respond: async () => render(await loadUser(), await loadItems()),
    expected: (body) => body.length > 2000 && body.startsWith('{"user":'),
  },
};

// Live-record counts after the load, as a sanity check for leaks in the hooks.
async function childStats(variant) {
  if (variant === 'none') return {};
  try {
    const taskprof = await import('taskprof');
    return { taskCount: taskprof.taskCount() };
  } catch (error) {
    return { error: String(error) };
  }
}

// ---------------------------------------------------------------------------
// Parent: starts the children, drives load, collects and reports.

async function parent() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      requests: { type: 'string' },
      rounds: { type: 'string' },
      app: { type: 'string' },
      concurrency: { type: 'string' },
      warmup: { type: 'string' },
      framework: { type: 'string', multiple: true },
      variants: { type: 'string' },
      'rounds-per-process': { type: 'string' },
      timeout: { type: 'string' },
      'window-seconds': { type: 'string' },
      out: { type: 'string' },
    },
  });
  const int = (name, env, fallback, min = 1) => {
    const raw = values[name] ?? process.env[env];
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} (${env}) must be an integer >= ${min}, got ${raw}`);
    return n;
  };
  const quick = values.quick || process.env.BENCH_QUICK === '1';
  const requests = int('requests', 'BENCH_REQUESTS', quick ? 2000 : 20000);
  const app = values.app ?? process.env.BENCH_APP ?? 'hello';
  if (!(app in apps)) throw new Error(`--app must be one of ${Object.keys(apps).join(', ')}, got ${app}`);
  const settings = {
    app,
    requests,
    rounds: int('rounds', 'BENCH_ROUNDS', quick ? 3 : 7),
    concurrency: int('concurrency', 'BENCH_CONCURRENCY', 8),
    warmup: int('warmup', 'BENCH_WARMUP', Math.max(3000, Math.round(requests / 2)), 0),
    roundsPerProcess: int('rounds-per-process', 'BENCH_ROUNDS_PER_PROCESS', 3),
  };
  if (values.variants) VARIANTS = ['none', ...values.variants.split(',').filter((v) => v !== 'none')];
  // Scraped variants: every measurement is a window of whole scrape cycles.
  const anyScraped = VARIANTS.some(isScraped);
  const windowSeconds = int('window-seconds', 'BENCH_WINDOW_SECONDS', anyScraped ? alloy.intervalMs / 1000 : 0, 0);
  if (anyScraped && (windowSeconds === 0 || windowSeconds % (alloy.intervalMs / 1000) !== 0)) throw new Error(`--window-seconds must be a multiple of the scrape interval (${alloy.intervalMs / 1000} s) with /scraped variants, got ${windowSeconds}`);
  if (windowSeconds > 0) {
    settings.windowSeconds = windowSeconds;
    delete settings.requests;
  }
  if (anyScraped) settings.scrape = { ...alloy, scrapedVariants: VARIANTS.filter(isScraped) };
  const out = values.out ?? 'overhead';
  if (!/^[\w.-]+$/.test(out)) throw new Error(`--out must be a plain file-name prefix, got ${out}`);
  const frameworks = values.framework ?? (process.env.BENCH_FRAMEWORK?.split(',') ?? FRAMEWORKS);
  for (const f of frameworks) if (!FRAMEWORKS.includes(f)) throw new Error(`unknown framework ${f}`);
  // Hard bound on the whole run: whatever hangs, the children are killed and we exit.
  const timeoutSeconds = int('timeout', 'BENCH_TIMEOUT', 1800);

  const children = new Set();
  const killAll = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      killAll();
      process.exit(130);
    });
  }
  const watchdog = setTimeout(() => {
    console.error(`overhead: gave up after ${timeoutSeconds} s`);
    killAll();
    process.exit(2);
  }, timeoutSeconds * 1000);

  pinToCpu(process.pid, loadCpu);
  const started = Date.now();
  console.log(`# taskprof overhead: server CPU per request`);
  console.log();
  console.log(`Node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}; ` +
    `${settings.rounds} rounds × ${settings.windowSeconds ? `${settings.windowSeconds} s` : `${settings.requests} requests`} per variant, ` +
    `${settings.concurrency} in flight, ${settings.warmup} warm-up requests` +
    (canPin ? `; servers pinned to CPU ${serverCpu}, load generator to CPU ${loadCpu}.` : '; no CPU pinning (taskset absent).'));
  try {
    for (const framework of frameworks) {
      const result = await runFramework(framework, settings, children);
      printTable(result);
      const dir = join(here, 'results');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `${out}-${framework}-${settings.app}.json`), JSON.stringify(result, null, 2) + "\n");
    }
    console.log();
    console.log(`Total time: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } catch (error) {
    console.error('overhead: failed:', error);
    process.exitCode = 1;
  } finally {
    clearTimeout(watchdog);
    killAll();
  }
}

async function runFramework(framework, settings, children) {
  const started = Date.now();
  let servers = [];
  const startAll = async () => {
    servers = [];
    // Started one at a time: startup CPU of one must not disturb another's.
    for (const variant of VARIANTS) servers.push(await startServer(framework, variant, children, settings));
    for (const s of servers) await drive(s, settings.warmup, settings.concurrency);
  };
  try {
    const rounds = [];
    const stats = {};
    for (let round = 0; round < settings.rounds; round++) {
      // A process can be slow or fast for its whole life (JIT and heap layout):
      // fresh processes every few rounds sample that too, so a median over
      // rounds is not one process's luck.
      if (round % settings.roundsPerProcess === 0) {
        await Promise.all(servers.map((s) => s.stop()));
        await startAll();
      }
      const row = {};
      // Round r starts at variant r mod n: every variant takes every position equally often.
      const order = servers.map((_, i) => servers[(round + i) % servers.length]);
      for (const s of order) row[s.variant] = settings.windowSeconds ? await measureWindow(s, settings.windowSeconds, settings.concurrency) : await measure(s, settings.requests, settings.concurrency);
      rounds.push(row);
      const summary = VARIANTS.map((v) => `${v} ${row[v].usPerRequest.toFixed(1)}${settings.windowSeconds ? ` (${row[v].requests})` : ''}`).join(', ');
      console.error(`[${framework}] round ${round + 1}/${settings.rounds} (order ${order.map((s) => s.variant).join(',')}) µs/req: ${summary}`);
      for (const s of servers) stats[s.variant] = await s.ask('stats');
    }
    return summarize(framework, settings, rounds, stats, Date.now() - started);
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

// On a 2-core machine the load generator and the server fight for the cores;
// pinning each to its own core (taskset, where present) takes the scheduler's
// moves out of the figures. Only one server is under load at a time.
const serverCpu = 0;

// Forks one server and wraps its IPC in request/response calls.
async function startServer(framework, variant, children, settings) {
  const server = await forkServer({ script: fileURLToPath(import.meta.url), args: ['--child', framework, variant, settings.app], label: `${framework}/${variant}`, children, cpu: serverCpu });
  if (!isScraped(variant)) return { ...server, framework, variant, app: settings.app };
  // Scraped from the moment it is ready until it is stopped.
  const loop = startScrapeLoop(server.port, scrapeTally(variant));
  const stop = async () => {
    loop.stop();
    await server.stop();
  };
  return { ...server, stop, framework, variant, app: settings.app };
}
const loadCpu = 1;

// The server's CPU time over what `load` drives; `load` resolves to the requests it completed.
async function cpuOver(server, load) {
  const before = await server.ask('cpu');
  const t0 = process.hrtime.bigint();
  const requests = await load();
  const wallNs = Number(process.hrtime.bigint() - t0);
  const after = await server.ask('cpu');
  const user = after.cpu.user - before.cpu.user;
  const system = after.cpu.system - before.cpu.system;
  return {
    usPerRequest: (user + system) / requests,
    requests,
    wallSeconds: wallNs / 1e9,
    userUs: user,
    systemUs: system,
    requestsPerSecond: requests / (wallNs / 1e9),
    rssBytes: after.memory.rss,
    heapUsedBytes: after.memory.heapUsed,
  };
}

// One measurement: the server's CPU time over exactly `requests` requests.
function measure(server, requests, concurrency) {
  return cpuOver(server, async () => {
    await drive(server, requests, concurrency);
    return requests;
  });
}

// One measurement over a time window: the server's CPU time over the requests
// completed in `seconds` of load (those in flight at the end complete and count).
function measureWindow(server, seconds, concurrency) {
  return cpuOver(server, async () => {
    const deadline = process.hrtime.bigint() + BigInt(seconds * 1e9);
    let requests = 0;
    const worker = async () => {
      while (process.hrtime.bigint() < deadline) {
        await get(server);
        requests++;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return requests;
  });
}

// Keeps `concurrency` requests in flight until `total` have completed.
async function drive(server, total, concurrency) {
  let started = 0;
  const worker = async () => {
    while (started < total) {
      started++;
      await get(server);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
}

function get({ agent, port, framework, variant, app }) {
  return new Promise((resolve, reject) => {
    const req = http.get({ agent, host: '127.0.0.1', port, path: '/' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('error', reject);
      res.on('end', () => {
        if (res.statusCode === 200 && apps[app].expected(body)) resolve();
        else reject(new Error(`${framework}/${variant}: got ${res.statusCode} ${JSON.stringify(body.slice(0, 200))}`));
      });
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`${framework}/${variant}: request timed out`)));
    req.on('error', reject);
  });
}

// ---------------------------------------------------------------------------
// Reporting.


// A fixed-seed generator, so that the interval is the same for the same data.
function seededRandom(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** The 2.5th and 97.5th percentiles of the median over 2,000 resamples of `values`. */
function bootstrapMedian(values) {
  const random = seededRandom(42);
  const medians = [];
  for (let i = 0; i < 2000; i++) medians.push(median(values.map(() => values[Math.floor(random() * values.length)])));
  medians.sort((a, b) => a - b);
  return [medians[50], medians[1949]];
}

function summarize(framework, settings, rounds, stats, durationMs) {
  const base = median(rounds.map((r) => r.none.usPerRequest));
  const variants = {};
  for (const v of VARIANTS) {
    const samples = rounds.map((r) => r[v].usPerRequest);
    const ratios = rounds.map((r) => r[v].usPerRequest / r.none.usPerRequest);
    const m = median(samples);
    variants[v] = {
      medianUsPerRequest: m,
      minUsPerRequest: Math.min(...samples),
      maxUsPerRequest: Math.max(...samples),
      overheadPct: (m / base - 1) * 100,
      medianRoundRatioOverheadPct: (median(ratios) - 1) * 100,
      // 95% interval of that median, by resampling the rounds: the difference the run resolves.
      ratioInterval95Pct: bootstrapMedian(ratios).map((x) => (x - 1) * 100),
      medianRequestsPerSecond: median(rounds.map((r) => r[v].requestsPerSecond)),
      // Windows that ran over by more than a second (a request stalled past the end): no longer whole cycles.
      ...(settings.windowSeconds ? { overrunWindows: rounds.filter((r) => r[v].wallSeconds > settings.windowSeconds + 1).length } : {}),
      finalRssMB: rounds.at(-1)[v].rssBytes / 2 ** 20,
      afterLoad: stats[v]?.stats,
      rounds: rounds.map((r) => r[v]),
    };
    // A scraped variant against the same variant unscraped: the cost of being continuously profiled.
    const twin = unscrapedTwin(v);
    if (isScraped(v) && twin !== v && VARIANTS.includes(twin)) {
      const vs = rounds.map((r) => r[v].usPerRequest / r[twin].usPerRequest);
      variants[v].vsUnscraped = {
        of: twin,
        medianRoundRatioPct: (median(vs) - 1) * 100,
        minRoundRatioPct: (Math.min(...vs) - 1) * 100,
        maxRoundRatioPct: (Math.max(...vs) - 1) * 100,
        ratioInterval95Pct: bootstrapMedian(vs).map((x) => (x - 1) * 100),
        roundRatiosPct: vs.map((x) => (x - 1) * 100),
      };
    }
    if (isScraped(v)) variants[v].scrapes = scrapeSummary(scrapeTally(v));
  }
  return {
    framework,
    node: process.version,
    platform: `${process.platform} ${os.arch()}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    settings,
    date: new Date().toISOString(),
    durationMs,
    variantOrder: VARIANTS,
    variants,
  };
}

function printTable(result) {
  const pct = (x) => (x >= 0 ? '+' : '') + x.toFixed(1) + '%';
  console.log();
  console.log(`## ${result.framework}, ${result.settings.app} (${(result.durationMs / 1000).toFixed(0)} s)`);
  console.log();
  console.log('| variant | CPU µs/req (median) | min – max | overhead (ratio of medians) | overhead (median of round ratios) | 95% interval of that median | req/s (median) | RSS MB (end) |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const v of VARIANTS) {
    const r = result.variants[v];
    const none = v === 'none';
    console.log(`| ${v} | ${r.medianUsPerRequest.toFixed(1)} | ${r.minUsPerRequest.toFixed(1)} – ${r.maxUsPerRequest.toFixed(1)} | ` +
      `${none ? '—' : pct(r.overheadPct)} | ${none ? '—' : pct(r.medianRoundRatioOverheadPct)} | ${none ? '—' : r.ratioInterval95Pct.map(pct).join(' to ')} | ` +
      `${Math.round(r.medianRequestsPerSecond)} | ${r.finalRssMB.toFixed(0)} |`);
  }
  const scraped = VARIANTS.filter((v) => result.variants[v].vsUnscraped);
  if (scraped.length === 0) return;
  console.log();
  console.log('| scraped variant | against | extra CPU per request (median of round ratios) | min – max of round ratios | 95% interval of that median | scrape cycles | scrape answers (path: statuses) |');
  console.log('|---|---|---:|---:|---:|---:|---|');
  for (const v of scraped) {
    const r = result.variants[v].vsUnscraped;
    const s = result.variants[v].scrapes;
    const answers = Object.entries(s?.byPath ?? {}).map(([p, e]) => `${p.replace('/debug/pprof/', '')}: ${Object.entries(e.statuses).map(([code, n]) => `${n}×${code}`).join(' ')}`).join('; ');
    console.log(`| ${v} | ${r.of} | ${pct(r.medianRoundRatioPct)} | ${pct(r.minRoundRatioPct)} – ${pct(r.maxRoundRatioPct)} | ${r.ratioInterval95Pct.map(pct).join(' to ')} | ${s?.cycles ?? 0} | ${answers}${s?.errors.length ? `; errors: ${s.errors.length}` : ''} |`);
  }
}

// Last, so that every module-level declaration above is initialised first.
if (process.argv[2] === '--child') await child(process.argv[3], process.argv[4], process.argv[5]);
else await parent();
