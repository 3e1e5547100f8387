// Added cost per promise and per timer, in nanoseconds, for each tracking mode.
//
//   npm run build && node bench/micro.mjs [--rounds 5] [--ops 1000000]
//
// Each (round, mode) is a fresh process: the mode is set with startTracking
// (or left off for `none`), then it times --ops operations of each kind in
// batches and reports nanoseconds per operation (the median of 5 batches):
//   promise: `new Promise((resolve) => resolve(i))`, awaited every 1,000
//            (so settled promises are collected as they would be);
//   await:   `await` of a promise that is already resolved (a continuation);
//   timer:   `clearTimeout(setTimeout(noop, 1000))` (a timer made and cleared);
//   flow:    an async function awaiting a pending `new Promise`, which is
//            then resolved, and the loop's await of that function's promise
//            (pending too): two roots and two awaits of pending promises, the
//            awaits that flows link (issue 14), and their settling.
// `sampled` captures creation stacks within its stack budget (stackBudget
// 0.01: 200 ms banked at start, then 1% of the CPU time used, earned every
// second on a timer). The loops never yield to the event loop, so the budget
// is never refilled: at the default --ops the promise warm-up (50,000
// promises; at about 10 µs a stack the bank lasts some 20,000) uses the bank
// up, and the timed batches measure `sampled` with captures refused (their
// share of CPU time is the budget's, 1%, in a running process). With a small
// --ops (under about 100,000) the warm-up is shorter, part of the timed
// promises still get stacks, and the figure is higher.
// Modes alternate within every round; the result is the median over rounds,
// and the added cost is that minus `none` of the same round (median too).
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { medianBatchNs } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
// `--modes` replaces the list (`none` first); `mode/baseline` runs that mode
// with the build of another checkout, $TASKPROF_BASELINE (what a change
// adds, in one run).
let modes = ['none', 'off', 'counts', 'sampled', 'full'];

if (process.argv[2] === '--child') {
  const [mode, opsText] = process.argv.slice(3);
  const ops = Number(opsText);
  if (mode !== 'none') {
    const [name, flag] = mode.split('/');
    const entry = flag === 'baseline' ? pathToFileURL(path.join(process.env.TASKPROF_BASELINE, 'dist', 'src', 'index.js')).href : 'taskprof';
    const { startTracking } = await import(entry);
    startTracking({ mode: name });
  }
  const noop = () => {};
  const kinds = {
    async promise(n) {
      let last;
      for (let i = 0; i < n; i++) {
        last = new Promise((resolve) => resolve(i));
        if (i % 1000 === 999) await last;
      }
      await last;
    },
    async await(n) {
      const resolved = Promise.resolve(1);
      for (let i = 0; i < n; i++) await resolved;
    },
    async timer(n) {
      for (let i = 0; i < n; i++) clearTimeout(setTimeout(noop, 1000));
    },
    async flow(n) {
      for (let i = 0; i < n; i++) {
        let resolve;
        const pending = new Promise((r) => (resolve = r));
        const waiting = (async () => {
          await pending;
        })();
        resolve();
        await waiting;
      }
    },
  };
  const result = {};
  for (const [kind, run] of Object.entries(kinds)) result[kind] = await medianBatchNs(run, Math.ceil(ops / 5));
  process.send(result, () => process.exit(0));
} else {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, ops: { type: 'string', default: '1000000' }, modes: { type: 'string' } } });
  if (values.modes !== undefined) modes = ['none', ...values.modes.split(',').filter((m) => m !== 'none')];
  const rounds = Number(values.rounds);
  const perRound = [];
  for (let r = 0; r < rounds; r++) {
    const row = {};
    for (const mode of modes) {
      const child = fork(fileURLToPath(import.meta.url), ['--child', mode, values.ops]);
      const [result] = await once(child, 'message');
      await once(child, 'exit');
      row[mode] = result;
    }
    perRound.push(row);
    console.error(`round ${r + 1}/${rounds}: ` + modes.map((m) => `${m} ${row[m].promise.toFixed(0)}/${row[m].await.toFixed(0)}/${row[m].timer.toFixed(0)}/${row[m].flow.toFixed(0)} ns`).join(', '));
  }
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
  };
  const kinds = ['promise', 'await', 'timer', 'flow'];
  const date = new Date().toISOString().slice(0, 10);
  let table = `Cost per operation, ${date}, Node ${process.version}, ${rounds} rounds × ${values.ops} operations per kind\n\n`;
  table += '| mode | ' + kinds.map((k) => `${k} (ns) | added`).join(' | ') + ' |\n|---|' + kinds.map(() => '---:|---:').join('|') + '|\n';
  for (const mode of modes) {
    table += `| ${mode} | ` + kinds.map((k) => {
      const ns = median(perRound.map((row) => row[mode][k]));
      const added = median(perRound.map((row) => row[mode][k] - row.none[k]));
      return `${ns.toFixed(0)} | ${mode === 'none' ? '' : (added >= 0 ? '+' : '') + added.toFixed(0)}`;
    }).join(' | ') + ' |\n';
  }
  console.log(table);
  mkdirSync(path.join(here, 'results'), { recursive: true });
  writeFileSync(path.join(here, 'results', 'micro.json'), JSON.stringify({ date, node: process.version, rounds, ops: Number(values.ops), perRound }, null, 2) + '\n');
  writeFileSync(path.join(here, 'results', 'micro.md'), table);
}
