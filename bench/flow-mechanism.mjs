// What telling an `await` from a `.then` would cost (issue 14's flows): V8's
// promise hooks give both the same arguments, and only a stack tells them
// apart (one frame: the `then` builtin, or the awaiting function). Times a
// loop of `await work()`, where `work` is an async function awaiting `null`
// (two root promises and three derived ones a call), under:
//   none:           no hooks;
//   hooks:          empty promiseHooks init + settled;
//   frame-derived:  init captures one frame for each derived promise;
//   frame-all:      init captures one frame for every promise.
//
//   node bench/flow-mechanism.mjs [--rounds 3] [--calls 300000]
//
// Each (round, variant) is a fresh process; each times 5 batches of --calls
// and keeps the median; the figure is the median over rounds, in ns a call.
// Results: a markdown table on stdout, bench/results/flow-mechanism.md and .json.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { medianBatchNs } from './harness.mjs';

const variants = ['none', 'hooks', 'frame-derived', 'frame-all'];

if (process.argv[2] === '--child') {
  const [variant, callsText] = process.argv.slice(3);
  const calls = Number(callsText);
  const oneFrame = (_error, sites) => sites[0]?.getFunctionName();
  function init(_promise, parent) {
    if (variant === 'frame-all' || (variant === 'frame-derived' && parent !== undefined)) {
      const savedLimit = Error.stackTraceLimit;
      const savedPrepare = Error.prepareStackTrace;
      Error.stackTraceLimit = 1;
      Error.prepareStackTrace = oneFrame;
      const holder = {};
      Error.captureStackTrace(holder, init);
      void holder.stack;
      Error.stackTraceLimit = savedLimit;
      Error.prepareStackTrace = savedPrepare;
    }
  }
  if (variant !== 'none') v8.promiseHooks.createHook({ init, settled() {} });
  async function work() {
    await null;
  }
  async function run(n) {
    for (let i = 0; i < n; i++) await work();
  }
  process.send(await medianBatchNs(run, calls), () => process.exit(0));
}

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, calls: { type: 'string', default: '300000' } } });
const rounds = Number(values.rounds);
const here = path.dirname(fileURLToPath(import.meta.url));
const results = Object.fromEntries(variants.map((v) => [v, []]));
for (let round = 0; round < rounds; round++) {
  for (const variant of variants) {
    const child = fork(fileURLToPath(import.meta.url), ['--child', variant, values.calls]);
    const [ns] = await once(child, 'message');
    results[variant].push(ns);
    await once(child, 'exit');
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const date = new Date().toISOString().slice(0, 10);
let table = `# Telling an await from a then, ns per \`await work()\` call\n\n${date}, Node ${process.version}; ${rounds} rounds, ${values.calls} calls a batch, median of 5 batches per process.\n\n`;
table += '| variant | ns per call (median) | min – max | against `hooks` |\n|---|---:|---:|---:|\n';
const base = median(results.hooks);
for (const variant of variants) {
  const xs = results[variant];
  table += `| ${variant} | ${median(xs).toFixed(0)} | ${Math.min(...xs).toFixed(0)} – ${Math.max(...xs).toFixed(0)} | ${variant === 'hooks' ? '—' : `${(median(xs) / base).toFixed(1)} ×`} |\n`;
}
console.log(table);
mkdirSync(path.join(here, 'results'), { recursive: true });
writeFileSync(path.join(here, 'results', 'flow-mechanism.md'), table);
writeFileSync(path.join(here, 'results', 'flow-mechanism.json'), JSON.stringify({ date, node: process.version, calls: Number(values.calls), rounds, results }, null, 2) + '\n');
