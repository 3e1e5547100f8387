// Listings at 100,000 live tasks, per tracking mode: what /debug/metrics,
// tasks?debug=1 and tasks?debug=2 cost, and the memory per tracked task.
//
//   npm run build && node bench/listing.mjs [--tasks 100000] [--modes full,sampled,counts] [--rounds 3]
//       [--metrics-requests 200] [--repeats 5] [--dump-repeats 3] [--no-caught-up] [--no-slow-dump]
//       [--timeout SECONDS]
//
// About 2 to 3 minutes with the defaults.
//
// Method, and why:
// - --rounds rounds; in each, one fresh server process per tracking mode
//   (node --expose-gc, a plain node:http server with taskprof/http mounted,
//   tracking set to the mode), plus `none`: the same server without taskprof,
//   for the memory baseline. Every figure is the median over rounds of the
//   figure of each round.
// - The server makes the tasks the app holds: pending promises at 10 distinct
//   source lines (3 of them inside withLabels, so labels show in listings),
//   and 1-hour timers at 2 lines; 90% promises, 10% timers by default.
// - CPU is the server's own (process.cpuUsage(), user + system, read over IPC
//   before and after), not requests per second: the parent shares a 2-core
//   machine with the server. The server is pinned to CPU 0 and the parent to
//   CPU 1 (taskset, where present). Client wall times are given too.
// - /debug/metrics: --repeats batches of --metrics-requests requests one after
//   another over a keep-alive connection; median per-request CPU over batches.
//   The same for a trivial endpoint (cmdline) shows what HTTP alone costs.
// - tasks?debug=1: the first call right after the tasks are made (in `full`
//   mode it formats the creation stacks captured raw, unless the background
//   pass got to them first), then --repeats later calls (median). In `full`
//   mode, once per run, three more fresh servers make the same tasks and wait
//   until every creation stack is formatted (polled in process: no record
//   left with `stackPending`), then time a first call and later ones: one as
//   mounted by default; one that first warms the listing code (30 listings of
//   1,600 other tasks of the same kinds before the 100,000 are made), which
//   tells the JIT's share of a first call; one with leakDetection: false, where only the
//   background pass (at most 20 ms a second) formats stacks: with the growth
//   detector on, its sample every 10 s reads every record's stack and so
//   formats all raw ones at once. The longest event-loop hold during the
//   wait is recorded.
// - tasks?debug=2: --dump-repeats reads by a client that discards the data:
//   total time, time to first byte, bytes, Transfer-Encoding. Meanwhile the
//   parent reads the server's VmRSS from /proc every 2 ms and its VmHWM
//   (reset first through /proc/<pid>/clear_refs), and the server samples
//   process.memoryUsage() every 5 ms. The peak rise in RSS, heapTotal and
//   heapUsed over the values just before (after gc), against the response
//   size, shows whether the dump is streamed or built whole. The longest gap
//   between the server's samples is the longest the event loop was held. A
//   fast loopback client never fills the socket, so the server's sampler may
//   not run during the dump; in `full` mode one more dump is read by a slow
//   client (64 KB every 10 ms), which makes the server wait on back-pressure
//   and lets its sampler see the heap throughout.
// - Memory per task: heapUsed after global.gc() with the tasks live, minus the
//   same in `none`, divided by the task count (this includes taskprof's fixed
//   heap), and the growth from making the tasks minus `none`'s growth, divided
//   by the task count and by the tracker's record count
//   (taskprof_tracker_records in /debug/metrics), which leaves the fixed heap
//   out. Taken right after the tasks are made and again after the listings.
//
// Results: a markdown table on stdout and bench/results/listing.md, raw data in
// bench/results/listing.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { canPin, forkServer, pinToCpu, provenance, readSlowly, rssWatch } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

// ---------------------------------------------------------------------------
// Child: one server, one mode. Talks to the parent over IPC only.

async function child(mode, count, flags) {
  const warm = flags.includes('warm');
  // Never outlive the parent.
  process.on('disconnect', () => process.exit(0));
  const tracked = mode !== 'none';
  let withLabels = (labels, fn) => fn();
  let own = (fn) => fn();
  let tracker;
  let server;
  const app = (req, res) => res.end('ok\n');
  if (tracked) {
    const { default: taskprof } = await import('taskprof/http');
    ({ withLabels } = await import('taskprof'));
    const { runWithLabels, ownWork } = await import('../dist/src/labels.js');
    ({ tracker } = await import('../dist/src/tracker.js'));
    own = (fn) => runWithLabels(ownWork, fn);
    // `noleak`: without the growth detector, whose samples read every stack (see measureCaughtUp).
    const debug = taskprof(flags.includes('noleak') ? { tracking: mode, leakDetection: false } : { tracking: mode });
    server = http.createServer((req, res) => debug(req, res, () => app(req, res)));
  } else {
    server = http.createServer(app);
  }
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;

  // Warm the listing code on a few other tasks (JIT), so that a first call is the listing's own cost.
  if (warm) {
    const warmHeld = [];
    globalThis.warmHeld = warmHeld;
    // The same kinds as the real tasks (promises, timers, some labelled), so that
    // the optimized listing code does not meet new shapes and deoptimize.
    function warmUp(n) { for (let i = 0; i < n; i++) warmHeld.push(new Promise(() => {})); }
    function warmTimers(n) { for (let i = 0; i < n; i++) warmHeld.push(setTimeout(() => {}, 3_600_000)); }
    warmUp(1000);
    warmTimers(200);
    withLabels({ job: 'warm' }, () => warmUp(300));
    withLabels({ job: 'warm' }, () => warmTimers(100));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 30; i++) {
      await own(() => new Promise((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: '/debug/pprof/tasks?debug=1', agent }, (res) => res.resume().on('end', resolve)).on('error', reject);
      }));
    }
    agent.destroy();
  }

  const gcHeap = async () => {
    for (let i = 0; i < 3; i++) {
      global.gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
    return process.memoryUsage();
  };

  // Settle the mount's own start-up (heap sampler, detector) before the baseline.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const baseMemory = await gcHeap();

  // The app's tasks: promises at 10 lines, timers at 2; held so none is collected.
  const held = [];
  globalThis.held = held;
  const promises = Math.round(count * 0.9);
  const timers = count - promises;
  const per = Math.floor(promises / 10);
  const noop = () => {};
  const created = process.hrtime.bigint();
  const createdCpu = process.cpuUsage();
  function loadUsers(n) { for (let i = 0; i < n; i++) held.push(new Promise(() => {})); }
  function loadOrders(n) { for (let i = 0; i < n; i++) held.push(new Promise(() => {})); }
  function fetchInventory(n) { for (let i = 0; i < n; i++) held.push(new Promise(() => {})); }
  function queryPrices(n) { for (let i = 0; i < n; i++) held.push(new Promise(() => {})); }
  function waitForLock(n) { for (let i = 0; i < n; i++) held.push(new Promise(() => {})); }
  function readConfig(n) { for (let i = 0; i < n; i++) held.push(new Promise(() => {})); }
  function callBackend(n) { for (let i = 0; i < n; i++) held.push(new Promise(() => {})); }
  function renderReport(n) { for (let i = 0; i < n; i++) held.push(new Promise(() => {})); }
  function sendMail(n) { for (let i = 0; i < n; i++) held.push(new Promise(() => {})); }
  function pollQueue(n) { for (let i = 0; i < n; i++) held.push(new Promise(() => {})); }
  function scheduleRetry(n) { for (let i = 0; i < n; i++) held.push(setTimeout(noop, 3_600_000)); }
  function scheduleExpiry(n) { for (let i = 0; i < n; i++) held.push(setTimeout(noop, 3_600_000)); }
  loadUsers(per);
  loadOrders(per);
  fetchInventory(per);
  queryPrices(per);
  waitForLock(per);
  readConfig(per);
  callBackend(per);
  withLabels({ job: 'report', tenant: 'acme' }, () => renderReport(per));
  withLabels({ job: 'mail' }, () => sendMail(per));
  withLabels({ job: 'queue', queue: 'orders' }, () => pollQueue(promises - 9 * per));
  scheduleRetry(Math.floor(timers / 2));
  withLabels({ job: 'sessions' }, () => scheduleExpiry(timers - Math.floor(timers / 2)));
  const createMs = Number(process.hrtime.bigint() - created) / 1e6;
  const createCpu = process.cpuUsage(createdCpu);
  const afterCreateMemory = await gcHeap();

  // Memory sampler for the dump: every 5 ms, peaks and the longest gap between samples.
  let sampler;
  const startSampler = () => {
    const base = process.memoryUsage();
    const state = { base, peakRss: base.rss, peakHeapUsed: base.heapUsed, peakHeapTotal: base.heapTotal, peakExternal: base.external, samples: 0, maxGapMs: 0, last: performance.now() };
    state.timer = own(() => setInterval(() => {
      const m = process.memoryUsage();
      const now = performance.now();
      state.maxGapMs = Math.max(state.maxGapMs, now - state.last);
      state.last = now;
      state.samples++;
      state.peakRss = Math.max(state.peakRss, m.rss);
      state.peakHeapUsed = Math.max(state.peakHeapUsed, m.heapUsed);
      state.peakHeapTotal = Math.max(state.peakHeapTotal, m.heapTotal);
      state.peakExternal = Math.max(state.peakExternal, m.external);
    }, 5));
    sampler = state;
  };
  const stopSampler = () => {
    clearInterval(sampler.timer);
    const s = sampler;
    sampler = undefined;
    // Until the end of the dump, not only until the last sample.
    s.maxGapMs = Math.max(s.maxGapMs, performance.now() - s.last);
    return {
      samples: s.samples,
      maxGapMs: s.maxGapMs,
      rssRise: s.peakRss - s.base.rss,
      heapUsedRise: s.peakHeapUsed - s.base.heapUsed,
      heapTotalRise: s.peakHeapTotal - s.base.heapTotal,
      externalRise: s.peakExternal - s.base.external,
    };
  };

  let lag;
  // Run as taskprof's own work, so that the handler's promise is not one of the app's tasks.
  process.on('message', (message) => own(() => onMessage(message)));
  async function onMessage(message) {
    const reply = (data) => process.send({ id: message.id, ...data });
    switch (message.type) {
      case 'cpu':
        return reply({ cpu: process.cpuUsage() });
      case 'gc':
        return reply({ memory: await gcHeap() });
      case 'pending': {
        // Records whose creation stack is still raw (`full` only).
        let pending = 0;
        let records = 0;
        if (tracker !== undefined) {
          tracker.forEachLive((record) => {
            records++;
            if (record.stackPending) pending++;
          });
        }
        return reply({ pending, records });
      }
      case 'sample-start':
        await gcHeap();
        startSampler();
        return reply({});
      case 'sample-stop':
        return reply({ sample: stopSampler() });
      case 'lag-start': {
        // The longest the event loop was held, seen by a 10 ms interval.
        const state = { last: performance.now(), maxGapMs: 0, at: 0 };
        state.timer = own(() => setInterval(() => {
          const now = performance.now();
          if (now - state.last > state.maxGapMs) {
            state.maxGapMs = now - state.last;
            state.at = now - state.started;
          }
          state.last = now;
        }, 10));
        state.started = performance.now();
        lag = state;
        return reply({});
      }
      case 'lag-stop': {
        clearInterval(lag.timer);
        const { maxGapMs, at } = lag;
        return reply({ maxGapMs, atMs: at });
      }
      case 'exit':
        process.exit(0);
    }
  }
  process.send({
    type: 'ready',
    port,
    promises,
    timers,
    createMs,
    createCpuUs: createCpu.user + createCpu.system,
    baseMemory,
    afterCreateMemory,
  });
}

// ---------------------------------------------------------------------------
// Parent.


const children = new Set();

async function startServer(mode, count, flags = []) {
  const server = await forkServer({
    script: fileURLToPath(import.meta.url),
    args: ['--child', mode, String(count), flags.join(',') || '-'],
    execArgv: ['--expose-gc', '--max-old-space-size=4096'],
    label: mode,
    children,
    cpu: 0,
    readyTimeoutMs: 120_000,
    agent: new http.Agent({ keepAlive: true, maxSockets: 1 }),
  });
  return { ...server, mode };
}
function killChildren() {
  for (const proc of children) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
}

const median = (values) => {
  const sorted = values.filter((v) => typeof v === 'number' && !Number.isNaN(v)).sort((a, b) => a - b);
  const n = sorted.length;
  return n === 0 ? undefined : n % 2 ? sorted[n >> 1] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
};

/** Median over rounds of every numeric field, recursively; other fields from the first round; arrays left out. */
function medianOf(objects) {
  const out = {};
  for (const key of Object.keys(objects[0])) {
    const values = objects.map((o) => o?.[key]);
    const first = values[0];
    if (Array.isArray(first)) continue;
    if (typeof first === 'number') out[key] = median(values);
    else if (first !== null && typeof first === 'object') out[key] = medianOf(values);
    else out[key] = first;
  }
  return out;
}



// One GET, body discarded but counted; times to headers, first byte and end.
// `slow`: reads at most 64 KB every 10 ms (paused otherwise), on its own connection.
function get(server, urlPath, { keepBody = false, slow = false } = {}) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const ms = () => Number(process.hrtime.bigint() - started) / 1e6;
    const agent = slow ? new http.Agent({ keepAlive: false }) : server.agent;
    http
      .get({ host: '127.0.0.1', port: server.port, path: urlPath, agent }, (res) => {
        const headersMs = ms();
        let firstByteMs;
        let bytes = 0;
        const parts = [];
        const take = (chunk) => {
          if (firstByteMs === undefined) firstByteMs = ms();
          bytes += chunk.length;
          if (keepBody) parts.push(chunk);
        };
        let timer;
        if (slow) {
          timer = readSlowly(res, take);
        } else {
          res.on('data', take);
        }
        res.on('end', () => {
          clearInterval(timer);
          if (slow) agent.destroy();
          if (res.statusCode !== 200) return reject(new Error(`${urlPath}: HTTP ${res.statusCode}`));
          resolve({
            ms: ms(),
            headersMs,
            firstByteMs: firstByteMs ?? ms(),
            bytes,
            chunked: res.headers['transfer-encoding'] === 'chunked',
            body: keepBody ? Buffer.concat(parts).toString('utf8') : undefined,
          });
        });
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

// A request timed by the server's CPU and the client's clock.
async function timed(server, urlPath, options) {
  const before = (await server.ask('cpu')).cpu;
  const result = await get(server, urlPath, options);
  const after = (await server.ask('cpu')).cpu;
  return { ...result, cpuMs: (after.user - before.user + after.system - before.system) / 1000 };
}

// `n` requests in a row; server CPU per request (µs) and the client's median latency (ms).
async function batch(server, urlPath, n) {
  const before = (await server.ask('cpu')).cpu;
  const latencies = [];
  for (let i = 0; i < n; i++) latencies.push((await get(server, urlPath)).ms);
  const after = (await server.ask('cpu')).cpu;
  return { cpuUs: (after.user - before.user + after.system - before.system) / n, medianMs: median(latencies) };
}

// A debug=2 dump with the server's memory watched from both sides.
async function dump(server, slow) {
  await server.ask('sample-start');
  const watch = rssWatch(server.pid);
  const result = await timed(server, '/debug/pprof/tasks?debug=2', { slow });
  const end = watch.stop();
  const watched = { rssRise: end.peakRss - watch.startRss, samples: end.samples, hwmReset: watch.hwmReset };
  const { sample } = await server.ask('sample-stop');
  const { body, ...rest } = result;
  // RSS from /proc (the parent's samples and VmHWM), the rest from the server's own samples.
  return { ...rest, ...sample, serverSampledRssRise: sample.rssRise, rssRise: watched.rssRise, rssSamples: watched.samples, hwmReset: watched.hwmReset };
}

const metricValue = (text, name) => {
  const m = text.match(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm'));
  return m ? Number(m[1]) : undefined;
};

const sumMetric = (text, name) =>
  [...text.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'gm'))].reduce((n, m) => n + Number(m[1]), 0);

async function measureMode(mode, settings) {
  const server = await startServer(mode, settings.tasks);
  try {
    const row = {
      mode,
      promises: server.ready.promises,
      timers: server.ready.timers,
      createMs: server.ready.createMs,
      createCpuUs: server.ready.createCpuUs,
      baseHeapUsed: server.ready.baseMemory.heapUsed,
      afterCreateHeapUsed: server.ready.afterCreateMemory.heapUsed,
      afterCreateRss: server.ready.afterCreateMemory.rss,
    };
    if (mode === 'none') return row;

    // tasks?debug=1 right after the tasks were made: nothing has read them yet.
    row.pendingBeforeFirst = (await server.ask('pending')).pending;
    const first = await timed(server, '/debug/pprof/tasks?debug=1', { keepBody: true });
    row.debug1First = { ms: first.ms, cpuMs: first.cpuMs, bytes: first.bytes };
    row.debug1Header = first.body.split('\n', 1)[0];
    row.debug1Groups = (first.body.match(/^\d+ @ /gm) ?? []).length;
    row.debug1LabelledGroups = (first.body.match(/^\d+ @ .*\{.*\}$/gm) ?? []).length;
    row.debug1Body = first.body;
    const later = [];
    for (let i = 0; i < settings.repeats; i++) later.push(await timed(server, '/debug/pprof/tasks?debug=1'));
    row.debug1Later = { ms: median(later.map((r) => r.ms)), cpuMs: median(later.map((r) => r.cpuMs)), calls: later.map((r) => ({ ms: r.ms, cpuMs: r.cpuMs })) };

    // /debug/metrics, and a trivial endpoint for what HTTP alone costs.
    const metricsText = (await get(server, '/debug/metrics', { keepBody: true })).body;
    row.trackerRecords = metricValue(metricsText, 'taskprof_tracker_records');
    row.metricsTasks = sumMetric(metricsText, 'taskprof_tasks');
    for (let i = 0; i < 50; i++) await get(server, '/debug/metrics');
    for (let i = 0; i < 50; i++) await get(server, '/debug/pprof/cmdline');
    const metrics = [];
    const trivial = [];
    for (let i = 0; i < settings.repeats; i++) {
      metrics.push(await batch(server, '/debug/metrics', settings.metricsRequests));
      trivial.push(await batch(server, '/debug/pprof/cmdline', settings.metricsRequests));
    }
    row.metrics = { cpuUs: median(metrics.map((b) => b.cpuUs)), medianMs: median(metrics.map((b) => b.medianMs)), batches: metrics };
    row.trivial = { cpuUs: median(trivial.map((b) => b.cpuUs)), medianMs: median(trivial.map((b) => b.medianMs)), batches: trivial };

    // tasks?debug=2, fast client; then, in `full` mode, one slow client.
    const dumps = [];
    for (let i = 0; i < settings.dumpRepeats; i++) dumps.push(await dump(server, false));
    row.debug2 = { ...medianOf(dumps), chunked: dumps.every((d) => d.chunked), dumps };
    if (mode === 'full' && settings.slowDump) row.debug2Slow = await dump(server, true);

    const end = (await server.ask('gc')).memory;
    row.endHeapUsed = end.heapUsed;
    row.endRss = end.rss;
    row.endTrackerRecords = metricValue((await get(server, '/debug/metrics', { keepBody: true })).body, 'taskprof_tracker_records');
    return row;
  } finally {
    await server.stop();
  }
}

// `full` only: a fresh server whose background pass formats every stack before the first listing.
async function measureCaughtUp(mode, settings, flags) {
  const server = await startServer(mode, settings.tasks, flags);
  try {
    await server.ask('lag-start');
    const started = Date.now();
    const trace = [];
    let pending = (await server.ask('pending')).pending;
    trace.push([0, pending]);
    while (pending > 0 && Date.now() - started < settings.caughtUpLimitMs) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      pending = (await server.ask('pending')).pending;
      trace.push([Date.now() - started, pending]);
    }
    const waitedMs = Date.now() - started;
    const lag = await server.ask('lag-stop');
    // One more second, so that no pass runs during the call.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const first = await timed(server, '/debug/pprof/tasks?debug=1');
    const later = [];
    for (let i = 0; i < settings.repeats; i++) later.push(await timed(server, '/debug/pprof/tasks?debug=1'));
    return {
      mode,
      flags,
      longestHoldMs: lag.maxGapMs,
      longestHoldAtMs: lag.atMs,
      initialPending: trace[0][1],
      pendingLeft: pending,
      waitedMs,
      first: { ms: first.ms, cpuMs: first.cpuMs },
      later: { ms: median(later.map((r) => r.ms)), cpuMs: median(later.map((r) => r.cpuMs)) },
      trace,
    };
  } finally {
    await server.stop();
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      tasks: { type: 'string', default: '100000' },
      modes: { type: 'string', default: 'full,sampled,counts' },
      rounds: { type: 'string', default: '3' },
      'metrics-requests': { type: 'string', default: '200' },
      repeats: { type: 'string', default: '5' },
      'dump-repeats': { type: 'string', default: '3' },
      'no-caught-up': { type: 'boolean', default: false },
      'no-slow-dump': { type: 'boolean', default: false },
      timeout: { type: 'string', default: '600' },
    },
  });
  const settings = {
    tasks: Number(values.tasks),
    rounds: Number(values.rounds),
    metricsRequests: Number(values['metrics-requests']),
    repeats: Number(values.repeats),
    dumpRepeats: Number(values['dump-repeats']),
    slowDump: !values['no-slow-dump'],
    caughtUpLimitMs: 120_000,
  };
  const modes = values.modes.split(',');
  // Watchdog: never leave servers behind, even if something hangs.
  setTimeout(() => {
    console.error(`listing bench: watchdog after ${values.timeout} s; killing the servers`);
    killChildren();
    process.exit(2);
  }, Number(values.timeout) * 1000).unref();
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => { killChildren(); process.exit(130); });
  process.on('exit', killChildren);
  pinToCpu(process.pid, 1);

  const startedAt = Date.now();
  const build = provenance();
  // Rounds of fresh processes, modes alternating within each.
  const perRound = [];
  for (let round = 0; round < settings.rounds; round++) {
    const none = await measureMode('none', settings);
    console.error(`round ${round + 1} none: heapUsed ${none.baseHeapUsed} -> ${none.afterCreateHeapUsed}`);
    const rows = {};
    for (const mode of modes) {
      const row = await measureMode(mode, settings);
      // Memory per task and per record, against this round's `none`.
      const noneGrowth = none.afterCreateHeapUsed - none.baseHeapUsed;
      const growth = row.afterCreateHeapUsed - row.baseHeapUsed - noneGrowth;
      const growthAtEnd = row.endHeapUsed - row.baseHeapUsed - noneGrowth;
      row.memory = {
        perTaskVsNone: (row.afterCreateHeapUsed - none.afterCreateHeapUsed) / settings.tasks,
        perTaskGrowth: growth / settings.tasks,
        perRecordGrowth: row.trackerRecords > 0 ? growth / row.trackerRecords : undefined,
        perTaskVsNoneAtEnd: (row.endHeapUsed - none.afterCreateHeapUsed) / settings.tasks,
        perTaskGrowthAtEnd: growthAtEnd / settings.tasks,
        perRecordGrowthAtEnd: row.endTrackerRecords > 0 ? growthAtEnd / row.endTrackerRecords : undefined,
        fixedHeap: row.baseHeapUsed - none.baseHeapUsed,
      };
      console.error(
        `round ${round + 1} ${mode}: debug=1 first ${row.debug1First.ms.toFixed(1)} ms, later ${row.debug1Later.ms.toFixed(1)} ms; metrics ${row.metrics.cpuUs.toFixed(0)} µs; debug=2 ${row.debug2.ms.toFixed(0)} ms ${row.debug2.bytes} B; ${row.memory.perTaskGrowth.toFixed(0)} B/task`,
      );
      rows[mode] = row;
    }
    perRound.push({ none, rows });
  }
  const none = medianOf(perRound.map((r) => r.none));
  const rows = modes.map((mode) => ({
    ...medianOf(perRound.map((r) => r.rows[mode])),
    debug2Slow: perRound[0].rows[mode].debug2Slow,
    debug1Body: perRound[0].rows[mode].debug1Body,
  }));
  const caughtUp = {};
  if (modes.includes('full') && !values['no-caught-up']) {
    for (const [kind, flags] of [['cold', []], ['warm', ['warm']], ['noleak', ['noleak']]]) {
      const c = await measureCaughtUp('full', settings, flags);
      console.error(`caught up (${kind}): ${c.initialPending} raw, ${c.pendingLeft} left after ${c.waitedMs} ms, longest hold ${c.longestHoldMs.toFixed(0)} ms at ${c.longestHoldAtMs.toFixed(0)} ms; first ${c.first.ms.toFixed(1)} ms, later ${c.later.ms.toFixed(1)} ms`);
      caughtUp[kind] = c;
    }
  }

  const buildAtEnd = provenance();
  const rebuilt = buildAtEnd.distBuilt !== build.distBuilt || buildAtEnd.commit !== build.commit;
  const date = new Date().toISOString().slice(0, 10);
  const n = settings.tasks.toLocaleString('en-US');
  const ms = (v) => (v === undefined ? '' : (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) + ' ms');
  const us = (v) => v.toFixed(0) + ' µs';
  const mb = (v) => (v / 1024 / 1024).toFixed(1) + ' MiB';
  const bytes = (v) => (v === undefined ? '' : v.toFixed(0) + ' B');
  const col = (f) => rows.map((r) => f(r)).join(' | ');
  let out = `Listings at ${n} live tasks (${none.promises.toLocaleString('en-US')} pending promises at 10 lines, 3 of them labelled; ${none.timers.toLocaleString('en-US')} 1-hour timers at 2 lines), ${date}, Node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model.trim()}${canPin ? ', server pinned to CPU 0 and client to CPU 1' : ''}.\n`;
  out += `Commit ${build.commit}, dist/ built ${build.distBuilt}${rebuilt ? ` — WARNING: dist/ was rebuilt during the run (now ${buildAtEnd.commit}, ${buildAtEnd.distBuilt}); the figures may mix versions` : ''}.\n`;
  out += `Medians over ${settings.rounds} rounds of fresh server processes; within each, medians of ${settings.repeats} batches of ${settings.metricsRequests} metrics requests, of ${settings.repeats} later debug=1 calls and of ${settings.dumpRepeats} debug=2 dumps. Server CPU is process.cpuUsage() in the server over the request(s); wall is the client's.\n\n`;
  out += `| | ${col((r) => `\`${r.mode}\``)} | goal |\n|---|${rows.map(() => '---:|').join('')}---|\n`;
  out += `| making the tasks (server CPU) | ${col((r) => ms(r.createCpuUs / 1000))} | |\n`;
  out += `| tracker records (taskprof_tracker_records) | ${col((r) => r.trackerRecords)} | |\n`;
  out += `| taskprof_tasks (sum over types) | ${col((r) => r.metricsTasks)} | |\n`;
  out += `| /debug/metrics, server CPU per request | ${col((r) => us(r.metrics.cpuUs))} | < 1 ms |\n`;
  out += `| /debug/metrics, client latency | ${col((r) => ms(r.metrics.medianMs))} | |\n`;
  out += `| (trivial request, cmdline, server CPU) | ${col((r) => us(r.trivial.cpuUs))} | |\n`;
  out += `| debug=1, first call right after the tasks are made: wall / server CPU | ${col((r) => `${ms(r.debug1First.ms)} / ${ms(r.debug1First.cpuMs)}`)} | < 100 ms |\n`;
  out += `| (creation stacks still raw at that call) | ${col((r) => r.pendingBeforeFirst)} | |\n`;
  out += `| debug=1, later calls: wall / server CPU | ${col((r) => `${ms(r.debug1Later.ms)} / ${ms(r.debug1Later.cpuMs)}`)} | < 100 ms |\n`;
  const cuCell = (r, c) => (r.mode === 'full' && c ? `${ms(c.first.ms)} / ${ms(c.first.cpuMs)}` : 'n/a');
  out += `| debug=1, first call once the background pass formatted every stack: wall / server CPU | ${col((r) => cuCell(r, caughtUp.cold))} | < 100 ms |\n`;
  out += `| same, listing code warmed first (JIT) | ${col((r) => cuCell(r, caughtUp.warm))} | < 100 ms |\n`;
  out += `| same, without the growth detector (leakDetection: false) | ${col((r) => cuCell(r, caughtUp.noleak))} | < 100 ms |\n`;
  out += `| debug=1 size, groups (labelled) | ${col((r) => `${(r.debug1First.bytes / 1024).toFixed(1)} KiB, ${r.debug1Groups} (${r.debug1LabelledGroups})`)} | |\n`;
  out += `| debug=2, total wall / server CPU | ${col((r) => `${ms(r.debug2.ms)} / ${ms(r.debug2.cpuMs)}`)} | < 1 s |\n`;
  out += `| debug=2, time to first byte | ${col((r) => ms(r.debug2.firstByteMs))} | |\n`;
  out += `| debug=2, response size; chunked | ${col((r) => `${mb(r.debug2.bytes)}; ${r.debug2.chunked ? 'yes' : 'no'}`)} | |\n`;
  out += `| debug=2, peak rise during the dump: RSS (from /proc) / heapTotal / heapUsed / external (Buffers included) | ${col((r) => `${mb(r.debug2.rssRise)} / ${mb(r.debug2.heapTotalRise)} / ${mb(r.debug2.heapUsedRise)} / ${mb(r.debug2.externalRise)}`)} | ≪ size |\n`;
  out += `| debug=2, longest the event loop was held (server's 5 ms sampler; samples taken) | ${col((r) => `${ms(r.debug2.maxGapMs)} (${r.debug2.samples})`)} | |\n`;
  const slowCell = (r) => {
    const s = r.debug2Slow;
    if (!s) return 'n/a';
    return `${(s.ms / 1000).toFixed(1)} s at ${(s.bytes / 1024 / 1024 / (s.ms / 1000)).toFixed(1)} MiB/s; ${mb(s.rssRise)} / ${mb(s.heapTotalRise)} / ${mb(s.heapUsedRise)} / ${mb(s.externalRise)}; longest hold ${ms(s.maxGapMs)} (${s.samples} samples)`;
  };
  out += `| debug=2, slow client (64 KB every 10 ms, first round): time; peak rise RSS / heapTotal / heapUsed / external (Buffers included); longest hold | ${col(slowCell)} | ≪ size |\n`;
  out += `| heap per task vs \`none\` (includes taskprof's fixed heap), right after creation | ${col((r) => bytes(r.memory.perTaskVsNone))} | |\n`;
  out += `| heap per task: growth from making the tasks beyond \`none\`'s, right after creation | ${col((r) => bytes(r.memory.perTaskGrowth))} | |\n`;
  out += `| heap per record, same | ${col((r) => bytes(r.memory.perRecordGrowth))} | |\n`;
  out += `| heap per task: same, after the listings (full: stacks formatted) | ${col((r) => bytes(r.memory.perTaskGrowthAtEnd))} | |\n`;
  out += `| heap per record, same | ${col((r) => bytes(r.memory.perRecordGrowthAtEnd))} | |\n`;
  out += `| taskprof's fixed heap (before any task, vs \`none\`) | ${col((r) => mb(r.memory.fixedHeap))} | |\n`;
  out += `\n\`none\`: heapUsed after gc ${mb(none.baseHeapUsed)} before the tasks, ${mb(none.afterCreateHeapUsed)} with them (${((none.afterCreateHeapUsed - none.baseHeapUsed) / settings.tasks).toFixed(0)} B per task for the promises, timers and the array holding them).\n`;
  for (const [kind, c] of Object.entries(caughtUp)) {
    const steps = c.trace.filter((_, i) => i % 5 === 0 || i === c.trace.length - 1).map(([t, p]) => `${(t / 1000).toFixed(0)} s: ${p}`).join(', ');
    const what = { cold: '', warm: ', listing code warmed first (30 listings of 1,600 other tasks)', noleak: ', leakDetection: false' }[kind];
    out += `\n\`full\`, fresh server${what}: creation stacks still raw ${steps}; longest event-loop hold while waiting ${ms(c.longestHoldMs)}, ${(c.longestHoldAtMs / 1000).toFixed(1)} s into the wait; first debug=1 then ${ms(c.first.ms)} wall, ${ms(c.first.cpuMs)} server CPU; later calls ${ms(c.later.ms)} / ${ms(c.later.cpuMs)}.\n`;
  }
  const sample = rows.find((r) => r.mode === 'full') ?? rows[0];
  if (sample) out += `\nThe \`${sample.mode}\` debug=1 listing (first round, cut):\n\n\`\`\`\n${sample.debug1Body.split('\n').slice(0, 24).join('\n')}\n...\n\`\`\`\n`;
  out += `\nRun time ${((Date.now() - startedAt) / 1000).toFixed(0)} s. Raw: bench/results/listing.json.\n`;
  console.log(out);
  mkdirSync(path.join(here, 'results'), { recursive: true });
  writeFileSync(path.join(here, 'results', 'listing.md'), out);
  writeFileSync(
    path.join(here, 'results', 'listing.json'),
    JSON.stringify({ date, node: process.version, build, rebuiltDuringRun: rebuilt, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model.trim(), pinned: canPin, settings, medians: { none, rows }, caughtUp, perRound }, null, 2) + '\n',
  );
}

if (process.argv[2] === '--child') {
  await child(process.argv[3], Number(process.argv[4]), (process.argv[5] ?? '').split(','));
} else {
  try {
    await main();
  } catch (error) {
    console.error(error);
    killChildren();
    process.exit(1);
  }
}
