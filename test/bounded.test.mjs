// Bounded cost and clear answers at the edges: the query is read once,
// deltas share the process-wide listing gate and cap, a switched-off
// profile answers 404 before any queue, heap snapshots answer HEAD, refuse
// unusable memory figures and cut off stalled readers, an unmount says why
// a request ended, and a body that fails gets a plain 500 or a cut connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import v8 from 'node:v8';
import express from 'express';
import fastify from 'fastify';
import { Profile } from 'pprof-format';
import taskprof from 'taskprof/express';
import { listen } from 'taskprof/http';
import { createDebugHandler } from '../dist/src/http/handler.js';
import { resolveOptions } from '../dist/src/options.js';
import { enterWorkGate, workGateState } from '../dist/src/http/work-gate.js';
import { MSG_LEAKS_OFF } from '../dist/src/errors.js';
import { MSG_DELTA_UNMOUNTED } from '../dist/src/errors.js';
import { writeResponse } from '../dist/src/http/writer.js';
import { cpuProfileRunning } from '../dist/src/profiles/cpu.js';
import { bodyText, eventually } from './helpers.mjs';

function request(url, signal = new AbortController().signal, method = 'GET') {
  return { method, url, headers: {}, remoteAddress: '127.0.0.1', native: undefined, signal };
}

/** Holds the listing gate with `waiting` listings queued behind it; returns the release. */
async function fillGate(handler, waiting) {
  const leave = await enterWorkGate(new AbortController().signal);
  const controller = new AbortController();
  const queued = Array.from({ length: waiting }, () => handler.handle(request('/debug/pprof/tasks?debug=1', controller.signal)));
  assert.ok(await eventually(() => workGateState().waiting === waiting), 'the listings queue behind the gate');
  return async () => {
    controller.abort();
    leave();
    await Promise.all(queued);
  };
}

test('repeated parameters are found in one pass over the query', async () => {
  const handler = createDebugHandler(resolveOptions({ leakDetection: false }));
  const keys = Array.from({ length: 3800 }, (_, i) => `k${i}=1`).join('&');
  let reads = 0;
  const { getAll, get } = URLSearchParams.prototype;
  URLSearchParams.prototype.getAll = function (...args) {
    reads++;
    return getAll.apply(this, args);
  };
  URLSearchParams.prototype.get = function (...args) {
    reads++;
    return get.apply(this, args);
  };
  try {
    const response = await handler.handle(request(`/debug/pprof/tasks?debug=1&${keys}`));
    assert.equal(response.status, 200);
    await bodyText(response.body);
    const repeated = await handler.handle(request(`/debug/pprof/tasks?${keys}&k3799=2`));
    assert.equal(repeated.status, 400);
    assert.equal(await bodyText(repeated.body), 'parameter "k3799" may be given only once\n');
  } finally {
    URLSearchParams.prototype.getAll = getAll;
    URLSearchParams.prototype.get = get;
  }
  // A handful of named reads, not one per key.
  assert.ok(reads < 20, `${reads} reads of a 3,800-key query`);
});

test('a delta takes its listing through the process-wide gate, and at most 8 wait in the process', async () => {
  const first = createDebugHandler(resolveOptions({ leakDetection: false }));
  const second = createDebugHandler(resolveOptions({ leakDetection: false }));
  // With the gate full, a delta's first listing is refused like any listing.
  const release = await fillGate(first, 8);
  try {
    const refused = await second.handle(request('/debug/pprof/tasks?seconds=1'));
    assert.equal(refused.status, 429);
    assert.match(await bodyText(refused.body), /^Too many requests: too many listings and profiles are queued/);
  } finally {
    await release();
  }
  // Eight waiting deltas on one mount: a ninth on another mount is refused.
  const controller = new AbortController();
  const waiting = Array.from({ length: 8 }, () => first.handle(request('/debug/pprof/tasks?seconds=30', controller.signal)));
  try {
    assert.ok(await eventually(() => workGateState().deltas === 8));
    const ninth = await second.handle(request('/debug/pprof/tasks?seconds=30'));
    assert.equal(ninth.status, 429);
    assert.equal(await bodyText(ninth.body), 'Too many requests: too many delta profiles are waiting; try again later\n');
  } finally {
    controller.abort();
    await Promise.all(waiting);
  }
  assert.equal(workGateState().deltas, 0);
});

test('a switched-off leaks profile answers 404 at once, even with the gate full', async () => {
  const handler = createDebugHandler(resolveOptions({ leakDetection: false }));
  const release = await fillGate(handler, 8);
  try {
    for (const path of ['/debug/pprof/leaks', '/debug/pprof/leaks?debug=1', '/debug/pprof/goroutineleak']) {
      const response = await handler.handle(request(path));
      assert.equal(response.status, 404, path);
      assert.equal(await bodyText(response.body), MSG_LEAKS_OFF);
    }
  } finally {
    await release();
  }
});

test('heap snapshots: HEAD takes none, an unusable memory figure is refused with 507, a stalled reader is cut off', { timeout: 120_000 }, async () => {
  let snapshots = 0;
  const { writeHeapSnapshot } = v8;
  v8.writeHeapSnapshot = (...args) => {
    snapshots++;
    return writeHeapSnapshot.apply(v8, args);
  };
  try {
    for (const [availableMemory, reason] of [
      [() => NaN, /the availableMemory option returned NaN, not a number of bytes/],
      [() => Infinity, /returned Infinity/],
      [() => { throw new Error('cgroup unreadable'); }, /the availableMemory option threw \(cgroup unreadable\)/],
    ]) {
      const handler = createDebugHandler(resolveOptions({ heapSnapshot: true, availableMemory, leakDetection: false }));
      const response = await handler.handle(request('/debug/pprof/heapsnapshot'));
      assert.equal(response.status, 507);
      const body = await bodyText(response.body);
      assert.match(body, /^Insufficient storage: a heap snapshot needs about \d+ MiB \(10 times the used heap\), and /);
      assert.match(body, reason);
      assert.match(response.headers['Content-Type'], /^text\/plain/);
    }
    assert.equal(snapshots, 0);

    const server = await listen({ heapSnapshot: true, leakDetection: false });
    const { port } = server.address();
    try {
      const head = await new Promise((resolve, reject) => {
        http.request({ host: '127.0.0.1', port, path: '/debug/pprof/heapsnapshot', method: 'HEAD' }, (res) => {
          res.resume();
          res.on('end', () => resolve(res));
        }).on('error', reject).end();
      });
      assert.equal(head.statusCode, 200);
      assert.match(head.headers['content-disposition'], /^attachment; filename="heap-\d+-\d+\.heapsnapshot"$/);
      assert.equal(snapshots, 0, 'HEAD took no snapshot');

      // A client that reads the headers and then nothing.
      const stalled = await new Promise((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: '/debug/pprof/heapsnapshot' }, resolve).on('error', reject);
      });
      assert.equal(stalled.statusCode, 200);
      stalled.pause();
      const busy = await fetch(`http://127.0.0.1:${port}/debug/pprof/heapsnapshot`);
      assert.equal(busy.status, 429, 'one snapshot at a time');
      await busy.text();
      // Cut off after 30 s without progress (the paused client never sees
      // the end): the lock is free again.
      const after = await eventually(async () => {
        const res = await fetch(`http://127.0.0.1:${port}/debug/pprof/heapsnapshot`);
        if (res.status === 200) return res;
        assert.equal(res.status, 429);
        await res.text();
        return undefined;
      }, 60_000);
      assert.ok(after, 'the stalled reader was cut off and the lock freed');
      JSON.parse(await after.text());
      stalled.destroy();
      assert.equal(snapshots, 2);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  } finally {
    v8.writeHeapSnapshot = writeHeapSnapshot;
  }
});

test('closing the mount mid-request says so: a waiting delta gets 503 saying unmounted, a CPU profile says it was cut short', async () => {
  const app = express();
  const middleware = taskprof({ leakDetection: false });
  app.use(middleware);
  const server = http.createServer(app);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  try {
    const delta = fetch(`${base}/debug/pprof/tasks?seconds=20&debug=1`);
    const profile = fetch(`${base}/debug/pprof/profile?seconds=20`);
    assert.ok(await eventually(() => workGateState().deltas === 1));
    assert.ok(await eventually(() => cpuProfileRunning()), 'the CPU profile runs');
    await middleware.close();
    const deltaResponse = await delta;
    assert.equal(deltaResponse.status, 503);
    assert.equal(await deltaResponse.text(), MSG_DELTA_UNMOUNTED);
    const profileResponse = await profile;
    assert.equal(profileResponse.status, 200);
    const note = profileResponse.headers.get('x-taskprof-cut-short');
    assert.match(note, /^cut short after [0-9.]+ s of the 20 s asked for: taskprof was unmounted/);
    const decoded = Profile.decode(gunzipSync(Buffer.from(await profileResponse.arrayBuffer())));
    assert.ok(decoded.comment.map((i) => decoded.stringTable.strings[i]).includes(note));
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

// A body stream that fails before its first byte, or after one.
function failingBody(afterFirstChunk) {
  return new Readable({
    read() {
      if (afterFirstChunk && !this.sent) {
        this.sent = true;
        this.push('first chunk\n');
        return;
      }
      setImmediate(() => this.destroy(new Error('the listing failed')));
    },
  });
}

const writers = {
  'node:http': async (respond) => {
    const server = http.createServer((_req, res) => respond(res));
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { port: server.address().port, close: () => new Promise((resolve) => server.close(resolve)) };
  },
  express: async (respond) => {
    const app = express();
    app.get('/', (_req, res) => respond(res));
    const server = http.createServer(app);
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { port: server.address().port, close: () => new Promise((resolve) => server.close(resolve)) };
  },
  fastify: async (respond) => {
    const app = fastify();
    app.get('/', (_request, reply) => {
      reply.hijack();
      respond(reply.raw);
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    return { port: app.server.address().port, close: () => app.close() };
  },
};

for (const [name, start] of Object.entries(writers)) {
  test(`${name}: a body that fails before its first byte gets a plain 500; after it, a cut connection`, async () => {
    let afterFirstChunk = false;
    const server = await start((res) =>
      writeResponse(res, { status: 200, headers: { 'Content-Type': 'application/octet-stream', 'Content-Disposition': 'attachment; filename="tasks"' }, body: failingBody(afterFirstChunk) }, false),
    );
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/`);
      assert.equal(res.status, 500);
      assert.equal(res.headers.get('content-disposition'), null);
      assert.equal(res.headers.get('content-type'), 'text/plain; charset=utf-8');
      assert.equal(await res.text(), 'Internal error in taskprof; see the server log\n');
      afterFirstChunk = true;
      const cut = await fetch(`http://127.0.0.1:${server.port}/`);
      assert.equal(cut.status, 200);
      await assert.rejects(cut.text(), /terminated|other side closed|aborted/i);
    } finally {
      await server.close();
    }
  });
}
