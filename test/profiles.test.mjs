// CPU and heap profiles, heap snapshots, allocs and vars on a real Express
// server on 127.0.0.1: what real tools open, and every refusal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import express from 'express';
import supertest from 'supertest';
import taskprof from 'taskprof/express';
import { busyFor, churn, retainMany, retained } from './fixtures/workload.mjs';
import { binaryParser, decodePprof, eventually, fixturesDir } from './helpers.mjs';
import { cpuProfileRunning } from '../dist/src/profiles/cpu.js';
import { snapshotRunning } from '../dist/src/profiles/heapsnapshot.js';
import { heapSampler } from '../dist/src/profiles/heap.js';

const workload = path.join(fixturesDir, 'workload.mjs');


const decode = decodePprof;

async function start(options = {}) {
  const app = express();
  app.use(taskprof({ tracking: 'sampled', ...options }));
  const server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    agent: supertest(url),
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

const app = await start({ heapSnapshot: true });
test.after(() => app.close());

test('profile: a CPU-busy function shows by name and file in pprof', async () => {
  const [res] = await Promise.all([app.agent.get('/debug/pprof/profile?seconds=2').buffer(true).parse(binaryParser), busyFor(2300)]);
  assert.equal(res.status, 200);
  assert.equal(res.headers['content-type'], 'application/octet-stream');
  assert.equal(res.headers['content-disposition'], 'attachment; filename="profile"');
  const { profile, stack, types } = decode(res.body);
  assert.deepEqual(types, ['samples/count', 'cpu/nanoseconds']);
  // spinHot may be inlined into busyFor by the optimizing compiler; either is the busy code.
  const busy = (f) => f.name === 'spinHot' || f.name === 'busyFor';
  const hot = profile.sample.filter((s) => stack(s).some(busy));
  const leaves = profile.sample.map((s) => `${stack(s)[0]?.name}:${s.value[0]}`).join(' ');
  assert.ok(hot.length > 0, `the busy code is sampled; leaves: ${leaves}`);
  assert.equal(stack(hot[0]).find(busy).file, workload);
  const hotSamples = hot.reduce((n, s) => n + Number(s.value[0]), 0);
  const allSamples = profile.sample.reduce((n, s) => n + Number(s.value[0]), 0);
  assert.ok(hotSamples / allSamples > 0.2, `spinHot has ${hotSamples} of ${allSamples} samples; leaves: ${leaves}`);
});

test('profile: format=cpuprofile is Chrome DevTools JSON', async () => {
  const [res] = await Promise.all([app.agent.get('/debug/pprof/profile?seconds=1&format=cpuprofile'), busyFor(1200)]);
  assert.equal(res.status, 200);
  assert.match(res.headers['content-disposition'], /^attachment; filename="cpu-\d+-\d+\.cpuprofile"$/);
  const profile = JSON.parse(res.text);
  assert.ok(Array.isArray(profile.nodes) && Array.isArray(profile.samples) && Array.isArray(profile.timeDeltas));
  assert.ok(profile.nodes.some((n) => ['spinHot', 'busyFor'].includes(n.callFrame.functionName)));
});

test('profile: bad seconds are 400 naming the range; maxProfileSeconds sets it', async () => {
  for (const seconds of ['0', 'abc', '301', '1.5', '-3', '']) {
    await app.agent.get(`/debug/pprof/profile?seconds=${seconds}`).expect(400, 'invalid value for "seconds" - must be an integer from 1 to 300 (maxProfileSeconds)\n');
  }
  await app.agent.get('/debug/pprof/profile?format=svg').expect(400, 'invalid value for "format" - must be cpuprofile\n');
  const small = await start({ maxProfileSeconds: 2 });
  try {
    await small.agent.get('/debug/pprof/profile?seconds=3').expect(400, 'invalid value for "seconds" - must be an integer from 1 to 2 (maxProfileSeconds)\n');
  } finally {
    await small.close();
  }
});

test('profile: profiles asked for at once share the sampler, each its own window; a client that leaves frees the profiler', async () => {
  const first = http.get(`${app.url}/debug/pprof/profile?seconds=20`);
  first.on('error', () => {});
  assert.ok(await eventually(() => cpuProfileRunning(), 10_000), 'the first profile runs');
  const started = performance.now();
  const second = await app.agent.get('/debug/pprof/profile?seconds=1').buffer(true).parse(binaryParser).expect(200);
  assert.ok(performance.now() - started < 10_000, 'the second ended after its own second, not the first one\'s 20');
  const { profile } = decode(second.body);
  const seconds = Number(profile.durationNanos) / 1e9;
  assert.ok(seconds >= 0.9 && seconds < 5, `the second profile spans its own window (${seconds} s)`);
  assert.ok(cpuProfileRunning(), 'the first still runs');
  // Eight at once is the most: a ninth is refused with Retry-After.
  const more = [];
  for (let i = 0; i < 7; i++) {
    const req = http.get(`${app.url}/debug/pprof/profile?seconds=20`);
    req.on('error', () => {});
    more.push(req);
  }
  assert.ok(await eventually(async () => (await app.agent.get('/debug/pprof/profile?seconds=1')).status === 429, 10_000), 'a ninth is refused');
  const busy = await app.agent.get('/debug/pprof/profile?seconds=1').expect(429);
  assert.equal(busy.text, 'Too many requests: 8 CPU profiles are being taken at once (they share one sampler), the most taskprof serves\n');
  assert.ok(Number(busy.headers['retry-after']) >= 1);
  for (const req of more) req.destroy();
  first.destroy();
  assert.ok(await eventually(() => !cpuProfileRunning(), 10_000), 'the profiler is free');
  const next = Date.now();
  await app.agent.get('/debug/pprof/profile?seconds=1').expect(200);
  assert.ok(Date.now() - next < 5000, 'the next profile ran at once');
});

test('heap: an object retained by a growing array shows at its allocating function', async () => {
  retainMany(200_000);
  const res = await app.agent.get('/debug/pprof/heap?gc=1').buffer(true).parse(binaryParser).expect(200);
  const { profile, stack, types } = decode(res.body);
  assert.deepEqual(types, ['inuse_objects/count', 'inuse_space/bytes']);
  const mine = profile.sample.filter((s) => stack(s)[0]?.name === 'retainMany');
  assert.ok(mine.length > 0, 'retainMany allocates');
  assert.equal(stack(mine[0])[0].file, workload);
  const bytes = mine.reduce((n, s) => n + Number(s.value[1]), 0);
  assert.ok(bytes > 10_000_000, `retainMany holds ${bytes} bytes`);
  const text = await app.agent.get('/debug/pprof/heap?debug=1').expect(200);
  assert.match(text.text, /^heap profile: \d+ objects, \d+ bytes in use \(sampled, estimates\)\n/);
  assert.match(text.text, /#\tretainMany\ttest\/fixtures\/workload\.mjs:\d+:\d+/);
  await app.agent.get('/debug/pprof/heap?gc=2').expect(400, 'invalid value for "gc" - must be 0 or 1\n');
  retained.length = 0;
});

test('allocs: by default the in-use sampling, named so and saying why (Go scrapers read allocs as memory)', async () => {
  retainMany(200_000);
  const res = await app.agent.get('/debug/pprof/allocs?gc=1').buffer(true).parse(binaryParser).expect(200);
  assert.equal(res.headers['content-type'], 'application/octet-stream');
  assert.equal(res.headers['content-disposition'], 'attachment; filename="allocs"');
  const { profile, stack, types, comments } = decode(res.body);
  assert.deepEqual(types, ['inuse_objects/count', 'inuse_space/bytes'], 'in-use figures, not alloc_* ones it does not have');
  assert.ok(profile.sample.some((s) => stack(s)[0]?.name === 'retainMany'), 'the retaining function shows');
  assert.match(comments.join('\n'), /^in use, not allocated: V8 runs one sampling heap profiler per process/);
  const text = await app.agent.get('/debug/pprof/allocs?debug=1').expect(200);
  assert.match(text.text, /^heap profile: \d+ objects, \d+ bytes in use/);
  assert.match(text.text, /# in use, not allocated/);
  retained.length = 0;
});

test('heapsnapshot: streamed, loadable JSON whose counts match its arrays', async () => {
  const res = await app.agent.get('/debug/pprof/heapsnapshot').buffer(true).parse(binaryParser).expect(200);
  assert.match(res.headers['content-disposition'], /^attachment; filename="heap-\d+-\d+\.heapsnapshot"$/);
  assert.equal(res.headers['content-length'], undefined, 'streamed, not buffered');
  const snapshot = JSON.parse(res.body.toString('utf8'));
  const { meta, node_count: nodeCount, edge_count: edgeCount } = snapshot.snapshot;
  assert.ok(Array.isArray(meta.node_fields) && Array.isArray(meta.edge_fields));
  assert.equal(snapshot.nodes.length, nodeCount * meta.node_fields.length);
  assert.equal(snapshot.edges.length, edgeCount * meta.edge_fields.length);
});

test('heapsnapshot: off by default (403), one at a time (429), refused when memory is short (507)', async () => {
  const off = await start();
  try {
    const res = await off.agent.get('/debug/pprof/heapsnapshot').expect(403);
    assert.match(res.text, /^Forbidden: heap snapshots contain every secret in memory and are off; set the "heapSnapshot: true" option/);
  } finally {
    await off.close();
  }
  const tight = await start({ heapSnapshot: true, availableMemory: () => 1024 * 1024 });
  try {
    const res = await tight.agent.get('/debug/pprof/heapsnapshot').expect(507);
    assert.match(res.text, /^Insufficient storage: a heap snapshot needs about \d+ MiB \(10 times the used heap\) and 1 MiB is available\n$/);
  } finally {
    await tight.close();
  }
  // A first snapshot whose client reads nothing keeps the slot.
  const first = http.get(`${app.url}/debug/pprof/heapsnapshot`);
  first.on('error', () => {});
  const response = await new Promise((resolve) => first.on('response', resolve));
  response.pause();
  const busy = await app.agent.get('/debug/pprof/heapsnapshot').expect(429);
  assert.equal(busy.headers['retry-after'], '10');
  first.destroy();
  assert.ok(await eventually(() => !snapshotRunning(), 10_000), 'the snapshot lock is free');
  await app.agent.get('/debug/pprof/heapsnapshot').buffer(true).parse(binaryParser).expect(200);
});

test('a failure inside the profiler is a 500 with a plain message, and taskprof stays usable', async () => {
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = '/nonexistent/taskprof-test';
  try {
    const res = await app.agent.get('/debug/pprof/heapsnapshot').expect(500);
    assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
    assert.match(res.text, /^Could not take a heap snapshot: ENOENT/);
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
  await app.agent.get('/debug/pprof/heapsnapshot').buffer(true).parse(binaryParser).expect(200);
});

test('vars: JSON like expvar', async () => {
  const res = await app.agent.get('/debug/vars').expect(200);
  assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
  for (const key of ['cmdline', 'memoryUsage', 'heapSpaces', 'resourceUsage', 'eventLoop', 'uptimeSeconds', 'versions', 'tasks']) {
    assert.ok(key in res.body, key);
  }
  assert.equal(typeof res.body.eventLoop.delayMs.p99, 'number');
  assert.equal(typeof res.body.eventLoop.utilization, 'number');
  assert.equal(res.body.versions.node, process.version);
  assert.equal(typeof res.body.tasks.byType, 'object');
});

test('heapSampling: "allocs" serves allocs (freed objects included) and heap says why it is off', async () => {
  const allocs = await start({ heapSampling: 'allocs' });
  try {
    // The churn must come after the sampler has started (the mount starts it without waiting).
    await heapSampler.starting;
    churn(300_000);
    const res = await allocs.agent.get('/debug/pprof/allocs').buffer(true).parse(binaryParser).expect(200);
    assert.equal(res.headers['content-disposition'], 'attachment; filename="allocs"');
    const { profile, stack, types } = decode(res.body);
    assert.deepEqual(types, ['alloc_objects/count', 'alloc_space/bytes']);
    const bytes = profile.sample.filter((s) => stack(s)[0]?.name === 'churn').reduce((n, s) => n + Number(s.value[1]), 0);
    assert.ok(bytes > 10_000_000, `churn allocated ${bytes} bytes, all freed`);
    const heap = await allocs.agent.get('/debug/pprof/heap').expect(404);
    assert.match(heap.text, /^heap is not available: the heapSampling option is "allocs"/);
  } finally {
    await allocs.close();
  }
  assert.throws(() => taskprof({ heapSampling: 'allocs', engine: 'v8-profiler-next' }), { name: 'TypeError', message: /heapSampling: allocs" needs the inspector engine/ });
});
