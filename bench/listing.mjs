// Listings at 100,000 live tasks, per tracking mode: what /debug/metrics,
// tasks?debug=1 and tasks?debug=2 cost, and the memory per tracked task.
//
//   npm run build && node bench/listing.mjs [--tasks 100000] [--modes full,sampled,counts] [--rounds 3]
//       [--metrics-requests 200] [--repeats 5] [--dump-repeats 3] [--no-slow-dump] [--timeout SECONDS]
//
// About a minute and a half with the defaults.
//
// Method, and why:
// - --rounds rounds; in each, one fresh server process per tracking mode
//   (node --expose-gc, a plain node:http server with taskprof/http mounted,
//   tracking set to the mode, other options left at their defaults), plus
//   `none`: the same server without taskprof, for the memory baseline. Every
//   figure is the median over rounds of the figure of each round.
// - The server makes the tasks the app holds: pending promises at 10 distinct
//   source lines (3 of them inside withLabels, so labels show in listings),
//   and 1-hour timers at 2 lines; 90% promises, 10% timers by default, all
//   in one synchronous burst.
// - Stacks are formatted when captured: `full` captures one for every task,
//   `counts` none, `sampled` (the default) within its stack budget
//   (stackBudget 0.01: 1% of CPU time, 200 ms banked at start), so it samples
//   a burst of 100,000 tasks. From the listing's JSON (debug=1&format=json)
//   and the metrics: how many tasks made got a stack (records at the 12 sites),
//   how many live tasks have none (taskprof_tasks_without_stack; withoutStack),
//   how many groups are estimated, and how far the listed count at each site
//   is from the tasks made there.
// - CPU is the server's own (process.cpuUsage(), user + system, read over IPC
//   before and after), not requests per second: the parent shares a 2-core
//   machine with the server. The server is pinned to CPU 0 and the parent to
//   CPU 1 (taskset, where present). Client wall times are given too.
// - /debug/metrics: --repeats batches of --metrics-requests requests one after
//   another over a keep-alive connection; median per-request CPU over batches.
//   The same for a trivial endpoint (cmdline) shows what HTTP alone costs.
// - tasks?debug=1: the first call right after the tasks are made (nothing has
//   read the records yet, and the listing code is not yet optimized by the
//   JIT), then --repeats later calls (median).
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
//   (taskprof_tracker_records in /debug/metrics: promises with a stack, and
//   every live timer and handle), which leaves the fixed heap out. Taken
//   right after the tasks are made and again after the listings.
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

async function child(mode, count) {
  // Never outlive the parent.
  process.on('disconnect', () => process.exit(0));
  const tracked = mode !== 'none';
  let withLabels = (labels, fn) => fn();
  let own = (fn) => fn();
  let server;
  const app = (req, res) => res.end('ok\n');
  if (tracked) {
    const { default: taskprof } = await import('taskprof/http');
    ({ withLabels } = await import('taskprof'));
    const { runWithLabels, ownWork } = await import('../dist/src/labels/labels.js');
    own = (fn) => runWithLabels(ownWork, fn);
    const debug = taskprof({ tracking: mode });
    server = http.createServer((req, res) => debug(req, res, () => app(req, res)));
  } else {
    server = http.createServer(app);
  }
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;

  const gcHeap = async () => {
    for (let i = 0; i < 3; i++) { global.gc(); await new Promise((resolve) => setImmediate(resolve)); }
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
  for (const make of [loadUsers, loadOrders, fetchInventory, queryPrices, waitForLock, readConfig, callBackend]) make(per);
  withLabels({ job: 'report', tenant: 'acme' }, () => renderReport(per));
  withLabels({ job: 'mail' }, () => sendMail(per));
  withLabels({ job: 'queue', queue: 'orders' }, () => pollQueue(promises - 9 * per));
  scheduleRetry(Math.floor(timers / 2));
  withLabels({ job: 'sessions' }, () => scheduleExpiry(timers - Math.floor(timers / 2)));
  const createMs = Number(process.hrtime.bigint() - created) / 1e6;
  const createCpu = process.cpuUsage(createdCpu);
  const afterCreateMemory = await gcHeap();

  // Memory sampler for the dump: every 5 ms, peaks and the longest gap between samples.
  const kinds = ['rss', 'heapUsed', 'heapTotal', 'external'];
  let sampler;
  const startSampler = () => {
    const state = { base: process.memoryUsage(), peak: process.memoryUsage(), samples: 0, maxGapMs: 0, last: performance.now() };
    state.timer = own(() => setInterval(() => {
      const m = process.memoryUsage();
      const now = performance.now();
      state.maxGapMs = Math.max(state.maxGapMs, now - state.last);
      state.last = now;
      state.samples++;
      for (const k of kinds) state.peak[k] = Math.max(state.peak[k], m[k]);
    }, 5));
    sampler = state;
  };
  const stopSampler = () => {
    const s = sampler;
    clearInterval(s.timer);
    // Until the end of the dump, not only until the last sample.
    const result = { samples: s.samples, maxGapMs: Math.max(s.maxGapMs, performance.now() - s.last) };
    for (const k of kinds) result[k + 'Rise'] = s.peak[k] - s.base[k];
    return result;
  };

  // Run as taskprof's own work, so that the handler's promise is not one of the app's tasks.
  process.on('message', (message) => own(() => onMessage(message)));
  async function onMessage(message) {
    const reply = (data) => process.send({ id: message.id, ...data });
    switch (message.type) {
      case 'cpu':
        return reply({ cpu: process.cpuUsage() });
      case 'gc':
        return reply({ memory: await gcHeap() });
      case 'sample-start':
        await gcHeap();
        startSampler();
        return reply({});
      case 'sample-stop':
        return reply({ sample: stopSampler() });
      case 'exit':
        process.exit(0);
    }
  }
  process.send({ type: 'ready', port, promises, timers, createMs, createCpuUs: createCpu.user + createCpu.system, baseMemory, afterCreateMemory });
}

// ---------------------------------------------------------------------------
// Parent.

const children = new Set();

async function startServer(mode, count) {
  const server = await forkServer({
    script: fileURLToPath(import.meta.url),
    args: ['--child', mode, String(count)],
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
        const timer = slow ? readSlowly(res, take) : undefined;
        if (!slow) res.on('data', take);
        res.on('end', () => {
          clearInterval(timer);
          if (slow) agent.destroy();
          if (res.statusCode !== 200) return reject(new Error(`${urlPath}: HTTP ${res.statusCode}`));
          const body = keepBody ? Buffer.concat(parts).toString('utf8') : undefined;
          resolve({ ms: ms(), headersMs, firstByteMs: firstByteMs ?? ms(), bytes, chunked: res.headers['transfer-encoding'] === 'chunked', body });
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
  const { sample } = await server.ask('sample-stop');
  const { body, ...rest } = result;
  // RSS from /proc (the parent's samples and VmHWM), the rest from the server's own samples.
  return { ...rest, ...sample, serverSampledRssRise: sample.rssRise, rssRise: end.peakRss - watch.startRss, rssSamples: end.samples, hwmReset: watch.hwmReset };
}

const metricValue = (text, name) => {
  const m = text.match(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm'));
  return m ? Number(m[1]) : undefined;
};

const metricByType = (text, name) =>
  Object.fromEntries([...text.matchAll(new RegExp(`^${name}\\{type="([^"]*)"\\} (\\S+)$`, 'gm'))].map((m) => [m[1], Number(m[2])]));
const sumMetric = (text, name) => Object.values(metricByType(text, name)).reduce((n, v) => n + v, 0);

// The creation sites the server's tasks are made at (child()), to tell how many a listing shows.
const sites = ['loadUsers', 'loadOrders', 'fetchInventory', 'queryPrices', 'waitForLock', 'readConfig', 'callBackend', 'renderReport', 'sendMail', 'pollQueue', 'scheduleRetry', 'scheduleExpiry'];

// Tasks made that got a creation stack, by type (the records of the groups at
// the bench's sites in the listing JSON); live tasks without one (metrics and
// listing); and how far the listed count at a site is from the tasks made
// there (estimates).
function stackFigures(listing, metricsText, promises, timers) {
  const atSite = (g) => sites.filter((site) => g.stack.some((f) => f.functionName === site));
  const made = listing.groups.filter((g) => atSite(g).length > 0);
  const recorded = (type) => made.filter((g) => g.type === type).reduce((n, g) => n + g.recorded, 0);
  const per = Math.floor(promises / 10);
  const truth = [...Array(9).fill(per), promises - 9 * per, Math.floor(timers / 2), timers - Math.floor(timers / 2)];
  const listed = sites.map((site) => made.filter((g) => atSite(g).includes(site)).reduce((n, g) => n + g.count, 0));
  return {
    // The largest |listed - made| over the sites, and the sum of the excesses (tasks listed at a wrong site).
    siteError: Math.max(...listed.map((n, i) => Math.abs(n - truth[i]))),
    misplaced: listed.reduce((sum, n, i) => sum + Math.max(0, n - truth[i]), 0),
    promisesWithStack: recorded('Promise'),
    timersWithStack: recorded('Timeout'),
    metricsWithoutStack: sumMetric(metricsText, 'taskprof_tasks_without_stack'),
    listingTotal: listing.total,
    // Tasks the listing could not place in a group with a stack, even by estimate.
    listingWithoutStack: listing.withoutStack,
    estimatedGroups: listing.estimatedGroups,
    dropped: listing.dropped,
    groups: listing.groups.length,
    labelledGroups: listing.groups.filter((g) => Object.keys(g.labels ?? {}).length > 0).length,
    sitesShown: new Set(made.flatMap(atSite)).size,
  };
}

async function measureMode(mode, settings) {
  const server = await startServer(mode, settings.tasks);
  try {
    const { promises, timers, createMs, createCpuUs, baseMemory, afterCreateMemory } = server.ready;
    const row = { mode, promises, timers, createMs, createCpuUs, baseHeapUsed: baseMemory.heapUsed, afterCreateHeapUsed: afterCreateMemory.heapUsed, afterCreateRss: afterCreateMemory.rss };
    if (mode === 'none') return row;

    // tasks?debug=1 right after the tasks were made: nothing has read them yet.
    const first = await timed(server, '/debug/pprof/tasks?debug=1', { keepBody: true });
    row.debug1First = { ms: first.ms, cpuMs: first.cpuMs, bytes: first.bytes };
    row.debug1Header = first.body.split('\n', 1)[0];
    row.debug1Body = first.body;
    const later = [];
    for (let i = 0; i < settings.repeats; i++) later.push(await timed(server, '/debug/pprof/tasks?debug=1'));
    row.debug1Later = { ms: median(later.map((r) => r.ms)), cpuMs: median(later.map((r) => r.cpuMs)), calls: later.map((r) => ({ ms: r.ms, cpuMs: r.cpuMs })) };

    // The same listing as JSON, and the metrics: how many tasks got a stack.
    const listing = JSON.parse((await get(server, '/debug/pprof/tasks?debug=1&format=json', { keepBody: true })).body);
    const metricsText = (await get(server, '/debug/metrics', { keepBody: true })).body;
    row.trackerRecords = metricValue(metricsText, 'taskprof_tracker_records');
    row.metricsTasks = sumMetric(metricsText, 'taskprof_tasks');
    row.stacks = stackFigures(listing, metricsText, row.promises, row.timers);
    for (let i = 0; i < 50; i++) await get(server, '/debug/metrics');
    for (let i = 0; i < 50; i++) await get(server, '/debug/pprof/cmdline');
    const metrics = [];
    const trivial = [];
    for (let i = 0; i < settings.repeats; i++) {
      metrics.push(await batch(server, '/debug/metrics', settings.metricsRequests));
      trivial.push(await batch(server, '/debug/pprof/cmdline', settings.metricsRequests));
    }
    const summary = (batches) => ({ cpuUs: median(batches.map((b) => b.cpuUs)), medianMs: median(batches.map((b) => b.medianMs)), batches });
    row.metrics = summary(metrics);
    row.trivial = summary(trivial);

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

async function main() {
  const { values } = parseArgs({
    options: {
      tasks: { type: 'string', default: '100000' }, modes: { type: 'string', default: 'full,sampled,counts' },
      rounds: { type: 'string', default: '3' }, 'metrics-requests': { type: 'string', default: '200' },
      repeats: { type: 'string', default: '5' }, 'dump-repeats': { type: 'string', default: '3' },
      'no-slow-dump': { type: 'boolean', default: false }, timeout: { type: 'string', default: '600' },
    },
  });
  const settings = { tasks: Number(values.tasks), rounds: Number(values.rounds), metricsRequests: Number(values['metrics-requests']),
    repeats: Number(values.repeats), dumpRepeats: Number(values['dump-repeats']), slowDump: !values['no-slow-dump'] };
  const modes = values.modes.split(',');
  // Watchdog: never leave servers behind, even if something hangs.
  const watchdog = () => { console.error(`listing bench: watchdog after ${values.timeout} s; killing the servers`); killChildren(); process.exit(2); };
  setTimeout(watchdog, Number(values.timeout) * 1000).unref();
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
      console.error(`round ${round + 1} ${mode}: ${row.stacks.promisesWithStack + row.stacks.timersWithStack} tasks with a stack; debug=1 first ${row.debug1First.ms.toFixed(1)} ms, later ${row.debug1Later.ms.toFixed(1)} ms; metrics ${row.metrics.cpuUs.toFixed(0)} µs; debug=2 ${row.debug2.ms.toFixed(0)} ms ${row.debug2.bytes} B; ${row.memory.perTaskGrowth.toFixed(0)} B/task`);
      rows[mode] = row;
    }
    perRound.push({ none, rows });
  }
  const none = medianOf(perRound.map((r) => r.none));
  const rows = modes.map((mode) => ({ ...medianOf(perRound.map((r) => r.rows[mode])), debug2Slow: perRound[0].rows[mode].debug2Slow, debug1Body: perRound[0].rows[mode].debug1Body }));
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
  const of = (v, total) => `${v.toLocaleString('en-US')} of ${total.toLocaleString('en-US')}`;
  out += `| tasks made that got a creation stack: promises / timers (records at the ${sites.length} sites in the listing JSON) | ${col((r) => `${of(r.stacks.promisesWithStack, r.promises)} / ${of(r.stacks.timersWithStack, r.timers)}`)} | |\n`;
  out += `| live tasks without a stack (taskprof_tasks_without_stack, sum over types) | ${col((r) => r.stacks.metricsWithoutStack)} | |\n`;
  out += `| listing JSON: total; withoutStack (not placed in a group with a stack, even by estimate); estimated groups; dropped | ${col((r) => `${r.stacks.listingTotal}; ${r.stacks.listingWithoutStack}; ${r.stacks.estimatedGroups}; ${r.stacks.dropped}`)} | |\n`;
  out += `| creation sites (of ${sites.length}) with a group in debug=1; tasks listed beyond those made at a site (sum); largest gap at one site | ${col((r) => (r.mode === 'counts' ? 'n/a (no stacks)' : `${r.stacks.sitesShown}; ${r.stacks.misplaced}; ${r.stacks.siteError}`))} | |\n`;
  out += `| /debug/metrics, server CPU per request | ${col((r) => us(r.metrics.cpuUs))} | < 1 ms |\n`;
  out += `| /debug/metrics, client latency | ${col((r) => ms(r.metrics.medianMs))} | |\n`;
  out += `| (trivial request, cmdline, server CPU) | ${col((r) => us(r.trivial.cpuUs))} | |\n`;
  out += `| debug=1, first call right after the tasks are made: wall / server CPU | ${col((r) => `${ms(r.debug1First.ms)} / ${ms(r.debug1First.cpuMs)}`)} | < 100 ms |\n`;
  out += `| debug=1, later calls: wall / server CPU | ${col((r) => `${ms(r.debug1Later.ms)} / ${ms(r.debug1Later.cpuMs)}`)} | < 100 ms |\n`;
  out += `| debug=1 size, groups (labelled) | ${col((r) => `${(r.debug1First.bytes / 1024).toFixed(1)} KiB, ${r.stacks.groups} (${r.stacks.labelledGroups})`)} | |\n`;
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
  out += `| heap growth from making the tasks beyond \`none\`'s, right after creation: per task / per record | ${col((r) => `${bytes(r.memory.perTaskGrowth)} / ${bytes(r.memory.perRecordGrowth)}`)} | |\n`;
  out += `| same, after the listings: per task / per record | ${col((r) => `${bytes(r.memory.perTaskGrowthAtEnd)} / ${bytes(r.memory.perRecordGrowthAtEnd)}`)} | |\n`;
  out += `| taskprof's fixed heap (before any task, vs \`none\`) | ${col((r) => mb(r.memory.fixedHeap))} | |\n`;
  out += `\n\`none\`: heapUsed after gc ${mb(none.baseHeapUsed)} before the tasks, ${mb(none.afterCreateHeapUsed)} with them (${((none.afterCreateHeapUsed - none.baseHeapUsed) / settings.tasks).toFixed(0)} B per task for the promises, timers and the array holding them).\n`;
  const sampled = rows.find((r) => r.mode === 'sampled');
  if (sampled) {
    const s = sampled.stacks;
    out += `\n\`sampled\` (the default mode; stackBudget 0.01), the tasks made in one burst: ${of(s.promisesWithStack + s.timersWithStack, settings.tasks)} tasks made got a creation stack (${of(s.promisesWithStack, sampled.promises)} promises, ${of(s.timersWithStack, sampled.timers)} timers; ${s.metricsWithoutStack} live tasks without one in taskprof_tasks_without_stack); the listing JSON counts ${s.listingTotal} live tasks, ${s.listingWithoutStack} of them not placed in a group with a stack, and ${s.estimatedGroups} estimated groups; ${s.sitesShown} of the ${sites.length} creation sites have a group, and ${s.misplaced} tasks are listed at sites beyond the tasks made there.\n`;
  }
  const sample = rows.find((r) => r.mode === 'full') ?? rows[0];
  if (sample) out += `\nThe \`${sample.mode}\` debug=1 listing (first round, cut):\n\n\`\`\`\n${sample.debug1Body.split('\n').slice(0, 24).join('\n')}\n...\n\`\`\`\n`;
  // `sampled`: the header, and each group's line with its first frame.
  const lines = sampled?.debug1Body.split('\n') ?? [];
  if (sampled) out += `\nThe \`sampled\` debug=1 listing (first round), groups and their first frames:\n\n\`\`\`\n${lines.filter((line, i) => i === 0 || /^\d+ @ /.test(line) || (line.startsWith('#') && /^\d+ @ /.test(lines[i - 1]))).join('\n')}\n\`\`\`\n`;
  out += `\nRun time ${((Date.now() - startedAt) / 1000).toFixed(0)} s. Raw: bench/results/listing.json.\n`;
  console.log(out);
  mkdirSync(path.join(here, 'results'), { recursive: true });
  writeFileSync(path.join(here, 'results', 'listing.md'), out);
  writeFileSync(
    path.join(here, 'results', 'listing.json'),
    JSON.stringify({ date, node: process.version, build, rebuiltDuringRun: rebuilt, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model.trim(), pinned: canPin, settings, medians: { none, rows }, perRound }, null, 2) + '\n',
  );
}

if (process.argv[2] === '--child') {
  await child(process.argv[3], Number(process.argv[4]));
} else {
  try {
    await main();
  } catch (error) {
    console.error(error);
    killChildren();
    process.exit(1);
  }
}
