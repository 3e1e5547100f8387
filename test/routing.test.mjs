// Labels and mounts as apps structure them: Express routers mounted on
// parameterised paths label the full template (never a raw value), and the
// Fastify plugin registered inside a prefixed plugin serves under the prefix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import taskprofExpress from 'taskprof/express';
import taskprofFastify from 'taskprof/fastify';
import { startTracking } from 'taskprof';
import { parseGroups } from './helpers.mjs';

for (const pkg of ['express', 'express4']) {
  test(`${pkg}: routers on parameterised mounts label the full template, and 150 tenants are one route`, async () => {
    const { default: express } = await import(pkg);
    const app = express();
    // A budget no loaded machine exhausts here: the test is about labels, not sampling.
    app.use(taskprofExpress({ tracking: 'sampled', stackBudget: 1, leakDetection: false }));
    const held = [];
    const orders = express.Router();
    orders.get('/orders/:order', (_req, res) => {
      held.push(setInterval(() => {}, 6161)); // TENANT TIMER
      res.send('ok');
    });
    const items = express.Router();
    items.get('/items/:item', (_req, res) => {
      held.push(setInterval(() => {}, 6262));
      res.send('ok');
    });
    orders.use('/shop/:shop-:lang', items);
    app.use('/t/:tenant', orders);
    const admin = express();
    admin.get('/users/:id', (_req, res) => {
      held.push(setInterval(() => {}, 6363));
      res.send('ok');
    });
    app.use('/admin/:region', admin);
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const base = `http://127.0.0.1:${server.address().port}`;
    try {
      for (let i = 0; i < 150; i++) await (await fetch(`${base}/t/customer-${i}@example.com/orders/${i}`)).text();
      await (await fetch(`${base}/t/customer-1@example.com/shop/7-en/items/3`)).text();
      await (await fetch(`${base}/admin/eu-west/users/42`)).text();
      const groups = parseGroups(await (await fetch(`${base}/debug/pprof/tasks?debug=1`)).text());
      const head = (ms) => groups.filter((g) => g.head.includes(`setInterval(${ms}ms)`)).map((g) => g.head.replace(/oldest \S+ /, ''));
      assert.deepEqual(head(6161), ['150 @ Timeout setInterval(6161ms) {method="GET", route="/t/:tenant/orders/:order"}']);
      assert.deepEqual(head(6262), ['1 @ Timeout setInterval(6262ms) {method="GET", route="/t/:tenant/shop/:shop-:lang/items/:item"}']);
      assert.deepEqual(head(6363), ['1 @ Timeout setInterval(6363ms) {method="GET", route="/admin/:region/users/:id"}']);
      const metrics = await (await fetch(`${base}/debug/metrics`)).text();
      const series = metrics.split('\n').filter((line) => line.startsWith('taskprof_tasks_by_route'));
      assert.ok(!series.some((line) => /example\.com|route="other"/.test(line)), series.join('\n'));
      assert.ok(Number(metrics.match(/taskprof_tasks_by_route\{method="GET",route="\/t\/:tenant\/orders\/:order"\} (\d+)/)?.[1]) >= 150, series.join('\n'));
    } finally {
      held.forEach(clearInterval);
      await new Promise((resolve) => server.close(resolve));
      startTracking({ mode: 'sampled' });
    }
  });
}

for (const pkg of ['fastify', 'fastify4']) {
  test(`${pkg}: registered inside a prefixed plugin, the endpoints are under its prefix`, async () => {
    const { default: fastify } = await import(pkg);
    const app = fastify();
    await app.register(
      async (scope) => {
        await scope.register(taskprofFastify, { leakDetection: false });
        scope.get('/ping', async () => 'pong');
      },
      { prefix: '/admin' },
    );
    app.get('/debug/pprof/tasks', async () => 'the app\'s own route');
    await app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${app.server.address().port}`;
    try {
      const tasks = await fetch(`${base}/admin/debug/pprof/tasks?debug=1`);
      assert.equal(tasks.status, 200);
      assert.match(await tasks.text(), /^tasks profile: total \d+/);
      assert.equal((await fetch(`${base}/admin/debug/metrics`)).status, 200);
      assert.equal((await fetch(`${base}/admin/debug/vars`)).status, 200);
      const index = await fetch(`${base}/admin/debug/pprof/`);
      assert.equal(index.status, 200);
      assert.match(await index.text(), /href="\/admin\/debug\/pprof\/tasks\?debug=1"|href="tasks\?debug=1"/);
      assert.equal((await fetch(`${base}/admin/debug/pprof/nosuch`)).status, 404);
      assert.equal(await (await fetch(`${base}/debug/pprof/tasks`)).text(), 'the app\'s own route');
      assert.equal(await (await fetch(`${base}/admin/ping`)).text(), 'pong');
    } finally {
      await app.close();
    }
  });
}
