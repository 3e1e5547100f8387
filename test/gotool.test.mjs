// `go tool pprof` reads the tasks profile straight from a live server.
// CI installs golang-go; locally the test says why it skips when go is absent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { adapters, closeCaches } from './fixtures/apps.mjs';
import { commandWorks, eventually } from './helpers.mjs';

const run = promisify(execFile);

const hasGo = await commandWorks('go', ['version']);
if (!hasGo) console.log('# SKIP go tool pprof tests: `go` is not on PATH here (CI installs the Debian package golang-go)');

test('go tool pprof -raw and -top read tasks and goroutine from the server URL', { skip: hasGo ? false : 'go is not installed (apt-get install golang-go)' }, async () => {
  const [express5] = adapters;
  const app = await express5.start({ tracking: 'full' });
  const scratch = mkdtempSync(path.join(tmpdir(), 'taskprof-go-'));
  const env = { ...process.env, PPROF_TMPDIR: scratch, HOME: scratch, GOCACHE: path.join(scratch, 'gocache') };
  try {
    for (let i = 0; i < 4; i++) await (await fetch(`${app.appUrl}/cache/k${i}`)).text();
    const raw = await run('go', ['tool', 'pprof', '-raw', `${app.debugUrl}/debug/pprof/goroutine`], { env });
    assert.match(raw.stdout, /PeriodType: tasks count/);
    assert.match(raw.stdout, /\n\s+4: [\d ]+\n\s+detail:\[setInterval\(60000ms\)\] method:\[GET\] route:\[\/cache\/:key\] type:\[Timeout\]/);
    assert.match(raw.stdout, /new TtlMap \S*test\/fixtures\/leaky-app\.mjs:5/);
    const top = await run('go', ['tool', 'pprof', '-top', `${app.debugUrl}/debug/pprof/tasks`], { env });
    assert.match(top.stdout, /Type: tasks/);
    assert.match(top.stdout, /\s4\s+[\d.]+%\s+[\d.]+%\s+4\s+[\d.]+%\s+new TtlMap\n/);
    assert.doesNotMatch(top.stdout, /<unknown>/);
  } finally {
    closeCaches();
    await app.close();
    rmSync(scratch, { recursive: true, force: true });
  }
});

test('go tool pprof -raw reads profile and heap from the server URL', { skip: hasGo ? false : 'go is not installed (apt-get install golang-go)' }, async () => {
  const { busyFor, retainMany, retained } = await import('./fixtures/workload.mjs');
  const [express5] = adapters;
  const app = await express5.start({});
  const scratch = mkdtempSync(path.join(tmpdir(), 'taskprof-go-'));
  const env = { ...process.env, PPROF_TMPDIR: scratch, HOME: scratch, GOCACHE: path.join(scratch, 'gocache') };
  try {
    const [cpu] = await Promise.all([run('go', ['tool', 'pprof', '-raw', `${app.debugUrl}/debug/pprof/profile?seconds=1`], { env }), busyFor(1500)]);
    assert.match(cpu.stdout, /PeriodType: cpu nanoseconds/);
    assert.match(cpu.stdout, /samples\/count cpu\/nanoseconds/);
    // spinHot may be inlined into busyFor by the optimizing compiler; either is the busy code.
    assert.match(cpu.stdout, /(spinHot|busyFor) \S*test\/fixtures\/workload\.mjs/);
    retainMany(100_000);
    const heap = await run('go', ['tool', 'pprof', '-raw', `${app.debugUrl}/debug/pprof/heap`], { env });
    assert.match(heap.stdout, /inuse_objects\/count inuse_space\/bytes/);
    assert.match(heap.stdout, /retainMany \S*test\/fixtures\/workload\.mjs/);
    retained.length = 0;
  } finally {
    await app.close();
    rmSync(scratch, { recursive: true, force: true });
  }
});

test('go tool pprof reads a tasks delta (goroutine?seconds=1) and the leaks profile', { skip: hasGo ? false : 'go is not installed (apt-get install golang-go)' }, async () => {
  const [express5] = adapters;
  const app = await express5.start({ tracking: 'full', leakDetection: { intervalMs: 50, windowMs: 3000, minSamples: 6, minGrowth: 3 } });
  const scratch = mkdtempSync(path.join(tmpdir(), 'taskprof-go-'));
  const env = { ...process.env, PPROF_TMPDIR: scratch, HOME: scratch, GOCACHE: path.join(scratch, 'gocache') };
  // A request may be in flight when the app closes: its failure is not the test's.
  const leakSteadily = setInterval(() => fetch(`${app.appUrl}/cache/k`).then((r) => r.text()).catch(() => {}), 40);
  try {
    const delta = await run('go', ['tool', 'pprof', '-raw', `${app.debugUrl}/debug/pprof/goroutine?seconds=1`], { env });
    assert.match(delta.stdout, /PeriodType: tasks count/);
    assert.match(delta.stdout, /\n\s+([1-9]\d*): [\d ]+\n\s+detail:\[setInterval\(60000ms\)\] method:\[GET\] route:\[\/cache\/:key\] type:\[Timeout\]/);
    // The growing cache is a suspect once the detector has its samples.
    const flagged = async () => (await (await fetch(`${app.debugUrl}/debug/pprof/leaks?format=json`)).json()).suspects.length > 0;
    assert.ok(await eventually(flagged, 20_000), 'the growth detector flags the cache');
    const leaks = await run('go', ['tool', 'pprof', '-raw', `${app.debugUrl}/debug/pprof/leaks`], { env });
    assert.match(leaks.stdout, /leaked_tasks\/count/);
    assert.match(leaks.stdout, /new TtlMap \S*test\/fixtures\/leaky-app\.mjs:5/);
  } finally {
    clearInterval(leakSteadily);
    closeCaches();
    await app.close();
    rmSync(scratch, { recursive: true, force: true });
  }
});
