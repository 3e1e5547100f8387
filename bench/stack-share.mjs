// What the default mode's stacks cost a saturated server, against what the
// stack budget counts for them. One server process (Express or Fastify
// hello, `sampled`), pinned to CPU 0 with the load generator on CPU 1 (8
// requests in flight over keep-alive); inside it the stack budget alternates
// between --budget and 0 every --phase seconds (startTracking), so both
// settings share one process, one JIT and one machine state. Each phase
// reports the server's CPU time per request (process.cpuUsage) and the
// capture time the budget charged itself (/debug/vars, tasks.stackBudget).
// The first two phases are warm-up. A restart of tracking refills the
// budget's bank (200 ms at 1%), which the --budget phases spend first: at 12 s
// phases that is under 2% of a phase, said in the output.
//
//   node bench/stack-share.mjs [--framework express|fastify] [--phases 10] [--phase 12] [--budget 0.01]
//
// Results: a markdown table on stdout, bench/results/stack-share-<framework>.md and .json.
import http from 'node:http';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { canPin, pinToCpu } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

if (process.argv[2] === '--server') {
  const framework = process.argv[3];
  const { startTracking } = await import('taskprof');
  let server;
  if (framework === 'fastify') {
    const { default: Fastify } = await import('fastify');
    const { default: taskprof } = await import('taskprof/fastify');
    const app = Fastify();
    await app.register(taskprof, { leakDetection: false });
    app.get('/', async () => {
      await new Promise((resolve) => setImmediate(resolve));
      return 'hello';
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    server = app.server;
  } else {
    const { default: express } = await import('express');
    const { default: taskprof } = await import('taskprof/express');
    const app = express();
    app.use(taskprof({ leakDetection: false }));
    app.get('/', async (req, res) => {
      await new Promise((resolve) => setImmediate(resolve));
      res.send('hello');
    });
    server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
  }
  let served = 0;
  server.on('request', () => served++);
  const { tracker } = await import('../dist/src/tracker/tracker.js');
  let mark;
  const read = () => ({ cpu: process.cpuUsage(), served, charged: tracker.stackBudgetStats()?.captureMs ?? 0, captures: tracker.stackBudgetStats()?.captures ?? 0 });
  process.on('message', (message) => {
    if (message.phase === undefined) return;
    const now = read();
    if (mark !== undefined) {
      const cpuUs = now.cpu.user + now.cpu.system - (mark.cpu.user + mark.cpu.system);
      process.send({ budget: mark.budget, requests: now.served - mark.served, cpuUs, chargedMs: now.charged - mark.charged, captures: now.captures - mark.captures });
    }
    startTracking({ mode: 'sampled', stackBudget: message.budget });
    mark = { ...read(), budget: message.budget };
  });
  process.send({ port: server.address().port });
} else if (process.argv[2] === '--load') {
  const port = Number(process.argv[3]);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const loop = () => {
    const req = http.get({ port, host: '127.0.0.1', path: '/', agent }, (res) => {
      res.resume();
      res.on('end', loop);
    });
    req.on('error', () => setTimeout(loop, 10));
  };
  for (let i = 0; i < 8; i++) loop();
} else {
  const { values } = parseArgs({
    options: {
      framework: { type: 'string', default: 'express' },
      phases: { type: 'string', default: '10' },
      phase: { type: 'string', default: '12' },
      budget: { type: 'string', default: '0.01' },
    },
  });
  const budget = Number(values.budget);
  const phases = Number(values.phases);
  const server = fork(fileURLToPath(import.meta.url), ['--server', values.framework]);
  const [{ port }] = await once(server, 'message');
  const load = fork(fileURLToPath(import.meta.url), ['--load', String(port)]);
  if (canPin) {
    pinToCpu(server.pid, 0);
    pinToCpu(load.pid, 1);
  }
  const rows = [];
  server.on('message', (row) => rows.push(row));
  for (let i = 0; i <= phases + 2; i++) {
    server.send({ phase: i, budget: i % 2 === 0 ? budget : 0 });
    await new Promise((resolve) => setTimeout(resolve, Number(values.phase) * 1000));
  }
  load.kill();
  server.kill();
  const measured = rows.slice(2);
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const of = (b) => measured.filter((r) => r.budget === b);
  const perReq = (r) => r.cpuUs / r.requests;
  const on = of(budget);
  const off = of(0);
  const date = new Date().toISOString().slice(0, 10);
  let table = `# Stacks' cost against the budget's count, ${values.framework} hello\n\n${date}, Node ${process.version}; ${measured.length} phases of ${values.phase} s alternating stackBudget ${budget} and 0 in one server process${canPin ? ', server on CPU 0, load on CPU 1' : ' (not pinned: no taskset)'}.\n\n`;
  table += '| stackBudget | CPU µs/req (median) | per phase | stacks a second | capture time the budget counted, share of CPU |\n|---|---:|---|---:|---:|\n';
  for (const [b, rowsOf] of [[budget, on], [0, off]]) {
    const share = rowsOf.reduce((n, r) => n + r.chargedMs * 1000, 0) / rowsOf.reduce((n, r) => n + r.cpuUs, 0);
    table += `| ${b} | ${median(rowsOf.map(perReq)).toFixed(1)} | ${rowsOf.map((r) => perReq(r).toFixed(1)).join(' ')} | ${Math.round(median(rowsOf.map((r) => r.captures / Number(values.phase))))} | ${(share * 100).toFixed(2)}% |\n`;
  }
  const added = median(on.map(perReq)) / median(off.map(perReq)) - 1;
  table += `\nStacks add ${(added * 100).toFixed(1)}% of CPU per request (ratio of the medians); the bank each ${budget} phase spends first is at most ${((budget * 20_000) / (Number(values.phase) * 1000) * 100).toFixed(1)}% of a phase.\n`;
  console.log(table);
  mkdirSync(path.join(here, 'results'), { recursive: true });
  writeFileSync(path.join(here, 'results', `stack-share-${values.framework}.md`), table);
  writeFileSync(path.join(here, 'results', `stack-share-${values.framework}.json`), JSON.stringify({ date, node: process.version, framework: values.framework, budget, phaseSeconds: Number(values.phase), rows: measured }, null, 2) + '\n');
}
