// One conformance table run against every adapter on a real server on
// 127.0.0.1: leaks are named at their exact line with route labels, settled
// tasks leave, errors and access rules match the core handler's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import supertest from 'supertest';
import { Profile } from 'pprof-format';
import { adapters, closeCaches } from './fixtures/apps.mjs';
import { errorCases } from './fixtures/error-cases.mjs';
import { binaryParser, eventually, fixturesDir, parseGroups, rawRequest, sourcePosition } from './helpers.mjs';

const fixture = path.join(fixturesDir, 'leaky-app.mjs');
const intervalLine = sourcePosition(fixture, 'LEAK: interval', 'setInterval(');
const neverLine = sourcePosition(fixture, 'LEAK: never settles', 'new Promise');

// What a group's labels look like on each adapter: the route where the
// framework has one, the method for plain node:http, none on the own port.
function labelsPattern(adapter, route) {
  if (adapter.ownPort) return '';
  if (!adapter.routeLabels) return ' \\{method="GET"\\}';
  return ` \\{method="GET", route="${route}"\\}`;
}


// Full mode, and the default sampled mode (every stack captured at this load), so that
// counts are exact in both.
const modes = [{ tracking: 'full' }, { tracking: 'sampled' }];

for (const mode of modes) for (const adapter of adapters) {
  test(`${adapter.name}, ${mode.tracking} mode`, async (t) => {
    const app = await adapter.start(mode);
    const debug = () => supertest(app.supertestTarget);
    const hanging = [];
    try {
      await t.test('a leaked interval shows at its exact line, counted per instance, with route labels', async () => {
        const before = parseGroups((await debug().get('/debug/pprof/tasks?debug=1')).text).filter((g) => g.frames.includes(intervalLine));
        assert.equal(before.length, 0);
        for (let i = 0; i < 6; i++) {
          const res = await fetch(`${app.appUrl}/cache/k${i}`);
          assert.equal(res.status, 200);
          await res.text();
        }
        const res = await debug().get('/debug/pprof/tasks?debug=1').expect(200);
        assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
        assert.equal(res.headers['cache-control'], 'no-store');
        assert.equal(res.headers['x-content-type-options'], 'nosniff');
        const groups = parseGroups(res.text).filter((g) => g.frames.includes(intervalLine));
        assert.equal(groups.length, 1, res.text);
        assert.equal(groups[0].count, 6);
        assert.equal(groups[0].frames[0], intervalLine);
        assert.match(groups[0].head, new RegExp(`^6 @ Timeout setInterval\\(60000ms\\) oldest [0-9.]+m?s${labelsPattern(adapter, '/cache/:key')}$`));
      });

      await t.test('/debug/metrics counts the leak by type and by route', async () => {
        const metric = async (pattern) => {
          const res = await debug().get('/debug/metrics').expect(200);
          assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
          return Number(res.text.match(pattern)?.[1] ?? NaN);
        };
        // Handle counts outside full mode are read by the background sweep (every 2 s), not by the scrape.
        const timers = await eventually(async () => {
          const n = await metric(/^taskprof_tasks\{type="Timeout"\} (\d+)$/m);
          return n >= 6 ? n : 0;
        }, 3000);
        assert.ok(timers >= 6, `Timeout gauge ${timers}`);
        if (adapter.routeLabels) {
          // The six intervals, and any short timer Node made for those requests (the Date header cache, say).
          const byRoute = await metric(/^taskprof_tasks_by_route\{method="GET",route="\/cache\/:key"\} (\d+)$/m);
          assert.ok(byRoute >= 6, `by route ${byRoute}`);
        }
        const leaks = await debug().get('/debug/pprof/leaks?debug=1').expect(200);
        assert.match(leaks.text, /^leaks profile: \d+ growing group/);
      });

      await t.test('a handler awaiting a promise that never settles shows the line and its route', async () => {
        for (let i = 0; i < 3; i++) {
          const req = http.get(`${app.appUrl}/hang`);
          req.on('error', () => {});
          hanging.push(req);
        }
        const group = await eventually(async () => {
          const text = (await debug().get('/debug/pprof/tasks?debug=1')).text;
          const labels = new RegExp(labelsPattern(adapter, '/hang') + '$');
          return parseGroups(text).find((g) => g.frames[0] === neverLine && g.count === 3 && labels.test(g.head));
        });
        assert.ok(group, 'three hanging handlers waiting at the never-settling promise, labelled');
      });

      await t.test('cleared tasks disappear', async () => {
        closeCaches();
        const text = (await debug().get('/debug/pprof/tasks?debug=1')).text;
        assert.equal(parseGroups(text).filter((g) => g.frames.includes(intervalLine)).length, 0);
      });

      await t.test('debug=0 (also as /goroutine) decodes as a profile', async () => {
        for (const name of ['tasks', 'goroutine']) {
          const res = await debug().get(`/debug/pprof/${name}`).buffer(true).parse(binaryParser).expect(200);
          assert.equal(res.headers['content-type'], 'application/octet-stream');
          assert.equal(res.headers['content-disposition'], `attachment; filename="${name}"`);
          const profile = Profile.decode(gunzipSync(res.body));
          assert.equal(profile.stringTable.strings[Number(profile.sampleType[0].type)], 'tasks');
          assert.ok(profile.sample.length > 0);
        }
      });

      await t.test('errors: every case of the shared table, with its exact body', async () => {
        for (const { name, path, method = 'GET', headers = {}, remoteAddress, status, body, allow } of errorCases) {
          if (remoteAddress !== undefined) continue; // the client here is always 127.0.0.1
          // Sent as written: supertest would normalise dot segments.
          const res = await rawRequest(app.debugUrl, path, { method, headers });
          assert.equal(res.status, status, name);
          assert.equal(res.body, body, name);
          assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8', name);
          assert.equal(res.headers['content-disposition'], undefined, name);
          assert.equal(res.headers.allow, allow, name);
        }
      });

      await t.test('HEAD, JSON, cmdline and index', async () => {
        const head = await debug().head('/debug/pprof/tasks?debug=1').expect(200);
        assert.equal(head.text, undefined);
        const json = await debug().get('/debug/pprof/tasks?debug=1&format=json').expect(200);
        assert.equal(typeof json.body.total, 'number');
        const dump = await debug().get('/debug/pprof/tasks?debug=2').set('Accept', 'application/json').expect(200);
        assert.ok(Array.isArray(dump.body.tasks));
        const cmdline = await debug().get('/debug/pprof/cmdline').expect(200);
        assert.equal(cmdline.text, process.argv.join('\0'));
        const index = await debug().get('/debug/pprof/').expect(200);
        assert.match(index.text, /<a href="tasks\?debug=1">tasks<\/a>/);
        const vars = await debug().get('/debug/vars').expect(200);
        assert.equal(vars.body.pid, process.pid);
      });

      if (!adapter.ownPort) {
        await t.test('other paths, even under the prefix, belong to the app', async () => {
          const res = await fetch(`${app.appUrl}/debug/health`);
          assert.equal(await res.text(), 'app health');
        });
      }
    } finally {
      for (const req of hanging) req.destroy();
      closeCaches();
      await app.close();
    }
  });
}

test('token and authorize through a real adapter', async () => {
  const [express5] = adapters;
  const app = await express5.start({ token: 'tok-123' });
  try {
    await supertest(app.supertestTarget).get('/debug/pprof/').expect(401);
    await supertest(app.supertestTarget).get('/debug/pprof/').set('Authorization', 'Bearer tok-123').expect(200);
  } finally {
    await app.close();
  }
});

test('Express routers: the route label is the full template, mount path included', async () => {
  const { default: express } = await import('express');
  const { default: taskprof } = await import('taskprof/express');
  const { startTracking } = await import('taskprof');
  const app = express();
  app.use(taskprof({ tracking: 'full' }));
  const api = express.Router();
  const timers = [];
  api.get('/items/:id', (req, res) => {
    timers.push(setInterval(() => {}, 4321)); // ROUTER TIMER
    res.send('ok');
  });
  app.use('/api', api);
  try {
    await supertest(app).get('/api/items/7').expect(200);
    const text = (await supertest(app).get('/debug/pprof/tasks?debug=1')).text;
    const group = parseGroups(text).find((g) => g.head.includes('setInterval(4321ms)'));
    assert.match(group.head, /\{method="GET", route="\/api\/items\/:id"\}$/);
  } finally {
    timers.forEach(clearInterval);
    startTracking({ mode: 'full' });
  }
});

test('Fastify: closing the app ends a CPU profile in flight at once', async () => {
  const { default: fastify } = await import('fastify');
  const { default: taskprofFastify } = await import('taskprof/fastify');
  const app = fastify();
  await app.register(taskprofFastify);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${app.server.address().port}/debug/pprof/profile?seconds=60`;
  // No keep-alive: once answered, the connection closes and does not hold close() for its idle timeout.
  const request = http.get(url, { agent: false });
  request.on('error', () => {});
  const { cpuProfileRunning } = await import('../dist/src/profiles/cpu.js');
  assert.ok(await eventually(() => cpuProfileRunning(), 10_000), 'the profile runs');
  const started = Date.now();
  // The client is still connected: only the onClose hook can end the profile early.
  await app.close();
  assert.ok(Date.now() - started < 5000, `closed in ${Date.now() - started} ms`);
  request.destroy();
  // The profiler is free again for the next app in this process.
  const next = fastify();
  await next.register(taskprofFastify);
  const res = await next.inject({ method: 'GET', url: '/debug/pprof/profile?seconds=1', remoteAddress: '127.0.0.1' });
  assert.equal(res.statusCode, 200);
  await next.close();
});
