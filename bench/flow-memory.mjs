// Does linking flows keep memory? Heap in use after full collections,
// round after round of "requests" (the overhead bench's realistic handler,
// without HTTP: three awaited async functions, one a setTimeout(0) promise),
// 8 at a time, in the default mode.
//
//   npm run build && node --expose-gc bench/flow-memory.mjs [--baseline <checkout>] [--rounds 4] [--requests 160000]
//
// With --baseline, the same with another checkout's build (main before flows,
// say), for comparison. A heap that stays flat over the rounds keeps nothing.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { baseline: { type: 'string' }, rounds: { type: 'string', default: '4' }, requests: { type: 'string', default: '160000' } } });
if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc');
const entry = values.baseline === undefined ? 'taskprof' : pathToFileURL(path.join(values.baseline, 'dist', 'src', 'index.js')).href;
const { startTracking, taskCount } = await import(entry);
startTracking({ mode: 'sampled' });

const items = Array.from({ length: 20 }, (_, i) => ({ id: i }));
async function loadUser() {
  await null;
  return { id: 7 };
}
async function loadItems() {
  await new Promise((resolve) => setTimeout(resolve, 0));
  return items;
}
async function render(user, list) {
  await null;
  return { user, list };
}
const respond = async () => render(await loadUser(), await loadItems());

const perRound = Number(values.requests) / 8;
for (let round = 1; round <= Number(values.rounds); round++) {
  for (let i = 0; i < perRound; i++) await Promise.all(Array.from({ length: 8 }, respond));
  globalThis.gc();
  await new Promise((resolve) => setTimeout(resolve, 50));
  globalThis.gc();
  const heapMb = process.memoryUsage().heapUsed / 1e6;
  console.log(`${values.baseline === undefined ? 'this build' : 'baseline'}: round ${round}, ${round * Number(values.requests)} requests: heap used ${heapMb.toFixed(1)} MB, live tasks ${taskCount()}`);
}
