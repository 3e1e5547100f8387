// What keeping freed objects' samples costs (heapSampling: "allocs", V8's
// includeObjectsCollectedByMajorGC/MinorGC): the sampler then keeps one
// sample per ~interval bytes ever allocated, and every read returns them
// all. This measures, per GB allocated by short-lived objects, the samples
// kept, the memory they hold outside the JS heap (RSS less the heap's size), and how
// long one read (HeapProfiler.getSamplingProfile, what each allocs scrape
// does) takes; the same for the default in-use sampler.
//
//   node bench/allocs-sampling.mjs [--gb 12]
//
// Each mode runs in a fresh process pinned to one CPU (taskset where
// present). Results: a table on stdout and bench/results/allocs-sampling.json.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { canPin } from './harness.mjs';

const { values } = parseArgs({ options: { gb: { type: 'string', default: '12' }, mode: { type: 'string' } } });
const gb = Number(values.gb);

if (values.mode === undefined) {
  const script = fileURLToPath(import.meta.url);
  const runs = ['inuse', 'allocs'].map((mode) => {
    const args = [script, '--gb', String(gb), '--mode', mode];
    const out = canPin ? execFileSync('taskset', ['-c', '1', process.execPath, ...args]) : execFileSync(process.execPath, args);
    return JSON.parse(out.toString());
  });
  console.log('| mode | GB allocated | samples kept | read ms | MB outside the JS heap |\n|---|---|---|---|---|');
  for (const r of runs) for (const row of r.rows.filter((x) => x.gbAllocated % 4 === 0 || x.gbAllocated === 1)) console.log(`| ${r.mode} | ${row.gbAllocated} | ${row.samples} | ${row.readMs} | ${row.outsideHeapMB} |`);
  const out = join(dirname(script), 'results', 'allocs-sampling.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString().slice(0, 10), runs }, null, 2) + '\n');
  process.exit(0);
}
const includeCollected = values.mode === 'allocs';
const intervalBytes = 512 * 1024;

const session = new Session();
session.connect();
await session.post('HeapProfiler.enable');
await session.post('HeapProfiler.startSampling', { samplingInterval: intervalBytes, includeObjectsCollectedByMajorGC: includeCollected, includeObjectsCollectedByMinorGC: includeCollected });

function outsideHeap() {
  const m = process.memoryUsage();
  return m.rss - m.heapTotal;
}

let sink;
// Short-lived objects of about 100 bytes, as request handling makes.
function churn(bytes) {
  for (let made = 0; made < bytes; made += 100) sink = { a: made, b: 'x' + made, c: [made] };
}

const rows = [];
const before = outsideHeap();
for (let done = 1; done <= gb; done++) {
  churn(1024 ** 3);
  const started = performance.now();
  const { profile } = await session.post('HeapProfiler.getSamplingProfile');
  const readMs = performance.now() - started;
  rows.push({ gbAllocated: done, samples: profile.samples.length, readMs: Math.round(readMs), outsideHeapMB: Math.round((outsideHeap() - before) / 1e5) / 10 });
}
console.log(JSON.stringify({ mode: values.mode, node: process.version, intervalBytes, rows }));
