// Faults: a client that disconnects in the middle of a CPU profile, a heap
// snapshot, a delta wait or a debug=2 stream. On each adapter, on a real
// server on 127.0.0.1: what the request held is released (profiler, snapshot
// slot and its temporary file, delta slot, the dump's generator), the next
// request of the same kind succeeds, and the host app still answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { gunzipSync } from 'node:zlib';
import express from 'express';
import fastify from 'fastify';
import { Profile } from 'pprof-format';
import taskprofExpress from 'taskprof/express';
import taskprofFastify from 'taskprof/fastify';
import taskprofHttp from 'taskprof/http';
import { startTracking, stopTracking, taskCount, trackingSettings } from 'taskprof';
// Internals, to observe the cleanup itself: the same module instances the
// adapters use ('taskprof' resolves to dist/ through the package's exports).
import { post } from '../dist/src/v8/inspector.js';
import { tracker } from '../dist/src/tracker/tracker.js';
import { cpuProfileRunning } from '../dist/src/profiles/cpu.js';
import { deltasInWait } from '../dist/src/profiles/profile.js';
import { workGateState } from '../dist/src/http/work-gate.js';
import { eventually } from './helpers.mjs';

const initialTracking = trackingSettings();
test.after(() => {
  if (initialTracking.mode === 'off') stopTracking();
  else startTracking(initialTracking);
});

const mountOptions = { tracking: 'full', heapSnapshot: true };
const hostRoute = '/app/ping';
const hostBody = 'app ok';

// taskprof's temporary snapshot directories (mkdtemp 'taskprof-' in the system temp directory).
const taskprofTempDirs = () => readdirSync(tmpdir()).filter((name) => /^taskprof-[A-Za-z0-9]{6}$/.test(name));

/** A Fastify host with taskprof and one route of its own; `before` adds hooks ahead of taskprof. */
async function startFastify(options, before = () => {}) {
  const app = fastify();
  before(app);
  await app.register(taskprofFastify, options);
  app.get(hostRoute, async () => hostBody);
  await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    server: app.server,
    close: async () => {
      app.server.closeAllConnections();
      await app.close();
    },
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with `promise`, or rejects saying `what` did not happen within `ms`. */
function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** GET without keep-alive; resolves to { status, headers, body: Buffer }; rejects when no full answer comes within `timeout` ms. */
function get(url, timeout = 10_000, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout, headers }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no complete answer within ${timeout} ms`)));
    req.on('error', reject);
  });
}

/** Starts a GET; `leave()` destroys the client socket, which must not have had an answer yet. */
function startRequest(url, headers = {}) {
  const req = http.get(url, { agent: false, headers });
  req.on('error', () => {});
  let answered;
  req.on('response', (res) => {
    answered = res.statusCode;
    res.resume();
  });
  return {
    leave() {
      assert.equal(answered, undefined, `${url} was answered (${answered}) before the client left`);
      req.destroy();
    },
  };
}

/** Starts a GET, reads the first chunk of a 200 body and destroys the socket; resolves to that chunk. */
function abortAfterFirstChunk(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 30_000 }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`${url}: status ${res.statusCode}`));
        return;
      }
      res.once('data', (chunk) => {
        res.destroy();
        resolve(chunk);
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: no first chunk`)));
    req.on('error', reject);
  });
}

/**
 * Server-side view of requests: `next(prefix)` resolves, once a request whose
 * URL starts with `prefix` arrives, to { res, closed, body }: `closed` settles
 * when the server's response closes, `body` when taskprof pipes a stream into
 * it (the stream itself).
 */
function observe(server) {
  const waiting = [];
  server.on('request', (req, res) => {
    const index = waiting.findIndex((w) => req.url.startsWith(w.prefix));
    if (index === -1) return;
    const [waiter] = waiting.splice(index, 1);
    const closed = new Promise((resolve) => res.once('close', resolve));
    const body = new Promise((resolve) => res.once('pipe', resolve));
    waiter.resolve({ res, closed, body });
  });
  return (prefix) => new Promise((resolve) => waiting.push({ prefix, resolve }));
}

function listening(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function closeServer(server) {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

const adapters = [
  {
    name: 'express',
    async start() {
      const app = express();
      app.use(taskprofExpress(mountOptions));
      app.get(hostRoute, (req, res) => res.send(hostBody));
      const server = await listening(http.createServer(app));
      return { server, close: () => closeServer(server) };
    },
  },
  {
    name: 'node:http (taskprof/http)',
    async start() {
      const debug = taskprofHttp(mountOptions);
      const server = await listening(
        http.createServer((req, res) =>
          debug(req, res, () => {
            res.statusCode = req.url === hostRoute ? 200 : 404;
            res.end(req.url === hostRoute ? hostBody : 'app 404');
          }),
        ),
      );
      return { server, close: () => closeServer(server) };
    },
  },
  {
    name: 'fastify',
    start: () => startFastify(mountOptions),
  },
];

/** The host app's own route still answers. */
async function assertHostServes(base) {
  const res = await get(base + hostRoute, 5000);
  assert.equal(res.status, 200, 'the host app route answers');
  assert.equal(res.body.toString(), hostBody);
}

/** Whether taskprof's inspector session is recording a CPU profile (a probe that stops it if so). */
async function cpuProfilerRecording() {
  try {
    await post('Profiler.stop');
    return true;
  } catch (error) {
    assert.match(error.message, /No recording profiles found/);
    return false;
  }
}

/**
 * Counts the task records the debug=2 dump reads: wraps tracker.records() for
 * calls made by the dump's generator (dumpChunks), so that a dump that goes
 * on after its client left shows as a growing count. Returns { count, length, restore }.
 */
function countDumpReads() {
  const original = tracker.records;
  const seen = { reads: 0, length: undefined, calls: 0 };
  const ownBefore = Object.hasOwn(tracker, 'records');
  tracker.records = function records(...args) {
    const list = original.apply(this, args);
    if (!/\bdumpChunks\b/.test(new Error().stack ?? '')) return list;
    seen.calls++;
    seen.length = list.length;
    return new Proxy(list, {
      get(target, key, receiver) {
        if (typeof key === 'string' && /^\d+$/.test(key)) seen.reads++;
        return Reflect.get(target, key, receiver);
      },
    });
  };
  return {
    seen,
    restore: () => {
      if (ownBefore) tracker.records = original;
      else delete tracker.records;
    },
  };
}

for (const adapter of adapters) {
  test(`faults on ${adapter.name}: a client that leaves mid-request is cleaned up and the next request succeeds`, async (t) => {
    const app = await adapter.start();
    const base = `http://127.0.0.1:${app.server.address().port}`;
    const next = observe(app.server);
    try {
      await assertHostServes(base);

      await t.test('CPU profile: the client leaves while a 30 s profile records', async () => {
        const seen = next('/debug/pprof/profile');
        const client = startRequest(`${base}/debug/pprof/profile?seconds=30`);
        const server = await seen;
        assert.ok(await eventually(() => cpuProfileRunning(), 5000), 'the profile started');
        client.leave();
        await within(5000, server.closed, 'the server saw the client leave');
        // The abort ends the sleep and stops the profiler in a few microtasks and inspector calls.
        assert.ok(await eventually(() => !cpuProfileRunning(), 5000), 'the profiler stopped');
        assert.equal(await cpuProfilerRecording(), false, 'no CPU profile is left recording in the inspector session');

        const started = Date.now();
        const res = await get(`${base}/debug/pprof/profile?seconds=1`, 10_000);
        assert.equal(res.status, 200, `the next profile runs (not 429 busy): ${res.body.toString().slice(0, 200)}`);
        assert.ok(Date.now() - started < 10_000);
        assert.equal(res.headers['content-disposition'], 'attachment; filename="profile"');
        const profile = Profile.decode(gunzipSync(res.body));
        const str = (i) => profile.stringTable.strings[Number(i)];
        assert.deepEqual(
          profile.sampleType.map((s) => `${str(s.type)}/${str(s.unit)}`),
          ['samples/count', 'cpu/nanoseconds'],
        );
        assert.equal(await cpuProfilerRecording(), false, 'and that profile stopped too');
        await assertHostServes(base);
      });

      await t.test('heap snapshot: the client leaves after the first chunk', async () => {
        const tempDirsBefore = taskprofTempDirs();
        const seen = next('/debug/pprof/heapsnapshot');
        const first = await abortAfterFirstChunk(`${base}/debug/pprof/heapsnapshot`);
        assert.ok(first.toString('utf8').startsWith('{"snapshot":'), 'the first chunk is the snapshot');
        const server = await seen;
        const body = await within(5000, server.body, 'the snapshot was streamed');
        await within(5000, server.closed, 'the server saw the client leave');
        // The file stream is destroyed, which releases the slot and removes the temporary file.
        if (!body.closed) await within(5000, new Promise((resolve) => body.once('close', resolve)), 'the snapshot file stream closed');
        assert.equal(body.readableEnded, false, 'the stream was cut short, not read to its end');
        const left = taskprofTempDirs().filter((dir) => !tempDirsBefore.includes(dir));
        assert.deepEqual(left, [], 'the temporary snapshot directory is removed');

        const res = await get(`${base}/debug/pprof/heapsnapshot`, 60_000);
        assert.equal(res.status, 200, `the next snapshot is taken (not 429 busy): ${res.body.toString().slice(0, 200)}`);
        const text = res.body.toString('utf8');
        assert.ok(text.startsWith('{"snapshot":'), 'starts as a heap snapshot');
        const snapshot = JSON.parse(text);
        const { meta, node_count: nodeCount } = snapshot.snapshot;
        assert.equal(snapshot.nodes.length, nodeCount * meta.node_fields.length, 'complete: every node is there');
        await assertHostServes(base);
      });

      await t.test('delta wait: clients leave while tasks?seconds=20 and heap?seconds=20 wait', async () => {
        const seenTasks = next('/debug/pprof/tasks');
        const seenHeap = next('/debug/pprof/heap');
        const clients = [startRequest(`${base}/debug/pprof/tasks?seconds=20&debug=1`), startRequest(`${base}/debug/pprof/heap?seconds=20&debug=1`)];
        const servers = await Promise.all([seenTasks, seenHeap]);
        assert.ok(await eventually(() => deltasInWait() === 2, 5000), 'both wait');
        for (const client of clients) client.leave();
        await within(5000, Promise.all(servers.map((s) => s.closed)), 'the server saw both clients leave');
        assert.ok(await eventually(() => workGateState().deltas === 0, 5000), 'the aborted waits gave their slots back');

        // maxDeltaWaits is 8: a slot still held by an aborted wait turns one of these into 429.
        const paths = Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? '/debug/pprof/tasks?seconds=1&debug=1' : '/debug/pprof/heap?seconds=1&debug=1'));
        const arrived = paths.map((p) => next(p.slice(0, p.indexOf('?'))));
        const waits = paths.map((p) => get(base + p, 10_000));
        // While the eight wait, a ninth is refused: the cap is what the eight prove free.
        await within(5000, Promise.all(arrived), 'the eight delta requests reached the server');
        assert.ok(await eventually(() => deltasInWait() === 8, 5000), 'the eight are waiting');
        const ninth = await get(`${base}/debug/pprof/tasks?seconds=1&debug=1`, 10_000);
        assert.equal(ninth.status, 429, 'the cap holds: a ninth concurrent delta wait is refused');
        const results = await Promise.all(waits);
        assert.deepEqual(
          results.map((r) => r.status),
          Array(8).fill(200),
          results.map((r) => r.body.toString().split('\n')[0]).join(' | '),
        );
        assert.match(results[0].body.toString(), /^tasks profile: total \d+.*; delta over 1s: /);
        assert.match(results[1].body.toString(), /^heap profile: /);
        await assertHostServes(base);
      });

      await t.test('debug=2 stream: the client leaves after the first chunk of a 50,000-task dump', async (st) => {
        const resolvers = [];
        const counter = countDumpReads();
        try {
          for (let i = 0; i < 50_000; i++) new Promise((resolve) => resolvers.push(resolve)); // HELD TASK
          assert.ok(taskCount() >= 50_000, `tracked tasks: ${taskCount()}`);

          const seen = next('/debug/pprof/tasks');
          const first = await abortAfterFirstChunk(`${base}/debug/pprof/tasks?debug=2`);
          assert.match(first.toString('utf8'), /^tasks profile: total \d+/);
          const server = await seen;
          const body = await within(5000, server.body, 'the dump was streamed');
          await within(5000, server.closed, 'the server saw the client leave');
          if (!body.closed) await within(5000, new Promise((resolve) => body.once('close', resolve)), 'the dump stream closed');
          assert.equal(body.destroyed, true, 'the dump stream is destroyed');
          assert.equal(body.readableEnded, false, 'the dump was cut short, not generated to its end');
          assert.equal(counter.seen.calls, 1);
          const readsAtClose = counter.seen.reads;
          // Nothing to wait for: that nothing more happens is watched for a while.
          await sleep(300);
          assert.equal(counter.seen.reads, readsAtClose, 'no task is formatted after the client left');
          // Every record is read once up front (which promises a flow folds in: links only, nothing formatted), then once more as it is formatted.
          const formatted = readsAtClose - counter.seen.length;
          assert.ok(formatted < counter.seen.length, `the dump stopped early: ${formatted} of ${counter.seen.length} records formatted`);
          st.diagnostic(`dump stopped after formatting ${formatted} of ${counter.seen.length} records`);
          counter.restore();

          const res = await get(`${base}/debug/pprof/tasks?debug=2&format=json`, 60_000);
          assert.equal(res.status, 200);
          const dump = JSON.parse(res.body.toString('utf8'));
          assert.equal(dump.truncated, 0, 'complete: nothing left out');
          assert.ok(dump.tasks.length >= 50_000, `${dump.tasks.length} tasks listed`);
          st.diagnostic(`complete dump: ${dump.tasks.length} tasks, ${res.body.length} bytes`);
          await assertHostServes(base);
        } finally {
          counter.restore();
          for (const resolve of resolvers) resolve();
        }
      });
    } finally {
      await app.close();
    }
  });
}

// A client that leaves while the request is still in the app's hands ahead
// of taskprof (an async middleware, an async onRequest hook, a host that
// awaits before calling the handler): the response has closed before serve()
// is called, so its 'close' never comes. Found by this file as a bug (the CPU
// profile ran its full length for nobody, the next one was 429, and the delta
// wait held its slot to the end); serve() now aborts at once when the response
// is already closed. Access is granted by `authorize`, which also tells the
// test that taskprof got each request: with the default loopback-only access
// the gone socket's undefined remoteAddress makes them a 403 anyway, which
// hid the bug.
const orphanSeconds = 3;

/** The app's hold on each request ahead of taskprof (a session or auth lookup, say), released by the test. */
function hostHold() {
  let release;
  const released = new Promise((resolve) => (release = resolve));
  const hold = {
    arrived: 0,
    release,
    async wait() {
      hold.arrived++;
      await released;
    },
  };
  return hold;
}

const earlyAdapters = [
  {
    name: 'express (an async middleware ahead of taskprof)',
    async start(options, hold) {
      const app = express();
      app.use(async (req, res, next) => {
        await hold.wait();
        next();
      });
      app.use(taskprofExpress(options));
      app.get(hostRoute, (req, res) => res.send(hostBody));
      const server = await listening(http.createServer(app));
      return { server, close: () => closeServer(server) };
    },
  },
  {
    name: 'fastify (an async onRequest hook ahead of taskprof)',
    start: (options, hold) => startFastify(options, (app) => app.addHook('onRequest', () => hold.wait())),
  },
  {
    name: 'node:http (the host awaits before calling the handler)',
    async start(options, hold) {
      const debug = taskprofHttp(options);
      const server = await listening(
        http.createServer(async (req, res) => {
          await hold.wait();
          debug(req, res, () => {
            res.statusCode = req.url === hostRoute ? 200 : 404;
            res.end(req.url === hostRoute ? hostBody : 'app 404');
          });
        }),
      );
      return { server, close: () => closeServer(server) };
    },
  },
];

for (const adapter of earlyAdapters) {
  test(
    `faults on ${adapter.name}: a client that leaves before taskprof gets its request leaves no CPU profile or delta wait behind`,
    async () => {
      const hold = hostHold();
      let reached = 0;
      const options = {
        tracking: 'full',
        authorize: () => {
          reached++;
          return true;
        },
      };
      const app = await adapter.start(options, hold);
      const next = observe(app.server);
      const base = `http://127.0.0.1:${app.server.address().port}`;
      try {
        // Both clients leave while the app holds their requests.
        const seen = [next('/debug/pprof/profile'), next('/debug/pprof/tasks')];
        const clients = [startRequest(`${base}/debug/pprof/profile?seconds=${orphanSeconds}`), startRequest(`${base}/debug/pprof/tasks?seconds=${orphanSeconds}&debug=1`)];
        const servers = await Promise.all(seen);
        assert.ok(await eventually(() => hold.arrived === 2, 5000), 'the app holds both requests');
        for (const client of clients) client.leave();
        await within(5000, Promise.all(servers.map((server) => server.closed)), 'the server saw both clients leave');
        hold.release();
        assert.ok(await eventually(() => reached === 2, 5000), 'taskprof got both requests');
        // Had they started, the profile and the wait would hold for orphanSeconds (3 s).
        assert.ok(await eventually(() => !cpuProfileRunning() && deltasInWait() === 0, 1500), 'the gone clients hold no profiler and no delta slot');
        const [cpu, ...deltas] = await Promise.all([
          get(`${base}/debug/pprof/profile?seconds=1`, 10_000),
          ...Array.from({ length: 8 }, () => get(`${base}/debug/pprof/tasks?seconds=1&debug=1`, 10_000)),
        ]);
        assert.deepEqual(
          { cpu: cpu.status, deltas: deltas.map((r) => r.status) },
          { cpu: 200, deltas: Array(8).fill(200) },
          `the gone clients still hold the profiler or a delta slot: ${cpu.body.toString().trim()}`,
        );
        assert.equal(await cpuProfilerRecording(), false, 'no CPU profile is left recording');
        const host = await get(base + hostRoute, 5000);
        assert.equal(host.status, 200);
      } finally {
        hold.release();
        // On failure, an orphaned profile or wait must not outlive this test.
        await eventually(() => !cpuProfileRunning() && deltasInWait() === 0, orphanSeconds * 1000 + 2000);
        await app.close();
      }
    },
  );
}
