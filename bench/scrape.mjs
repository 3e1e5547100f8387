// Cost of one /debug/metrics scrape with many live tasks, per tracking mode.
//
//   npm run build && node bench/scrape.mjs [--tasks 100000] [--scrapes 400] [--modes full,sampled,counts]
//
// Each (mode, task count) runs in its own server process (taskprof's
// standalone listener on 127.0.0.1). The server creates the tasks (half
// pending promises held by the app, half 1-hour timers), then the parent
// scrapes /debug/metrics --scrapes times one after another and reads the
// server's CPU time (process.cpuUsage over IPC) before and after. Reported:
// the server's CPU time per scrape (parsing the request and writing the
// response included), and the median and 99th percentile latency seen by
// the client. The same with 0 tasks shows whether the cost grows with tasks;
// the same number of requests to a trivial endpoint (cmdline) shows how much
// of it is HTTP and request handling rather than the metrics themselves;
// and the collection alone (prom-client's registry.metrics() on taskprof's
// registry, 1,000 times in the server process) is timed by CPU too.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));

if (process.argv[2] === '--server') {
  const { listen } = await import('taskprof/http');
  const mode = process.argv[3];
  const count = Number(process.argv[4]);
  const server = await listen({ port: 0, tracking: mode });
  const held = [];
  globalThis.held = held; // the app holds its tasks: none may be collected
  // Made outside any taskprof scope, as an app's own leak would be.
  for (let i = 0; i < count / 2; i++) held.push(new Promise(() => {}));
  for (let i = 0; i < count / 2; i++) held.push(setTimeout(() => {}, 3_600_000));
  // Counts are exact when read, with nothing to catch up on; only let the
  // tracker's maintenance (every 100 ms) hand the promises still pending to
  // its FinalizationRegistry, a one-off cost of the burst, before the scrapes.
  await new Promise((resolve) => setTimeout(resolve, 500));
  // The collection alone (what grows with tasks if anything does), timed in
  // process: taskprof's own registry, in the scope its request handler runs in.
  const { ownRegistriesFor } = await import('../dist/src/metrics/metrics.js');
  const { runWithLabels, ownWork } = await import('../dist/src/labels/labels.js');
  const registry = ownRegistriesFor('taskprof_').text;
  process.on('message', async (message) => {
    if (message === 'collect') {
      const started = process.cpuUsage();
      await runWithLabels(ownWork, async () => {
        for (let i = 0; i < 1000; i++) await registry.metrics();
      });
      const used = process.cpuUsage(started);
      process.send({ collectUs: (used.user + used.system) / 1000 });
    }
    if (message === 'cpu') process.send({ cpu: process.cpuUsage() });
    if (message === 'exit') process.exit(0);
  });
  process.send({ port: server.address().port });
} else {
  const { values } = parseArgs({
    options: { tasks: { type: 'string', default: '100000' }, scrapes: { type: 'string', default: '400' }, modes: { type: 'string', default: 'full,sampled,counts' } },
  });
  const tasks = Number(values.tasks);
  const scrapes = Number(values.scrapes);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  const get = (port, path = '/debug/metrics') =>
    new Promise((resolve, reject) => {
      const started = process.hrtime.bigint();
      http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ body, ms: Number(process.hrtime.bigint() - started) / 1e6 }));
      }).on('error', reject);
    });

  async function measure(mode, count) {
    const child = fork(fileURLToPath(import.meta.url), ['--server', mode, String(count)], { execArgv: ['--max-old-space-size=4096'] });
    const [{ port }] = await once(child, 'message');
    const cpu = async () => {
      child.send('cpu');
      const [{ cpu }] = await once(child, 'message');
      return cpu.user + cpu.system;
    };
    let live = 0;
    for (let i = 0; i < 50; i++) live = (await get(port)).body; // warm-up
    const liveTasks = [...live.matchAll(/^taskprof_tasks\{type="(Promise|Timeout)"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[2]), 0);
    const before = await cpu();
    const latencies = [];
    for (let i = 0; i < scrapes; i++) latencies.push((await get(port)).ms);
    const cpuUs = ((await cpu()) - before) / scrapes;
    // The same number of requests to a trivial endpoint: what HTTP and taskprof's request handling cost alone.
    const baseBefore = await cpu();
    for (let i = 0; i < scrapes; i++) await get(port, '/debug/pprof/cmdline');
    const baselineUs = ((await cpu()) - baseBefore) / scrapes;
    child.send('collect');
    const [{ collectUs }] = await once(child, 'message');
    child.send('exit');
    await once(child, 'exit');
    latencies.sort((a, b) => a - b);
    return { mode, tasks: count, liveTasksReported: liveTasks, cpuUsPerScrape: cpuUs, baselineUs, collectUs, medianMs: latencies[latencies.length >> 1], p99Ms: latencies[Math.floor(latencies.length * 0.99)] };
  }

  const rows = [];
  for (const mode of values.modes.split(',')) {
    for (const count of [0, tasks]) {
      const row = await measure(mode, count);
      rows.push(row);
      console.error(JSON.stringify(row));
    }
  }
  agent.destroy();
  const date = new Date().toISOString().slice(0, 10);
  let table = `/debug/metrics scrape cost, ${date}, Node ${process.version}, ${scrapes} scrapes per row\n\n`;
  table += '| tracking | live tasks made | taskprof_tasks Promise+Timeout | server CPU per scrape | of which beyond a trivial request (cmdline) | collection alone (1,000 in process) | client latency median | p99 |\n|---|---:|---:|---:|---:|---:|---:|---:|\n';
  for (const r of rows) {
    table += `| ${r.mode} | ${r.tasks} | ${r.liveTasksReported} | ${r.cpuUsPerScrape.toFixed(0)} µs | ${(r.cpuUsPerScrape - r.baselineUs).toFixed(0)} µs | ${r.collectUs.toFixed(0)} µs | ${r.medianMs.toFixed(2)} ms | ${r.p99Ms.toFixed(2)} ms |\n`;
  }
  console.log(table);
  mkdirSync(path.join(here, 'results'), { recursive: true });
  writeFileSync(path.join(here, 'results', 'scrape.json'), JSON.stringify({ date, node: process.version, scrapes, rows }, null, 2) + '\n');
  writeFileSync(path.join(here, 'results', 'scrape.md'), table);
}
