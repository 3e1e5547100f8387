// The optional v8-profiler-next engine, where its native addon loads
// (`npm run build:v8-profiler-next` builds it; CI does). Skips, saying why, elsewhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { gunzipSync } from 'node:zlib';
import express from 'express';
import supertest from 'supertest';
import { Profile } from 'pprof-format';
import taskprof from 'taskprof/express';
import { binaryParser } from './helpers.mjs';
import { busyFor, retainMany, retained } from './fixtures/workload.mjs';

const require = createRequire(import.meta.url);
let unavailable = false;
try {
  require('v8-profiler-next');
} catch (error) {
  unavailable = `v8-profiler-next does not load on Node ${process.version} (${error.message.split('\n')[0]}); run npm run build:v8-profiler-next`;
  console.log(`# SKIP engine tests: ${unavailable}`);
}


function functionNames(body) {
  const profile = Profile.decode(gunzipSync(body));
  const str = (i) => profile.stringTable.strings[Number(i)];
  return { profile, str, names: new Set(profile.function.map((f) => str(f.name))) };
}

test('an unknown engine is a TypeError naming the option', () => {
  assert.throws(() => taskprof({ engine: 'perf' }), { name: 'TypeError', message: /option "engine" must be one of inspector, v8-profiler-next/ });
});

test('engine v8-profiler-next: CPU profile and heap profile', { skip: unavailable }, async () => {
  const app = express();
  app.use(taskprof({ engine: 'v8-profiler-next' }));
  const agent = supertest(app);
  const [cpu] = await Promise.all([agent.get('/debug/pprof/profile?seconds=1').buffer(true).parse(binaryParser).expect(200), busyFor(1300)]);
  const { names: cpuNames } = functionNames(cpu.body);
  assert.ok(cpuNames.has('spinHot') || cpuNames.has('busyFor'), 'the busy code is in the CPU profile');
  const json = await Promise.all([agent.get('/debug/pprof/profile?seconds=1&format=cpuprofile').expect(200), busyFor(1200)]);
  assert.ok(JSON.parse(json[0].text).nodes.some((n) => ['spinHot', 'busyFor'].includes(n.callFrame.functionName)));
  retainMany(100_000);
  const heap = await agent.get('/debug/pprof/heap').buffer(true).parse(binaryParser).expect(200);
  const { profile, str, names } = functionNames(heap.body);
  assert.deepEqual(profile.sampleType.map((t) => str(t.type)), ['inuse_space']);
  assert.ok(names.has('retainMany'), 'retainMany in the heap profile');
  retained.length = 0;
});
