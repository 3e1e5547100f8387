// What the process shares among mounts and requests: one CPU profiler and
// one snapshot slot whatever mount asks, the listing gate (one listing at a
// time, eight waiting, then 429), a stalled reader that cannot hold the gate,
// and a host that reads the body first. Gates are held deterministically
// (enterWorkGate), never by hoping requests overlap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import taskprofHttp from 'taskprof/http';
import { cpuProfileRunning } from '../dist/src/profiles/cpu.js';
import { enterWorkGate, workGateState } from '../dist/src/http/work-gate.js';
import { MSG_DEBUG_BUSY } from '../dist/src/errors.js';
import { eventually } from './helpers.mjs';

const mountOptions = { tracking: 'full', heapSnapshot: true, leakDetection: false };

async function get(url, headers = {}) {
  const res = await fetch(url, { headers });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

async function taskprofHttpServer() {
  const handler = taskprofHttp(mountOptions);
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${server.address().port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await handler.close();
    },
  };
}

test('two mounts share one CPU sampler (both profiles served, no inspector error) and one snapshot slot (the second asker gets 429)', async () => {
  const first = await taskprofHttpServer();
  const second = await taskprofHttpServer();
  try {
    const running = get(`${first.base}/debug/pprof/profile?seconds=2`);
    assert.ok(await eventually(() => cpuProfileRunning(), 10_000), 'the first profile runs');
    const joined = await get(`${second.base}/debug/pprof/profile?seconds=1`);
    assert.equal(joined.status, 200, joined.body.toString());
    assert.equal((await running).status, 200);
    const [a, b] = await Promise.all([get(`${first.base}/debug/pprof/heapsnapshot`), get(`${second.base}/debug/pprof/heapsnapshot`)]);
    assert.deepEqual([a.status, b.status].sort(), [200, 429]);
  } finally {
    await Promise.all([first.close(), second.close()]);
  }
});

test('a host that reads the request body before taskprof (raw-body style) still gets its whole delta wait', async () => {
  const handler = taskprofHttp(mountOptions);
  const server = http.createServer(async (req, res) => {
    for await (const _chunk of req); // the body is read: req.destroyed turns true, the client still waits
    handler(req, res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const base = `http://127.0.0.1:${server.address().port}`;
    const started = Date.now();
    const res = await get(`${base}/debug/pprof/tasks?seconds=1&debug=1`);
    assert.equal(res.status, 200, res.body.toString());
    assert.ok(Date.now() - started >= 900, `answered after ${Date.now() - started} ms, not aborted early`);
  } finally {
    await new Promise((resolve) => server.close(resolve));
    await handler.close();
  }
});

test('a client that stops reading a debug=2 dump holds the listing gate for at most a second', { timeout: 60_000 }, async () => {
  const { base, close } = await taskprofHttpServer();
  const held = Array.from({ length: 50_000 }, () => new Promise(() => {}));
  // A dump far larger than the socket buffers, read by nobody.
  const stalled = http.get(`${base}/debug/pprof/tasks?debug=2`, { agent: false }, (res) => res.pause());
  stalled.on('error', () => {});
  try {
    assert.ok(await eventually(() => workGateState().running, 10_000), 'the stalled dump holds the gate');
    const started = Date.now();
    const res = await get(`${base}/debug/pprof/tasks?debug=1`);
    assert.equal(res.status, 200);
    assert.ok(Date.now() - started < 10_000, 'the listing got its turn');
  } finally {
    stalled.destroy();
    held.length = 0;
    await close();
  }
});

test('listings compute one at a time: beyond eight waiting, a listing gets 429 saying why, never a 5xx', async () => {
  const { base, close } = await taskprofHttpServer();
  // The gate held by hand: eight listings queue behind it, the ninth is refused.
  const leave = await enterWorkGate(new AbortController().signal);
  let leaveOnce = leave;
  try {
    const waiting = Array.from({ length: 8 }, () => get(`${base}/debug/pprof/tasks?debug=1`));
    assert.ok(await eventually(() => workGateState().waiting === 8, 10_000), 'eight listings wait');
    const busy = await get(`${base}/debug/pprof/tasks?debug=1`);
    assert.equal(busy.status, 429);
    assert.equal(busy.headers.get('retry-after'), '1');
    assert.equal(busy.body.toString(), MSG_DEBUG_BUSY);
    leave();
    leaveOnce = () => {};
    const answers = await Promise.all(waiting);
    assert.deepEqual(answers.map((a) => a.status), Array(8).fill(200), 'the eight waiting are answered in turn');
  } finally {
    leaveOnce();
    await close();
  }
});
