// taskprof under load: every endpoint scraped in parallel while an app serves
// traffic, and a soak that watches taskprof's own memory.
//
//   node bench/load.mjs [--seconds 30] [--app both|demo|app] [--concurrency 24] [--scrapers 50]
//   node bench/load.mjs --soak [--minutes 5] [--rate 100] [--children sampled,full,allocs]
//
// Uses dist/ as built (`npm run build` first when src/ changed). Results: a
// markdown report on stdout and bench/results/load.md + load.json (or
// soak.md + soak.json); progress on stderr.
//
// Load: the app runs as a child process on 127.0.0.1. A bounded load
// generator (--concurrency keep-alive connections, one request at a time
// each) requests the app's own routes for a warm-up without scraping, then
// for --seconds while --scrapers scrapers each loop over every debug endpoint
// (each starting at a different one), then for a cool-down without scraping,
// and finally every endpoint is requested once more with the app idle. Passes
// when every scrape was answered 2xx or 429 (the 301 of /debug/pprof, and
// the 403/404 of an endpoint the app's configuration turns off, as listed),
// with a complete body; the load generator saw no error and no non-200, and
// got 200s while scraping and after; and the app wrote nothing on stderr and
// no "Error"/"taskprof:" line on stdout. Apps:
//   demo: examples/demo.mjs itself (its routes / and /users/:id; not /report,
//         which never answers by design), with one change made from outside:
//         a module resolve hook (this bench's only, see preloadSource) wraps
//         its `taskprof/express` import to add `heapSnapshot: true`, so that
//         heapsnapshot is served and scraped too. Its leaks grow under load:
//         /users/:id leaves one interval (and so one tracker record) per request.
//   app:  a leak-free Express app written here (its handlers await a 1-2 ms
//         timer), taskprof with heapSnapshot: true and heapSampling: 'allocs',
//         so that allocs is served (the demo serves heap: V8 has one sampler).
//
// Soak (--soak): children under the same steady load (--rate requests a
// second each, at once) for --minutes: the leak-free app with taskprof in each
// configuration of --children (sampled: the defaults plus heapSnapshot: true;
// full: tracking 'full' too; allocs: heapSampling 'allocs' too), and a
// control: the same app without taskprof. Not the demo: its leaks grow its
// heap by design, which would hide taskprof's own part. One scrape a second
// rotates over every endpoint (every child gets the same request; the
// control answers 404). Every 5 s each child runs gc() (--expose-gc) and
// reports process.memoryUsage() over IPC, and each taskprof child's
// /debug/metrics gives taskprof_tracker_records. Reported: the most records
// seen against maxTasks, heapUsed at start and end, and least-squares slopes
// of heapUsed (and rss) per minute over each half of the run, beside the
// control's. Passes when records stay under maxTasks, every scrape and load
// request is answered as above, and no child logs an error.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);
const thisFile = fileURLToPath(import.meta.url);
const demoFile = path.join(root, 'examples', 'demo.mjs');

// ---------------------------------------------------------------- children

const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

// Runs first in every child (--import). It ends the child when the bench goes
// away (the IPC channel closes), answers memory probes over IPC (after
// gc(), with taskprof's maxTasks when taskprof is in the process), and for
// the demo registers a resolve hook that hands examples/demo.mjs a
// `taskprof/express` which adds heapSnapshot: true to its options.
function preloadSource({ heapSnapshotForDemo }) {
  const indexUrl = pathToFileURL(path.join(root, 'dist', 'src', 'index.js')).href;
  let hook = '';
  if (heapSnapshotForDemo) {
    const realUrl = pathToFileURL(path.join(root, 'dist', 'middleware', 'express.js')).href;
    const shim = `import real from ${JSON.stringify(realUrl)}; export default (options) => real({ ...options, heapSnapshot: true });`;
    const hooks = `export async function resolve(specifier, context, next) {
      if (specifier === 'taskprof/express' && context.parentURL === ${JSON.stringify(pathToFileURL(demoFile).href)}) {
        return { url: ${JSON.stringify('data:text/javascript,' + encodeURIComponent(shim))}, shortCircuit: true };
      }
      return next(specifier, context);
    }`;
    hook = `import { register } from 'node:module'; register(${JSON.stringify('data:text/javascript,' + encodeURIComponent(hooks))});`;
  }
  return `${hook}
process.on('disconnect', () => process.exit(70));
process.on('message', async (message) => {
  if (message === null || typeof message !== 'object' || message.type !== 'probe') return;
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.();
    await new Promise((resolve) => setImmediate(resolve));
  }
  let maxTasks = null;
  if (process.env.LOAD_BENCH_TASKPROF === '1') maxTasks = (await import(${JSON.stringify(indexUrl)})).trackingSettings().maxTasks;
  process.send({ type: 'probe', id: message.id, memory: process.memoryUsage(), maxTasks });
});`;
}

/** The app variants this bench writes itself (see the top comment): `node bench/load.mjs --child app|control`. */
async function childMain(kind, heapSampling, tracking) {
  const { default: express } = await import('express');
  const app = express();
  if (kind === 'app') {
    const { default: taskprof } = await import('taskprof/express');
    app.use(taskprof({ heapSnapshot: true, ...(heapSampling ? { heapSampling } : {}), ...(tracking ? { tracking } : {}) }));
  }
  app.get('/hello', async (req, res) => {
    await new Promise((resolve) => setTimeout(resolve, 2));
    res.json({ hello: 'world' });
  });
  app.get('/items/:id', async (req, res) => {
    await new Promise((resolve) => setTimeout(resolve, 1));
    res.json({ id: req.params.id, at: Date.now() });
  });
  const server = app.listen(0, '127.0.0.1', () => {
    console.log(`load bench ${kind} listening on http://127.0.0.1:${server.address().port}`);
  });
  process.once('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

const appKinds = {
  demo: {
    describe: 'examples/demo.mjs (heapSnapshot: true added by a resolve hook)',
    args: () => [demoFile],
    taskprof: true,
    heapSnapshotForDemo: true,
    loadPaths: ['/', '/users/{n}'],
    config: { heapSampling: 'inuse', heapSnapshot: true },
  },
  app: {
    describe: "leak-free Express app, taskprof({ heapSnapshot: true, heapSampling: 'allocs' })",
    args: () => [thisFile, '--child', 'app', 'allocs'],
    taskprof: true,
    loadPaths: ['/hello', '/items/{n}'],
    config: { heapSampling: 'allocs', heapSnapshot: true },
  },
  'app-allocs': {
    describe: "leak-free Express app, taskprof({ heapSnapshot: true, heapSampling: 'allocs' })",
    args: () => [thisFile, '--child', 'app', 'allocs'],
    taskprof: true,
    loadPaths: ['/hello', '/items/{n}'],
    config: { heapSampling: 'allocs', heapSnapshot: true },
  },
  'app-default': {
    describe: 'leak-free Express app, taskprof({ heapSnapshot: true })',
    args: () => [thisFile, '--child', 'app', 'inuse'],
    taskprof: true,
    loadPaths: ['/hello', '/items/{n}'],
    config: { heapSampling: 'inuse', heapSnapshot: true },
  },
  'app-full': {
    describe: "leak-free Express app, taskprof({ heapSnapshot: true, tracking: 'full' })",
    args: () => [thisFile, '--child', 'app', 'inuse', 'full'],
    taskprof: true,
    loadPaths: ['/hello', '/items/{n}'],
    config: { heapSampling: 'inuse', heapSnapshot: true },
  },
  control: {
    describe: 'the same leak-free Express app without taskprof',
    args: () => [thisFile, '--child', 'control'],
    taskprof: false,
    loadPaths: ['/hello', '/items/{n}'],
    config: null,
  },
};

/**
 * Starts an app as a child process on 127.0.0.1 and resolves once it prints
 * its URL. Its output is kept; `logErrors()` is every stderr line and every
 * stdout line naming an Error or taskprof; an exit before `stop()` is one too.
 */
export async function startApp(kind, { startTimeoutMs = 30_000 } = {}) {
  const spec = appKinds[kind];
  const preload = 'data:text/javascript,' + encodeURIComponent(preloadSource({ heapSnapshotForDemo: spec.heapSnapshotForDemo === true }));
  const child = spawn(process.execPath, ['--expose-gc', '--import', preload, ...spec.args()], {
    cwd: root,
    env: { ...process.env, PORT: '0', LOAD_BENCH_TASKPROF: spec.taskprof ? '1' : '0' },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  children.add(child);
  const log = { stdout: [], stderr: [] };
  let stopping = false;
  let exit = null;
  const lines = (stream, into) => {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop();
      into.push(...parts);
    });
    stream.on('end', () => {
      if (partial !== '') into.push(partial);
    });
  };
  lines(child.stdout, log.stdout);
  lines(child.stderr, log.stderr);
  const exited = once(child, 'exit').then(([code, signal]) => {
    exit = { code, signal, expected: stopping };
    children.delete(child);
  });
  const probes = new Map();
  let probeId = 0;
  child.on('message', (message) => {
    if (message?.type === 'probe') probes.get(message.id)?.(message);
  });

  const deadline = Date.now() + startTimeoutMs;
  let base;
  while (base === undefined) {
    base = log.stdout.join('\n').match(/http:\/\/127\.0\.0\.1:\d+/)?.[0];
    if (base !== undefined) break;
    if (exit !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${kind} did not start: ${JSON.stringify({ exit, stdout: log.stdout, stderr: log.stderr })}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }

  return {
    kind,
    base,
    pid: child.pid,
    log,
    /** gc() in the child, then its memoryUsage() and taskprof's maxTasks (null without taskprof). */
    probe(timeoutMs = 30_000) {
      const id = ++probeId;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          probes.delete(id);
          reject(new Error(`${kind}: no answer to a memory probe in ${timeoutMs} ms`));
        }, timeoutMs);
        probes.set(id, (message) => {
          clearTimeout(timer);
          probes.delete(id);
          resolve(message);
        });
        child.send({ type: 'probe', id });
      });
    },
    logErrors() {
      const errors = log.stderr.filter((l) => l.trim() !== '').map((l) => `stderr: ${l}`);
      for (const l of log.stdout) if (/\bError\b|taskprof:/.test(l)) errors.push(`stdout: ${l}`);
      if (exit !== null && !exit.expected) errors.push(`exited on its own: code ${exit.code}, signal ${exit.signal}`);
      return errors;
    },
    async stop() {
      stopping = true;
      if (exit === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      await new Promise((resolve) => setImmediate(resolve)); // the last output
      return exit;
    },
  };
}

// ---------------------------------------------------------------- HTTP

/**
 * One request; never rejects. Resolves to { status, bytes, sentAt, ms, headers, body }
 * (body: all of it with keepBody, else its first 2 KiB or so)
 * or, for a connection error, a timeout or a response cut short, { error }.
 */
export function httpRequest(agent, base, { method = 'GET', path: urlPath, headers = {} }, { timeoutMs = 60_000, keepBody = false } = {}) {
  return new Promise((resolve) => {
    const started = performance.now();
    let done = false;
    let status;
    const finish = (result) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ sentAt: started, ms: performance.now() - started, ...result });
    };
    const req = http.request(base + urlPath, { method, headers, agent });
    const timer = setTimeout(() => {
      finish({ status, error: `timeout after ${timeoutMs} ms` });
      req.destroy();
    }, timeoutMs);
    req.on('error', (error) => finish({ status, error: error.code ?? error.message }));
    req.on('response', (res) => {
      status = res.statusCode;
      let bytes = 0;
      // The whole body when asked for, else its start (for the report of a failure).
      const keep = keepBody ? Infinity : 2048;
      const chunks = [];
      res.on('data', (chunk) => {
        if (bytes < keep) chunks.push(chunk);
        bytes += chunk.length;
      });
      res.on('end', () => finish({ status, bytes, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (error) => finish({ status, error: `body cut short (${error.code ?? error.message}) after ${bytes} bytes` }));
      res.on('close', () => {
        if (!res.complete) finish({ status, error: `body cut short after ${bytes} bytes` });
      });
    });
    req.end();
  });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

function latencySummary(values) {
  const sorted = Float64Array.from(values).sort();
  return { p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99), max: sorted.length ? sorted[sorted.length - 1] : null };
}

/**
 * The bounded load generator: `concurrency` keep-alive connections, each one
 * request at a time, over `paths` in turn (`{n}` becomes a counter), until
 * stop(); at most `rate` requests a second in all when given. Every response
 * is counted in the phase it was sent in (setPhase). Anything but a 200, and
 * any error, is counted as such.
 */
export function startLoad({ base, paths, concurrency = 24, rate, timeoutMs = 60_000, phase: firstPhase = 'load' }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const t0 = performance.now();
  const phases = new Map();
  const timeline = []; // per second since start: [ok, notOk]
  let phase = firstPhase;
  let stopping = false;
  let sent = 0;
  let lastOkAt = t0;
  const gaps = new Map(); // phase -> longest time without a 200 ending in that phase
  const phaseStats = (name) => {
    let stats = phases.get(name);
    if (stats === undefined) {
      stats = { name, startedAt: performance.now(), endedAt: null, responses: 0, ok: 0, byStatus: {}, errors: {}, errorSamples: [], latencies: [] };
      phases.set(name, stats);
    }
    return stats;
  };
  phaseStats(phase);
  const spacingMs = rate ? (1000 * concurrency) / rate : 0;

  async function worker(index) {
    let next = t0 + (spacingMs * index) / concurrency;
    while (!stopping) {
      if (spacingMs > 0) {
        const wait = next - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        next = Math.max(next + spacingMs, performance.now() - spacingMs);
        if (stopping) break;
      }
      const n = sent++;
      const urlPath = paths[n % paths.length].replace('{n}', String(n));
      const stats = phaseStats(phase);
      const result = await httpRequest(agent, base, { path: urlPath }, { timeoutMs });
      const now = performance.now();
      stats.responses++;
      stats.latencies.push(result.ms);
      const second = Math.floor((now - t0) / 1000);
      while (timeline.length <= second) timeline.push([0, 0]);
      if (result.error !== undefined) {
        stats.errors[result.error] = (stats.errors[result.error] ?? 0) + 1;
        if (stats.errorSamples.length < 20) stats.errorSamples.push({ path: urlPath, error: result.error, status: result.status, sentAt: result.sentAt, ms: result.ms, atSecond: Number(((now - t0) / 1000).toFixed(1)) });
        timeline[second][1]++;
        continue;
      }
      stats.byStatus[result.status] = (stats.byStatus[result.status] ?? 0) + 1;
      if (result.status === 200) {
        stats.ok++;
        timeline[second][0]++;
        const gap = now - lastOkAt;
        if (gap > (gaps.get(phase) ?? 0)) gaps.set(phase, gap);
        lastOkAt = now;
      } else {
        timeline[second][1]++;
        if (stats.errorSamples.length < 20) stats.errorSamples.push({ path: urlPath, status: result.status, sentAt: result.sentAt, ms: result.ms, atSecond: Number(((now - t0) / 1000).toFixed(1)) });
      }
    }
  }
  const workers = Array.from({ length: concurrency }, (_, i) => worker(i));

  return {
    get phase() {
      return phase;
    },
    setPhase(name) {
      phaseStats(phase).endedAt = performance.now();
      phase = name;
      phaseStats(name).startedAt = performance.now();
    },
    async stop() {
      phaseStats(phase).endedAt = performance.now();
      stopping = true;
      await Promise.all(workers);
      agent.destroy();
      const summary = [];
      for (const s of phases.values()) {
        const seconds = ((s.endedAt ?? performance.now()) - s.startedAt) / 1000;
        const errors = Object.values(s.errors).reduce((a, b) => a + b, 0);
        summary.push({
          phase: s.name,
          seconds: Number(seconds.toFixed(2)),
          responses: s.responses,
          ok: s.ok,
          notOk: s.responses - s.ok - errors,
          errors,
          byStatus: s.byStatus,
          errorKinds: s.errors,
          errorSamples: s.errorSamples,
          okPerSecond: Number((s.ok / seconds).toFixed(1)),
          latencyMs: latencySummary(s.latencies),
          longestGapWithout200Ms: gaps.has(s.name) ? Math.round(gaps.get(s.name)) : null,
        });
      }
      return { sent, phases: summary, timeline };
    },
  };
}

// ---------------------------------------------------------------- endpoints

const openMetricsAccept = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

/**
 * Every debug endpoint and the variants of its parameters. `expect` lists
 * the statuses accepted instead of 2xx/429 where the app's configuration
 * answers otherwise by design; `type` is the content type a 2xx must have.
 */
export function endpointsFor(config) {
  const heapServed = config.heapSampling === 'inuse';
  const samplerNote = (served, name) =>
    served ? {} : { expect: [404], note: `404 by design: heapSampling is '${config.heapSampling}' (V8 has one sampler), so ${name} is off` };
  const p = '/debug/pprof';
  return [
    { name: 'index', path: `${p}/`, type: 'text/html' },
    { name: 'pprof root (redirect)', path: p, expect: [301], note: '301 to pprof/ by design' },
    { name: 'tasks', path: `${p}/tasks`, type: 'application/octet-stream' },
    { name: 'tasks debug=1', path: `${p}/tasks?debug=1`, type: 'text/plain' },
    { name: 'tasks debug=2', path: `${p}/tasks?debug=2`, type: 'text/plain' },
    { name: 'tasks debug=0 json', path: `${p}/tasks?debug=0&format=json`, type: 'application/json' },
    { name: 'tasks debug=1 json', path: `${p}/tasks?debug=1&format=json`, type: 'application/json' },
    { name: 'tasks debug=2 json', path: `${p}/tasks?debug=2&format=json`, type: 'application/json' },
    { name: 'tasks debug=1 Accept json', path: `${p}/tasks?debug=1`, headers: { accept: 'application/json' }, type: 'application/json' },
    { name: 'goroutine debug=0', path: `${p}/goroutine?debug=0`, type: 'application/octet-stream' },
    { name: 'goroutine debug=1', path: `${p}/goroutine?debug=1`, type: 'text/plain' },
    { name: 'goroutine debug=2', path: `${p}/goroutine?debug=2`, type: 'text/plain' },
    { name: 'tasks seconds=1', path: `${p}/tasks?seconds=1`, type: 'application/octet-stream' },
    { name: 'tasks debug=1 seconds=1', path: `${p}/tasks?debug=1&seconds=1`, type: 'text/plain' },
    { name: 'goroutine debug=1 json seconds=1', path: `${p}/goroutine?debug=1&format=json&seconds=1`, type: 'application/json' },
    { name: 'heap', path: `${p}/heap`, ...samplerNote(heapServed, 'heap') },
    { name: 'heap debug=1', path: `${p}/heap?debug=1`, ...samplerNote(heapServed, 'heap') },
    { name: 'heap gc=1', path: `${p}/heap?gc=1`, ...samplerNote(heapServed, 'heap') },
    { name: 'heap seconds=1', path: `${p}/heap?seconds=1`, ...samplerNote(heapServed, 'heap') },
    // allocs always answers (every Go scraper reads it as memory).
    { name: 'allocs', path: `${p}/allocs`, type: 'application/octet-stream' },
    { name: 'allocs debug=1', path: `${p}/allocs?debug=1`, type: 'text/plain' },
    { name: 'allocs seconds=1', path: `${p}/allocs?seconds=1`, type: 'application/octet-stream' },
    { name: 'block', path: `${p}/block`, type: 'application/octet-stream' },
    { name: 'block debug=1', path: `${p}/block?debug=1`, type: 'text/plain' },
    { name: 'block seconds=1', path: `${p}/block?seconds=1`, type: 'application/octet-stream' },
    { name: 'mutex', path: `${p}/mutex`, type: 'application/octet-stream' },
    { name: 'mutex debug=1', path: `${p}/mutex?debug=1`, type: 'text/plain' },
    { name: 'profile seconds=1', path: `${p}/profile?seconds=1`, type: 'application/octet-stream' },
    { name: 'profile seconds=1 cpuprofile', path: `${p}/profile?seconds=1&format=cpuprofile`, type: 'application/json' },
    { name: 'leaks', path: `${p}/leaks`, type: 'application/octet-stream' },
    { name: 'leaks debug=1', path: `${p}/leaks?debug=1`, type: 'text/plain' },
    { name: 'leaks json', path: `${p}/leaks?format=json`, type: 'application/json' },
    { name: 'goroutineleak debug=1', path: `${p}/goroutineleak?debug=1`, type: 'text/plain' },
    { name: 'cmdline', path: `${p}/cmdline`, type: 'text/plain' },
    config.heapSnapshot
      ? { name: 'heapsnapshot', path: `${p}/heapsnapshot`, type: 'application/json' }
      : { name: 'heapsnapshot', path: `${p}/heapsnapshot`, expect: [403], note: '403 by design: heapSnapshot is not set' },
    { name: 'vars', path: '/debug/vars', type: 'application/json' },
    { name: 'metrics', path: '/debug/metrics', type: 'text/plain; version=0.0.4', records: true },
    { name: 'metrics OpenMetrics', path: '/debug/metrics', headers: { accept: openMetricsAccept }, type: 'application/openmetrics-text', records: true },
    { name: 'metrics HEAD', path: '/debug/metrics', method: 'HEAD', type: 'text/plain' },
  ];
}

/** "heapsnapshot ×1, tasks debug=2 ×3" from inFlight's counts, most first. */
function inFlightText(counts) {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  if (entries.length === 0) return 'no scrape';
  return entries.slice(0, 8).map(([name, n]) => `${name} ×${n}`).join(', ') + (entries.length > 8 ? ', ...' : '');
}

function judge(endpoint, result) {
  if (result.error !== undefined) return `error: ${result.error}`;
  const status = result.status;
  if (endpoint.expect?.includes(status)) return null;
  if (status === 429) return null;
  if (status < 200 || status > 299) return `status ${status}`;
  if (endpoint.expect !== undefined) return `status ${status} (expected ${endpoint.expect.join('/')})`;
  if (endpoint.method !== 'HEAD' && result.bytes === 0) return `empty ${status} body`;
  if (endpoint.type && !String(result.headers['content-type']).startsWith(endpoint.type)) {
    return `content-type ${result.headers['content-type']} (expected ${endpoint.type})`;
  }
  return null;
}

/** Per-endpoint tallies of scrapes; `records` follows taskprof_tracker_records in metrics bodies. */
function scrapeTally(endpoints) {
  const byEndpoint = new Map(endpoints.map((e) => [e.name, { endpoint: e, count: 0, byStatus: {}, errors: {}, failures: [], latencies: [], bytes: 0 }]));
  const records = { max: 0, last: null, droppedTotal: 0 };
  const spans = [];
  return {
    records,
    /** Scrapes whose request was open at some point between from and to (performance.now() times), by endpoint. */
    inFlight(from, to) {
      const counts = {};
      for (const [name, start, end] of spans) if (start <= to && end >= from) counts[name] = (counts[name] ?? 0) + 1;
      return counts;
    },
    add(endpoint, result) {
      spans.push([endpoint.name, result.sentAt, result.sentAt + result.ms]);
      const t = byEndpoint.get(endpoint.name);
      t.count++;
      t.latencies.push(result.ms);
      t.bytes += result.bytes ?? 0;
      if (result.error !== undefined) t.errors[result.error] = (t.errors[result.error] ?? 0) + 1;
      else t.byStatus[result.status] = (t.byStatus[result.status] ?? 0) + 1;
      const failure = judge(endpoint, result);
      if (failure !== null && t.failures.length < 5) t.failures.push({ failure, status: result.status, ms: Math.round(result.ms), body: result.body?.slice(0, 300) });
      if (failure !== null) t.failed = (t.failed ?? 0) + 1;
      if (endpoint.records && result.body) {
        const n = Number(result.body.match(/^taskprof_tracker_records (\d+)/m)?.[1] ?? NaN);
        if (Number.isFinite(n)) {
          records.max = Math.max(records.max, n);
          records.last = n;
        }
        const dropped = Number(result.body.match(/^taskprof_tracker_dropped_total (\d+)/m)?.[1] ?? NaN);
        if (Number.isFinite(dropped)) records.droppedTotal = Math.max(records.droppedTotal, dropped);
      }
      return failure;
    },
    summary() {
      return [...byEndpoint.values()].map((t) => {
        const statuses = Object.entries(t.byStatus);
        const count = (test) => statuses.filter(([s]) => test(Number(s))).reduce((n, [, c]) => n + c, 0);
        return {
          name: t.endpoint.name,
          method: t.endpoint.method ?? 'GET',
          path: t.endpoint.path,
          note: t.endpoint.note,
          requests: t.count,
          s2xx: count((s) => s >= 200 && s < 300),
          s3xx: count((s) => s >= 300 && s < 400),
          s429: count((s) => s === 429),
          otherStatus: count((s) => s < 200 || (s >= 400 && s !== 429)),
          errors: Object.values(t.errors).reduce((a, b) => a + b, 0),
          byStatus: t.byStatus,
          errorKinds: t.errors,
          failed: t.failed ?? 0,
          failures: t.failures,
          latencyMs: latencySummary(t.latencies),
          meanBytes: t.count ? Math.round(t.bytes / t.count) : 0,
        };
      });
    },
  };
}

/** `scrapers` loops over the endpoints (scraper i starting at endpoint i) until stop(); bounded by the request timeout. */
function startScrapers({ base, endpoints, scrapers = 50, timeoutMs = 120_000, tally }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: scrapers });
  let stopping = false;
  let scrapes = 0;
  async function scraper(index) {
    for (let i = index; !stopping; i++) {
      const endpoint = endpoints[i % endpoints.length];
      const result = await httpRequest(agent, base, endpoint, { timeoutMs, keepBody: endpoint.records === true });
      scrapes++;
      tally.add(endpoint, result);
    }
  }
  const running = Array.from({ length: scrapers }, (_, i) => scraper(i));
  return {
    async stop() {
      stopping = true;
      await Promise.all(running);
      agent.destroy();
      return scrapes;
    },
  };
}

/** Which taskprof ran: dist/ is used as built, so its build time and the commit checked out. */
function buildInfo() {
  let commit = null;
  try {
    const head = readFileSync(path.join(root, '.git', 'HEAD'), 'utf8').trim();
    commit = head.startsWith('ref: ') ? readFileSync(path.join(root, '.git', head.slice(5)), 'utf8').trim() : head;
  } catch {}
  let distBuilt = null;
  try {
    distBuilt = statSync(path.join(root, 'dist', 'src', 'index.js')).mtime.toISOString();
  } catch {}
  return { commit, distBuilt };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- load run

/**
 * One load run against one app (see the top comment). Resolves to the
 * result, with `failures` (empty when it passed); children are always stopped.
 */
export async function runLoadBench({
  app = 'demo',
  seconds = 30,
  warmupSeconds = 5,
  cooldownSeconds = 5,
  concurrency = 24,
  scrapers = 50,
  scrapeTimeoutMs = 120_000,
  loadTimeoutMs = 60_000,
  progress = () => {},
} = {}) {
  const spec = appKinds[app];
  const endpoints = endpointsFor(spec.config);
  const child = await startApp(app);
  const result = {
    app,
    describe: spec.describe,
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    settings: { seconds, warmupSeconds, cooldownSeconds, concurrency, scrapers, loadPaths: spec.loadPaths, endpoints: endpoints.length },
    build: buildInfo(),
  };
  const failures = [];
  try {
    const before = await child.probe();
    result.maxTasks = before.maxTasks;
    result.memoryBefore = before.memory;
    const load = startLoad({ base: child.base, paths: spec.loadPaths, concurrency, timeoutMs: loadTimeoutMs, phase: 'warm-up' });
    progress(`${app}: warm-up ${warmupSeconds}s, ${concurrency} connections`);
    await sleep(warmupSeconds * 1000);
    load.setPhase('scraping');
    progress(`${app}: scraping ${seconds}s with ${scrapers} scrapers over ${endpoints.length} endpoints`);
    const tally = scrapeTally(endpoints);
    const scraping = startScrapers({ base: child.base, endpoints, scrapers, timeoutMs: scrapeTimeoutMs, tally });
    await sleep(seconds * 1000);
    load.setPhase('scrapers finishing');
    const drainStarted = performance.now();
    result.scrapes = await scraping.stop();
    result.drainMs = Math.round(performance.now() - drainStarted);
    load.setPhase('cool-down');
    progress(`${app}: cool-down ${cooldownSeconds}s (scrapers took ${result.drainMs} ms to finish)`);
    await sleep(cooldownSeconds * 1000);
    const loadSummary = await load.stop();
    result.load = loadSummary;

    // Every endpoint once more, all at once, with the app idle; one that
    // answers 429 (two CPU profiles at once) is asked again alone: a 429 then
    // would be a busy state that outlived its request.
    const finalTally = scrapeTally(endpoints);
    const agent = new http.Agent({ keepAlive: true, maxSockets: endpoints.length });
    const again = [];
    await Promise.all(
      endpoints.map(async (endpoint) => {
        const r = await httpRequest(agent, child.base, endpoint, { timeoutMs: scrapeTimeoutMs, keepBody: endpoint.records === true || endpoint.name === 'vars' });
        if (endpoint.name === 'vars' && r.status === 200) {
          try {
            result.eventLoopDelayMs = JSON.parse(r.body).eventLoop.delayMs;
          } catch {}
        }
        if (r.status === 429) again.push(endpoint);
        else {
          const failure = finalTally.add(endpoint, r);
          if (failure !== null) failures.push(`after the run, ${endpoint.name} (${endpoint.method ?? 'GET'} ${endpoint.path}): ${failure}`);
        }
      }),
    );
    for (const endpoint of again) {
      const r = await httpRequest(agent, child.base, endpoint, { timeoutMs: scrapeTimeoutMs, keepBody: endpoint.records === true });
      const failure = finalTally.add(endpoint, r);
      if (failure !== null) failures.push(`after the run, ${endpoint.name} (${endpoint.method ?? 'GET'} ${endpoint.path}): ${failure}`);
      else if (r.status === 429) failures.push(`after the run, asked alone, ${endpoint.name} still answered 429`);
    }
    agent.destroy();
    result.finalPass = finalTally.summary().map((e) => ({ name: e.name, byStatus: e.byStatus, errors: e.errorKinds }));

    result.endpoints = tally.summary();
    result.records = { ...tally.records, ...finalTally.records, max: Math.max(tally.records.max, finalTally.records.max) };
    const after = await child.probe();
    result.memoryAfter = after.memory;

    for (const e of result.endpoints) {
      if (e.failed > 0) failures.push(`${e.name} (${e.method} ${e.path}): ${e.failed} of ${e.requests} scrapes failed, e.g. ${JSON.stringify(e.failures[0])}`);
      if (e.requests === 0) failures.push(`${e.name} was never scraped`);
    }
    for (const p of loadSummary.phases) {
      for (const e of p.errorSamples) e.scrapesOpen = inFlightText(tally.inFlight(e.sentAt, e.sentAt + e.ms));
      if (p.errors > 0) {
        const samples = p.errorSamples.filter((e) => e.error !== undefined).slice(0, 3);
        failures.push(`load generator, ${p.phase}: ${p.errors} errors ${JSON.stringify(p.errorKinds)}; ${samples.map((e) => `${e.error} on ${e.path} after ${Math.round(e.ms)} ms at ${e.atSecond} s, while these scrapes were open: ${e.scrapesOpen}`).join('; ')}`);
      }
      if (p.notOk > 0) failures.push(`load generator, ${p.phase}: ${p.notOk} non-200 answers ${JSON.stringify(p.byStatus)}`);
    }
    const phase = (name) => loadSummary.phases.find((p) => p.phase === name);
    if (!(phase('scraping')?.ok > 0)) failures.push('load generator got no 200 while scraping');
    if (!(phase('cool-down')?.ok > 0)) failures.push('load generator got no 200 after scraping');
    // Kept being served: 200s in each quarter of the scraping phase.
    const t = loadSummary.timeline;
    const scrapeFrom = warmupSeconds;
    const quarters = [0, 1, 2, 3].map((q) => {
      const from = scrapeFrom + Math.floor((q * seconds) / 4);
      const to = scrapeFrom + Math.max(Math.floor(((q + 1) * seconds) / 4), Math.floor((q * seconds) / 4) + 1);
      return t.slice(from, to).reduce((n, [ok]) => n + ok, 0);
    });
    result.okPerScrapingQuarter = quarters;
    // With quarters of 5 s or more: each had 200s (shorter runs only need some while scraping).
    if (seconds >= 20 && quarters.some((n) => n === 0)) failures.push(`load generator got no 200 in a quarter of the scraping phase: ${quarters.join(', ')}`);
    result.secondsWithout200WhileScraping = t.slice(scrapeFrom, scrapeFrom + seconds).filter(([ok]) => ok === 0).length;
  } finally {
    result.exit = await child.stop();
    result.appLog = { errors: child.logErrors(), stdoutLines: child.log.stdout.length, stderrLines: child.log.stderr.length };
  }
  for (const e of result.appLog.errors) failures.push(`app log: ${e}`);
  result.failures = failures;
  result.pass = failures.length === 0;
  return result;
}

const fmt = (n, digits = 0) => (n === null || n === undefined ? '–' : Number(n).toFixed(digits));
const mib = (bytes) => (bytes / 1024 / 1024).toFixed(1);

export function loadReport(r) {
  let md = `### ${r.app}: ${r.describe}\n\n`;
  md += `${r.date.slice(0, 16).replace('T', ' ')} UTC, Node ${r.node}, ${r.cpus} CPUs, commit ${r.build.commit?.slice(0, 7)} with dist/ built ${r.build.distBuilt?.slice(0, 16).replace('T', ' ')}. Load: ${r.settings.concurrency} keep-alive connections on ${r.settings.loadPaths.join(' and ')}; `;
  md += `${r.settings.warmupSeconds} s warm-up without scraping, ${r.settings.seconds} s with ${r.settings.scrapers} scrapers over ${r.settings.endpoints} endpoints `;
  md += `(the scrapers then took ${fmt(r.drainMs)} ms to finish their last request), ${r.settings.cooldownSeconds} s cool-down, then every endpoint once more with the app idle.\n\n`;
  md += `**${r.pass ? 'PASS' : 'FAIL'}**`;
  md += r.pass ? `: ${r.scrapes} scrapes, every one answered as accepted; the load generator saw no error and only 200s; nothing on the app's stderr.\n\n` : `:\n\n${r.failures.map((f) => `- ${f}`).join('\n')}\n\n`;
  md += '| load phase | s | responses | 200 | other status | errors | 200/s | p50 ms | p90 ms | p99 ms | max ms | longest gap without a 200 |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n';
  for (const p of r.load?.phases ?? []) {
    md += `| ${p.phase} | ${p.seconds} | ${p.responses} | ${p.ok} | ${p.notOk} | ${p.errors} | ${fmt(p.okPerSecond)} | ${fmt(p.latencyMs.p50, 1)} | ${fmt(p.latencyMs.p90, 1)} | ${fmt(p.latencyMs.p99, 1)} | ${fmt(p.latencyMs.max)} | ${fmt(p.longestGapWithout200Ms)} ms |\n`;
  }
  md += `\n200s in each quarter of the scraping phase: ${r.okPerScrapingQuarter?.join(', ')}; whole seconds without a 200 while scraping: ${r.secondsWithout200WhileScraping} of ${r.settings.seconds}. `;
  const d = r.eventLoopDelayMs;
  if (d) md += `The app's event-loop delay since it started (from /debug/vars at the end): p50 ${fmt(d.p50, 1)} ms, p99 ${fmt(d.p99)} ms, max ${fmt(d.max)} ms (its longest block).\n`;
  else md += '\n';
  md += `Tracker records (taskprof_tracker_records in metrics scrapes): max ${r.records?.max} of maxTasks ${r.maxTasks}; taskprof_tracker_dropped_total ${r.records?.droppedTotal}. `;
  md += `App memory after gc(): heapUsed ${mib(r.memoryBefore?.heapUsed ?? 0)} MiB before, ${mib(r.memoryAfter?.heapUsed ?? 0)} MiB after; rss ${mib(r.memoryBefore?.rss ?? 0)} → ${mib(r.memoryAfter?.rss ?? 0)} MiB.\n\n`;
  md += '| endpoint | request | scrapes | 2xx | 3xx | 429 | other | errors | failed | p50 ms | max ms | mean bytes |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n';
  for (const e of r.endpoints ?? []) {
    const request = `${e.method === 'GET' ? '' : e.method + ' '}\`${e.path}\``;
    md += `| ${e.name}${e.note ? ` (${e.note})` : ''} | ${request} | ${e.requests} | ${e.s2xx} | ${e.s3xx} | ${e.s429} | ${e.otherStatus} | ${e.errors} | ${e.failed} | ${fmt(e.latencyMs.p50)} | ${fmt(e.latencyMs.max)} | ${e.meanBytes} |\n`;
  }
  return md + '\n';
}

// ---------------------------------------------------------------- soak

/** Least-squares slope of y over x. */
export function slope(points) {
  const n = points.length;
  if (n < 2) return null;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? null : num / den;
}

export async function runSoak({ minutes = 5, rate = 100, concurrency = 8, probeSeconds = 5, kinds = ['app-default', 'app-full', 'app-allocs'], progress = () => {} } = {}) {
  const durationMs = minutes * 60_000;
  const names = [...kinds, 'control'];
  const apps = await Promise.all(names.map((kind) => startApp(kind)));
  const control = apps.at(-1);
  const taskprofApps = apps.slice(0, -1);
  const endpoints = endpointsFor(appKinds['app-default'].config);
  const controlEndpoints = endpoints.map((e) => ({ ...e, expect: [404] }));
  const loadPaths = appKinds.control.loadPaths;
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    settings: { minutes, rate, concurrency, probeSeconds, endpoints: endpoints.length, loadPaths },
    children: names.map((kind) => ({ kind, describe: appKinds[kind].describe })),
    build: buildInfo(),
  };
  const failures = [];
  const probeFailures = [];
  const samples = [];
  try {
    const loads = apps.map((c) => startLoad({ base: c.base, paths: loadPaths, concurrency, rate, phase: 'soak' }));
    // The same endpoints in the same order for every child; what each answers by design follows its configuration.
    const endpointLists = kinds.map((kind) => endpointsFor(appKinds[kind].config));
    const tallies = endpointLists.map((list) => scrapeTally(list));
    const controlTally = scrapeTally(controlEndpoints);
    const t0 = performance.now();
    const elapsed = () => performance.now() - t0;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 2 * apps.length });

    // One scrape a second, rotating over the endpoints; every child gets the same request.
    const scraping = (async () => {
      for (let i = 0; elapsed() < durationMs; i++) {
        const startedAt = elapsed();
        await Promise.all([
          ...taskprofApps.map(async (a, j) => {
            const endpoint = endpointLists[j][i % endpoints.length];
            tallies[j].add(endpoint, await httpRequest(agent, a.base, endpoint, { timeoutMs: 120_000, keepBody: endpoint.records === true }));
          }),
          (async () => {
            const endpoint = controlEndpoints[i % endpoints.length];
            controlTally.add(endpoint, await httpRequest(agent, control.base, endpoint, { timeoutMs: 120_000 }));
          })(),
        ]);
        const wait = startedAt + 1000 - elapsed();
        if (wait > 0) await sleep(Math.min(wait, durationMs - elapsed()));
      }
    })();

    const probing = (async () => {
      for (let k = 0; ; k++) {
        const at = k * probeSeconds * 1000;
        if (at > durationMs) break;
        if (at > elapsed()) await sleep(at - elapsed());
        const probes = await Promise.all(apps.map((a) => a.probe()));
        const metrics = await Promise.all(taskprofApps.map((a) => httpRequest(agent, a.base, { path: '/debug/metrics' }, { timeoutMs: 60_000, keepBody: true })));
        const sample = { s: Number((elapsed() / 1000).toFixed(1)) };
        names.forEach((kind, j) => {
          sample[kind] = { ...probes[j].memory };
          if (j < taskprofApps.length) {
            const m = metrics[j];
            if (m.status !== 200) probeFailures.push({ kind, j, at, m });
            sample[kind].records = Number(m.body?.match(/^taskprof_tracker_records (\d+)/m)?.[1] ?? NaN);
            sample[kind].dropped = Number(m.body?.match(/^taskprof_tracker_dropped_total (\d+)/m)?.[1] ?? NaN);
            sample[kind].maxTasks = probes[j].maxTasks;
          }
        });
        samples.push(sample);
        if (k % 6 === 0) {
          progress(`soak ${(elapsed() / 60000).toFixed(1)} min: heapUsed ${names.map((kind) => `${kind} ${mib(sample[kind].heapUsed)} MiB`).join(', ')}; records ${taskprofApps.map((a, j) => sample[names[j]].records).join(', ')}`);
        }
      }
    })();

    await Promise.all([scraping, probing]);
    agent.destroy();
    for (const { kind, j, at, m } of probeFailures) {
      failures.push(`${kind}: metrics probe at ${(at / 1000).toFixed(0)} s: ${m.status ?? ''}${m.error ?? ''} after ${Math.round(m.ms)} ms, while this scrape was open: ${inFlightText(tallies[j].inFlight(m.sentAt, m.sentAt + m.ms))}`);
    }
    const loadResults = await Promise.all(loads.map((l) => l.stop()));
    result.load = Object.fromEntries(names.map((kind, j) => [kind, loadResults[j]]));
    result.endpoints = Object.fromEntries(taskprofApps.map((a, j) => [names[j], tallies[j].summary()]));
    result.controlScrapes = controlTally.summary().reduce((n, e) => n + e.requests, 0);
    result.samples = samples;

    for (const [kind, summary] of Object.entries(result.endpoints)) {
      for (const e of summary) {
        if (e.failed > 0) failures.push(`${kind}: ${e.name} (${e.method} ${e.path}): ${e.failed} of ${e.requests} scrapes failed, e.g. ${JSON.stringify(e.failures[0])}`);
      }
    }
    for (const [j, [kind, l]] of Object.entries(result.load).entries()) {
      const tally = j < taskprofApps.length ? tallies[j] : controlTally;
      for (const p of l.phases) {
        for (const e of p.errorSamples) e.scrapesOpen = inFlightText(tally.inFlight(e.sentAt, e.sentAt + e.ms));
        if (p.errors > 0) {
          const samples = p.errorSamples.filter((e) => e.error !== undefined);
          failures.push(`load generator (${kind}): ${p.errors} errors ${JSON.stringify(p.errorKinds)}; ${samples.map((e) => `${e.error} on ${e.path} after ${Math.round(e.ms)} ms at ${e.atSecond} s, while this scrape was open: ${e.scrapesOpen}`).join('; ')}`);
        }
        if (p.notOk > 0) failures.push(`load generator (${kind}): ${p.notOk} non-200 answers ${JSON.stringify(p.byStatus)}`);
      }
    }
    const half = durationMs / 2000;
    const fit = (kind, field, from, to) => {
      const v = slope(samples.filter((s) => s.s >= from && s.s <= to).map((s) => [s.s / 60, s[kind][field]]));
      return v === null ? null : Math.round(v);
    };
    result.memory = {};
    for (const kind of names) {
      const m = {
        heapUsedStart: samples[0][kind].heapUsed,
        heapUsedEnd: samples.at(-1)[kind].heapUsed,
        heapUsedMax: Math.max(...samples.map((s) => s[kind].heapUsed)),
        rssStart: samples[0][kind].rss,
        rssEnd: samples.at(-1)[kind].rss,
        heapUsedSlopeFirstHalf: fit(kind, 'heapUsed', 0, half),
        heapUsedSlopeSecondHalf: fit(kind, 'heapUsed', half, Infinity),
        rssSlopeSecondHalf: fit(kind, 'rss', half, Infinity),
        externalSlopeSecondHalf: fit(kind, 'external', half, Infinity),
      };
      if (kind !== 'control') {
        const records = samples.map((s) => s[kind].records).filter(Number.isFinite);
        m.records = { max: Math.max(...records), last: records.at(-1), samples: records.length, cap: samples[0][kind].maxTasks, droppedLast: samples.at(-1)[kind].dropped };
        if (!(m.records.max < m.records.cap)) failures.push(`${kind}: tracker records reached ${m.records.max} of maxTasks ${m.records.cap}`);
        if (m.records.samples !== samples.length) failures.push(`${kind}: taskprof_tracker_records missing in ${samples.length - m.records.samples} probes`);
      }
      result.memory[kind] = m;
    }
    for (const kind of kinds) {
      result.memory[kind].ownHeapUsedSlopeSecondHalf = result.memory[kind].heapUsedSlopeSecondHalf - result.memory.control.heapUsedSlopeSecondHalf;
    }
  } finally {
    result.exit = {};
    result.appLog = {};
    for (const [j, a] of apps.entries()) {
      result.exit[names[j]] = await a.stop();
      result.appLog[names[j]] = a.logErrors();
    }
  }
  for (const [kind, errors] of Object.entries(result.appLog)) for (const e of errors) failures.push(`${kind} log: ${e}`);
  result.failures = failures;
  result.pass = failures.length === 0;
  return result;
}

const kib = (bytes) => (bytes === null || bytes === undefined || Number.isNaN(bytes) ? '–' : `${(bytes / 1024).toFixed(1)} KiB`);

export function soakReport(r) {
  const names = r.children.map((c) => c.kind);
  let md = `## Soak: ${r.settings.minutes} min of load with a scrape every second\n\n`;
  md += `${r.date.slice(0, 16).replace('T', ' ')} UTC, Node ${r.node}, ${r.cpus} CPUs, commit ${r.build.commit?.slice(0, 7)} with dist/ built ${r.build.distBuilt?.slice(0, 16).replace('T', ' ')}. `;
  md += `${names.length} children at once, each under ${r.settings.rate} requests/s (${r.settings.concurrency} keep-alive connections) on ${r.settings.loadPaths.join(' and ')}:\n\n`;
  md += r.children.map((c) => `- **${c.kind}**: ${c.describe}`).join('\n') + '\n\n';
  md += `One scrape a second rotates over the ${r.settings.endpoints} endpoints (every child gets the same request; the control answers 404). `;
  md += `Every ${r.settings.probeSeconds} s each child runs gc() and reports process.memoryUsage(); the taskprof children's records come from taskprof_tracker_records in /debug/metrics. Slopes are least-squares fits of those samples, per minute.\n\n`;
  md += `**${r.pass ? 'PASS' : 'FAIL'}**${r.pass ? '' : ':\n\n' + r.failures.map((f) => `- ${f}`).join('\n')}\n\n`;
  md += '| child | records max / maxTasks (last) | heapUsed start | heapUsed end | heapUsed max | heapUsed slope, 1st half | heapUsed slope, 2nd half | of it beyond the control | rss start → end | rss slope, 2nd half |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n';
  for (const kind of names) {
    const m = r.memory?.[kind];
    if (!m) continue;
    const records = m.records ? `${m.records.max} / ${m.records.cap} (${m.records.last})` : '–';
    md += `| ${kind} | ${records} | ${mib(m.heapUsedStart)} MiB | ${mib(m.heapUsedEnd)} MiB | ${mib(m.heapUsedMax)} MiB | ${kib(m.heapUsedSlopeFirstHalf)}/min | ${kib(m.heapUsedSlopeSecondHalf)}/min | ${kind === 'control' ? '–' : kib(m.ownHeapUsedSlopeSecondHalf) + '/min'} | ${mib(m.rssStart)} → ${mib(m.rssEnd)} MiB | ${mib(m.rssSlopeSecondHalf)} MiB/min |\n`;
  }
  md += '\n| load | responses | 200 | other | errors | 200/s | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n';
  for (const [kind, l] of Object.entries(r.load ?? {})) {
    for (const p of l.phases) {
      md += `| ${kind} | ${p.responses} | ${p.ok} | ${p.notOk} | ${p.errors} | ${fmt(p.okPerSecond)} | ${fmt(p.latencyMs.p50, 1)} | ${fmt(p.latencyMs.p99, 1)} | ${fmt(p.latencyMs.max)} |\n`;
    }
  }
  const kindsWithScrapes = Object.keys(r.endpoints ?? {});
  md += `\nScrapes (${kindsWithScrapes.join(' / ')}):\n\n| endpoint | scrapes | 2xx | 3xx | 429 | other | errors | failed | max ms |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n`;
  const first = r.endpoints?.[kindsWithScrapes[0]] ?? [];
  for (const [i, e] of first.entries()) {
    const all = kindsWithScrapes.map((kind) => r.endpoints[kind][i]);
    const col = (f) => all.map(f).join(' / ');
    md += `| ${e.name}${e.note ? ` (${e.note})` : ''} | ${col((x) => x.requests)} | ${col((x) => x.s2xx)} | ${col((x) => x.s3xx)} | ${col((x) => x.s429)} | ${col((x) => x.otherStatus)} | ${col((x) => x.errors)} | ${col((x) => x.failed)} | ${col((x) => fmt(x.latencyMs.max))} |\n`;
  }
  md += `\nheapUsed after gc() (MiB) and records, every minute:\n\n| s | ${names.join(' | ')} | ${kindsWithScrapes.map((k) => `records ${k}`).join(' | ')} |\n|---:|${names.map(() => '---:').join('|')}|${kindsWithScrapes.map(() => '---:').join('|')}|\n`;
  for (const s of r.samples ?? []) {
    if (Math.round(s.s) % 60 < r.settings.probeSeconds || s === r.samples.at(-1)) {
      md += `| ${s.s} | ${names.map((k) => mib(s[k].heapUsed)).join(' | ')} | ${kindsWithScrapes.map((k) => s[k].records).join(' | ')} |\n`;
    }
  }
  return md + '\n';
}

// ---------------------------------------------------------------- CLI

async function cli() {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '30' },
      app: { type: 'string', default: 'both' },
      concurrency: { type: 'string' },
      scrapers: { type: 'string', default: '50' },
      warmup: { type: 'string', default: '5' },
      cooldown: { type: 'string', default: '5' },
      soak: { type: 'boolean', default: false },
      minutes: { type: 'string', default: '5' },
      rate: { type: 'string', default: '100' },
      children: { type: 'string', default: 'sampled,full,allocs' },
    },
  });
  const progress = (line) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
  mkdirSync(path.join(here, 'results'), { recursive: true });
  let watchdogMs;
  let run;
  if (values.soak) {
    const minutes = Number(values.minutes);
    watchdogMs = minutes * 60_000 + 180_000;
    run = async () => {
      const kinds = values.children.split(',').map((c) => ({ sampled: 'app-default', full: 'app-full', allocs: 'app-allocs' })[c]);
      const r = await runSoak({ minutes, rate: Number(values.rate), concurrency: Number(values.concurrency ?? 8), kinds, progress });
      const md = soakReport(r);
      writeFileSync(path.join(here, 'results', 'soak.json'), JSON.stringify(r, null, 2) + '\n');
      writeFileSync(path.join(here, 'results', 'soak.md'), md);
      console.log(md);
      return r.pass;
    };
  } else {
    const apps = values.app === 'both' ? ['demo', 'app'] : values.app.split(',');
    const seconds = Number(values.seconds);
    watchdogMs = apps.length * ((seconds + Number(values.warmup) + Number(values.cooldown)) * 1000 + 300_000);
    run = async () => {
      const results = [];
      for (const app of apps) {
        results.push(
          await runLoadBench({
            app,
            seconds,
            warmupSeconds: Number(values.warmup),
            cooldownSeconds: Number(values.cooldown),
            concurrency: Number(values.concurrency ?? 24),
            scrapers: Number(values.scrapers),
            progress,
          }),
        );
      }
      const md = `## Load: every endpoint scraped by ${values.scrapers} scrapers while the app serves\n\n` + results.map(loadReport).join('');
      writeFileSync(path.join(here, 'results', 'load.json'), JSON.stringify(results, null, 2) + '\n');
      writeFileSync(path.join(here, 'results', 'load.md'), md);
      console.log(md);
      return results.every((r) => r.pass);
    };
  }
  // Never outlive a hung run: the exit handler kills the children.
  setTimeout(() => {
    console.error(`watchdog: no result after ${watchdogMs / 1000} s; killing the children`);
    process.exit(2);
  }, watchdogMs).unref();
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130));
  const pass = await run();
  process.exitCode = pass ? 0 : 1;
}

if (process.argv[2] === '--child') {
  await childMain(process.argv[3], process.argv[4], process.argv[5]);
} else if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === thisFile) {
  await cli();
}
