// The shared CPU sampler and the block profile's long runs, on synthetic
// profiles (exact figures) and on V8's real sampler: a window that joins a
// running sampler gets its own stretch, and a sampler that cannot start again
// fails the windows left open instead of ending them short without a word.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpuSampler, mergeCpuProfiles } from '../dist/src/profiles/cpu-sampler.js';
import { longRuns } from '../dist/src/profiles/block.js';
import { loadEngine } from '../dist/src/v8/engine.js';
import { eventually } from './helpers.mjs';

const frame = (functionName, lineNumber = 0) => ({ functionName, url: 'file:///app.mjs', lineNumber, columnNumber: 0 });
// (root) -> handler -> spin; (root) -> (idle); (root) -> other; (root) -> (garbage collector)
const nodes = [
  { id: 1, callFrame: frame('(root)'), children: [2, 4, 5, 6] },
  { id: 2, callFrame: frame('handler', 3), children: [3] },
  { id: 3, callFrame: frame('spin', 9), children: [] },
  { id: 4, callFrame: frame('(idle)'), children: [] },
  { id: 5, callFrame: frame('other', 20), children: [] },
  { id: 6, callFrame: frame('(garbage collector)'), children: [] },
];
const profileOf = (samples, startTime = 1_000_000, step = 10_000) => ({ nodes, startTime, endTime: startTime + samples.length * step, samples, timeDeltas: samples.map(() => step) });

test('longRuns: a run is non-idle samples under one outermost function, each standing for the gap to the next; GC continues it', () => {
  // idle, spin x3, GC, spin x2 (70 ms under handler), idle, other x2, spin x3 (split by the outermost change).
  const profile = profileOf([4, 3, 3, 3, 6, 3, 3, 4, 5, 5, 3, 3, 3]);
  const runs = longRuns(profile, 10_000, 50_000);
  assert.equal(runs.length, 1);
  assert.equal(runs[0].durationUs, 60_000, 'six samples to the idle one: 3 spin, GC, 2 spin');
  assert.deepEqual(runs[0].frames.map((f) => [f.functionName, f.line]), [['spin', 10], ['handler', 4]]);
  // At a lower threshold the two shorter runs count too, each at its own stack.
  assert.deepEqual(longRuns(profile, 10_000, 20_000).map((r) => [r.frames[0].functionName, r.durationUs]), [['spin', 60_000], ['other', 20_000], ['spin', 30_000]]);
});

test('mergeCpuProfiles: trees merged by call path, hit counts from the samples, gaps kept in the time deltas', () => {
  const a = profileOf([3, 3, 4], 1_000_000);
  const b = profileOf([5, 3], 1_100_000);
  const merged = mergeCpuProfiles([a, b]);
  assert.equal(merged.samples.length, 5);
  assert.equal(merged.startTime, 1_000_000);
  assert.equal(merged.endTime, b.endTime);
  // Sample times are those of the segments: the first of b at 1,110,000.
  let at = merged.startTime;
  const times = merged.timeDeltas.map((d) => (at += d));
  assert.deepEqual(times, [1_010_000, 1_020_000, 1_030_000, 1_110_000, 1_120_000]);
  const byId = new Map(merged.nodes.map((n) => [n.id, n]));
  const name = (id) => byId.get(id).callFrame.functionName;
  assert.deepEqual(merged.samples.map(name), ['spin', 'spin', '(idle)', 'other', 'spin']);
  assert.equal(merged.nodes.filter((n) => n.callFrame.functionName === 'spin').length, 1, 'one node per call path');
  for (const node of merged.nodes) assert.equal(node.hitCount, merged.samples.filter((id) => id === node.id).length);
});

function busy(ms) {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

test('a window that joins a running sampler gets the samples from its join on; the first keeps the whole stretch', async () => {
  const engine = loadEngine('inspector');
  // Each window's wall time counts from just before its join.
  const firstAt = performance.now();
  const first = await cpuSampler.join(engine, 10_000, 10);
  busy(600);
  const secondAt = performance.now();
  const second = await cpuSampler.join(engine, 10_000, 10);
  busy(600);
  const secondProfile = await cpuSampler.leave(second);
  const secondMs = performance.now() - secondAt;
  busy(200);
  const firstProfile = await cpuSampler.leave(first);
  const firstMs = performance.now() - firstAt;
  assert.ok(!cpuSampler.running, 'no window is left open');
  const spanMs = (p) => (p.endTime - p.startTime) / 1000;
  // Each window spans at least the busy time it was open for, and never more
  // than the wall time from its join to its leave (a busy machine only
  // lengthens the stop, which no profile covers).
  assert.ok(spanMs(secondProfile) >= 590 && spanMs(secondProfile) <= secondMs + 20, `second: ${spanMs(secondProfile)} ms sampled, ${secondMs} ms open`);
  assert.ok(spanMs(firstProfile) >= 1390 && spanMs(firstProfile) <= firstMs + 20, `first: ${spanMs(firstProfile)} ms sampled, ${firstMs} ms open`);
  assert.ok(firstProfile.samples.length > secondProfile.samples.length + 40, `${firstProfile.samples.length} against ${secondProfile.samples.length} samples`);
  let at = secondProfile.startTime;
  for (const delta of secondProfile.timeDeltas) assert.ok((at += delta) >= secondProfile.startTime);
});

test('when the sampler cannot start again for the windows left open, they fail (500) instead of ending short', async () => {
  let starts = 0;
  const engine = {
    name: 'inspector',
    startCpu: async () => {
      if (++starts > 1) throw new Error('profiler gone');
    },
    // On V8's clock, as a real profile: the window keeps what came after its join.
    stopCpu: async () => profileOf([3, 3], Number(process.hrtime.bigint() / 1000n)),
  };
  const a = await cpuSampler.join(engine, 10_000, 10);
  const b = await cpuSampler.join(engine, 10_000, 10);
  const fromA = await cpuSampler.leave(a);
  assert.equal(fromA.samples.length, 2, 'the leaving window gets its samples');
  await assert.rejects(cpuSampler.leave(b), /profiler gone/);
  assert.ok(await eventually(() => !cpuSampler.running), 'nothing is left open');
});

test('mounts with different engines cannot share the sampler: 429 naming why, with Retry-After', async () => {
  const engine = { name: 'inspector', startCpu: async () => {}, stopCpu: async () => profileOf([], Number(process.hrtime.bigint() / 1000n)) };
  const window = await cpuSampler.join(engine, 10_000, 5);
  try {
    await assert.rejects(cpuSampler.join({ ...engine, name: 'v8-profiler-next' }, 10_000, 1), (error) => error.status === 429 && /another profiler engine/.test(error.body) && Number(error.headers['Retry-After']) >= 1);
    // The same engine by name (another mount's object) shares it.
    const same = await cpuSampler.join({ ...engine }, 10_000, 1);
    await cpuSampler.leave(same);
  } finally {
    await cpuSampler.leave(window);
  }
});
