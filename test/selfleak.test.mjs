// taskprof passes its own leak check: mount, use every endpoint, unmount, and
// no task of taskprof's is left behind. taskprof's tracker skips its own work
// (so that the app's listings and counts show only the app's tasks), so a
// second, independent recorder here sees every async resource and promise
// whose creation stack passes through taskprof's code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import v8 from 'node:v8';
import http from 'node:http';
import { once } from 'node:events';
import { mkdtempSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';
import Fastify from 'fastify';
import { startLeakCheck } from 'taskprof/testing';
import { trackingSettings } from 'taskprof';
import { collectGarbage, eventually } from './helpers.mjs';

const distDir = path.join(path.dirname(path.dirname(fileURLToPath(import.meta.url))), 'dist') + path.sep;

// Every resource and promise made with taskprof's code on the stack, until it ends.
function recordTaskprofTasks() {
  const live = new Map();
  let nextPromise = 0;
  const kId = Symbol('selfleak.id');
  const madeByTaskprof = () => {
    const saved = Error.stackTraceLimit;
    Error.stackTraceLimit = 80;
    const stack = new Error().stack ?? '';
    Error.stackTraceLimit = saved;
    // The recorder's own frames are in this file, not in dist/.
    return stack.includes(distDir) ? stack : undefined;
  };
  const hook = createHook({
    init(asyncId, type, _trigger, resource) {
      if (type === 'PROMISE' || type === 'TickObject' || type === 'Microtask') return;
      const stack = madeByTaskprof();
      if (stack !== undefined) live.set(`r${asyncId}`, { type, stack, ref: new WeakRef(resource) });
    },
    destroy(asyncId) {
      live.delete(`r${asyncId}`);
    },
  });
  hook.enable();
  const stopPromises = v8.promiseHooks.createHook({
    init(promise, parent) {
      if (parent !== undefined) return;
      const stack = madeByTaskprof();
      if (stack === undefined) return;
      promise[kId] = `p${nextPromise++}`;
      live.set(promise[kId], { type: 'Promise', stack, ref: new WeakRef(promise) });
    },
    settled(promise) {
      if (promise[kId] !== undefined) live.delete(promise[kId]);
    },
  });
  return {
    stop() {
      hook.disable();
      stopPromises();
    },
    // Still alive: not ended and not garbage (a timer that fired or was cleared is ended).
    leftovers() {
      return [...live.values()].filter(({ type, ref }) => {
        const resource = ref.deref();
        if (resource === undefined) return false;
        if ((type === 'Timeout' || type === 'Immediate') && resource._destroyed === true) return false;
        return true;
      });
    },
  };
}

async function get(port, pathAndQuery, headers = {}) {
  const res = await new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: pathAndQuery, headers, agent: false }, resolve).on('error', reject);
  });
  const chunks = [];
  for await (const chunk of res) chunks.push(chunk);
  return { status: res.statusCode, body: Buffer.concat(chunks) };
}

// Every endpoint, each form: listings, deltas, profiles, the snapshot, metrics.
const everyEndpoint = [
  '/debug/pprof/',
  '/debug/pprof/tasks?debug=0',
  '/debug/pprof/tasks?debug=1',
  '/debug/pprof/tasks?debug=2',
  '/debug/pprof/goroutine?debug=1&format=json',
  '/debug/pprof/tasks?seconds=1',
  '/debug/pprof/heap',
  '/debug/pprof/heap?seconds=1',
  '/debug/pprof/allocs',
  '/debug/pprof/profile?seconds=1',
  '/debug/pprof/profile?seconds=1&format=cpuprofile',
  '/debug/pprof/heapsnapshot',
  '/debug/pprof/leaks?debug=1',
  '/debug/pprof/cmdline',
  '/debug/vars',
  '/debug/metrics',
];

async function useEverything(port, dumpPath) {
  for (const url of everyEndpoint) {
    const { status, body } = await get(port, url);
    assert.ok(status < 500, `${url}: ${status} ${body.toString().slice(0, 200)}`);
  }
  const openMetrics = await get(port, '/debug/metrics', { Accept: 'application/openmetrics-text; version=1.0.0' });
  assert.equal(openMetrics.status, 200);
  process.kill(process.pid, 'SIGUSR2');
  assert.ok(await eventually(() => existsSync(dumpPath), 10_000), 'the signal dump was written');
}

const fullOptions = (dumpPath) => ({
  tracking: 'sampled',
  heapSnapshot: true,
  dumpOnSignal: 'SIGUSR2',
  dumpPath,
  leakDetection: { intervalMs: 50, windowMs: 60_000 },
});

async function expectNothingLeftBehind(recorder, signalListeners) {
  await eventually(async () => {
    await collectGarbage();
    return recorder.leftovers().length === 0;
  }, 5000);
  assert.deepEqual(recorder.leftovers().map((t) => `${t.type}\n${t.stack}`), [], 'tasks of taskprof left after unmount');
  assert.equal(process.listenerCount('SIGUSR2'), signalListeners, 'signal listener removed');
  assert.equal(trackingSettings().mode, 'off', 'tracking stopped with the last mount');
}

// Runs `use(dumpPath)` (mount, use every endpoint, close) under both checks:
// taskprof's own leak check, and the independent recorder.
async function expectCleanUnmount(use) {
  const dir = mkdtempSync(path.join(tmpdir(), 'taskprof-selfleak-'));
  const signalListeners = process.listenerCount('SIGUSR2');
  const recorder = recordTaskprofTasks();
  const check = startLeakCheck();
  try {
    await use(path.join(dir, 'dump.txt'));
    await check.verify();
    await expectNothingLeftBehind(recorder, signalListeners);
  } finally {
    recorder.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('express: mount, use every endpoint, close: no task of taskprof is left, and the leak check passes', () =>
  expectCleanUnmount(async (dumpPath) => {
    const { default: taskprof } = await import('taskprof/express');
    const middleware = taskprof(fullOptions(dumpPath));
    const app = express();
    app.use(middleware);
    app.get('/', (_req, res) => res.send('ok'));
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address();
    await useEverything(port, dumpPath);
    assert.equal((await get(port, '/')).status, 200);
    server.close();
    await once(server, 'close');
    await middleware.close();
    await middleware.close(); // idempotent
  }));

test('fastify and the standalone listener: closing them unmounts; the last one stops everything', () =>
  expectCleanUnmount(async (dumpPath) => {
    const { default: plugin } = await import('taskprof/fastify');
    const { listen } = await import('taskprof/http');
    const app = Fastify();
    await app.register(plugin, fullOptions(dumpPath));
    app.get('/', async () => 'ok');
    await app.listen({ port: 0, host: '127.0.0.1' });
    const standalone = await listen({ heapSnapshot: true });
    await useEverything(app.server.address().port, dumpPath);
    rmSync(dumpPath);
    await useEverything(standalone.address().port, dumpPath);
    await app.close();
    // The standalone listener is still open: tracking goes on.
    assert.notEqual(trackingSettings().mode, 'off');
    standalone.close();
    await once(standalone, 'close');
  }));

test('listen() on a port in use rejects and unmounts: it does not keep tracking running', async () => {
  const { listen } = await import('taskprof/http');
  const first = await listen({ heapSampling: 'off' });
  await assert.rejects(listen({ port: first.address().port, heapSampling: 'off' }), /EADDRINUSE/);
  first.close();
  await once(first, 'close');
  assert.ok(await eventually(() => trackingSettings().mode === 'off', 2000), 'tracking stopped with the last mount');
});
