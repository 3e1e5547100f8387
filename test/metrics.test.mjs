// Prometheus metrics: names, values, the app's own registry, OpenMetrics,
// bounded route labels, and promtool's verdict on the live output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import express from 'express';
import supertest from 'supertest';
import { Registry, collectDefaultMetrics } from 'prom-client';
import taskprof from 'taskprof/express';
import { startTracking, stopTracking } from 'taskprof';
import { commandWorks, eventually } from './helpers.mjs';

const hasPromtool = await commandWorks('promtool');
if (!hasPromtool) console.log('# SKIP promtool check metrics: promtool is not on PATH (CI installs the Debian package prometheus)');

/** Value of one sample line, or undefined when absent. */
function sample(text, name, labels = '') {
  const line = text.split('\n').find((l) => l.startsWith(name + (labels ? `{${labels}}` : '') + ' '));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

function leakyApp(options) {
  const app = express();
  app.use(taskprof(options));
  const timers = [];
  app.get('/orders/:id', (req, res) => {
    timers.push(setInterval(() => {}, 60_000));
    res.send('ok');
  });
  app.get('/users/:id', (req, res) => {
    timers.push(setInterval(() => {}, 60_000));
    res.send('ok');
  });
  app.get('/items/:id', (req, res) => {
    timers.push(setInterval(() => {}, 60_000));
    res.send('ok');
  });
  app.get('/quick', async (req, res) => {
    await new Promise((resolve) => setTimeout(resolve, 1));
    res.send('ok');
  });
  return { app, clear: () => timers.splice(0).forEach(clearInterval) };
}

test('full tracking: gauges and counters by type, oldest age, by route, dropped', async () => {
  const { app, clear } = leakyApp({ tracking: 'full' });
  try {
    const before = (await supertest(app).get('/debug/metrics').expect(200)).text;
    for (let i = 0; i < 5; i++) await supertest(app).get(`/orders/${i}`).expect(200);
    for (let i = 0; i < 3; i++) await supertest(app).get('/quick').expect(200);
    const res = await supertest(app).get('/debug/metrics').expect(200);
    assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    // The timers of /quick have fired; their destroy comes just after.
    let text = res.text;
    assert.ok(
      await eventually(async () => {
        text = (await supertest(app).get('/debug/metrics').expect(200)).text;
        return sample(text, 'taskprof_tasks_completed_total', 'type="Timeout"') >= 3;
      }),
      'the /quick timers are counted as completed',
    );
    for (const name of ['taskprof_tasks', 'taskprof_tasks_created_total', 'taskprof_tasks_completed_total', 'taskprof_task_oldest_age_seconds',
      'taskprof_tasks_abandoned_total', 'taskprof_leak_suspects', 'taskprof_tracker_dropped_total', 'taskprof_tasks_by_route']) {
      assert.match(text, new RegExp(`^# TYPE ${name} (gauge|counter)$`, 'm'), name);
    }
    assert.ok(sample(text, 'taskprof_tasks', 'type="Timeout"') >= 5);
    // Five intervals, and any short timer Node made for those requests (the Date header cache, say).
    const byRoute = sample(text, 'taskprof_tasks_by_route', 'method="GET",route="/orders/:id"');
    assert.ok(byRoute >= 5 && byRoute <= 8, `by route ${byRoute}`);
    // /quick's timers fired and its promises settled: counted as created and completed, not live
    // (once Node's own short timers made during those requests, the Date-header cache's, have fired too).
    assert.ok(
      await eventually(async () => sample((await supertest(app).get('/debug/metrics')).text, 'taskprof_tasks_by_route', 'method="GET",route="/quick"') === 0),
      '/quick leaves nothing live',
    );
    const created = sample(text, 'taskprof_tasks_created_total', 'type="Timeout"');
    const completed = sample(text, 'taskprof_tasks_completed_total', 'type="Timeout"');
    assert.ok(created - (sample(before, 'taskprof_tasks_created_total', 'type="Timeout"') ?? 0) >= 8, `created ${created}`);
    assert.ok(completed >= 3, `completed ${completed}`);
    assert.ok(sample(text, 'taskprof_task_oldest_age_seconds', 'type="Timeout"') >= 0);
    assert.equal(sample(text, 'taskprof_tracker_dropped_total'), 0);
    assert.equal(sample(text, 'taskprof_leak_suspects'), 0);
    // taskprof's own timers and histogram are not the app's tasks.
    assert.doesNotMatch(text, /type="ELDHISTOGRAM"/);
    // Counters only grow.
    clear();
    // async_hooks reports a cleared timer's destroy a little later, not at clearInterval.
    const after = await eventually(async () => {
      const text = (await supertest(app).get('/debug/metrics')).text;
      return sample(text, 'taskprof_tasks_by_route', 'method="GET",route="/orders/:id"') === 0 ? text : undefined;
    });
    assert.ok(after, 'the cleared intervals left the route count');
    assert.ok(sample(after, 'taskprof_tasks_created_total', 'type="Timeout"') >= created);
    assert.ok(sample(after, 'taskprof_tasks_completed_total', 'type="Timeout"') >= completed + 5);
  } finally {
    clear();
  }
});

test('sampled tracking (the default): exact gauges and counters for every type, timers and routes included', async () => {
  const { app, clear } = leakyApp({ tracking: 'sampled' });
  try {
    const before = (await supertest(app).get('/debug/metrics').expect(200)).text;
    assert.match(before, /^# HELP taskprof_tasks Live tasks .*, exact: Node's go_goroutines\. Tasks made since tracking started\.$/m);
    const created = sample(before, 'taskprof_tasks_created_total', 'type="Timeout"') ?? 0;
    const balance = (text, type) =>
      (sample(text, 'taskprof_tasks_created_total', `type="${type}"`) ?? 0) -
      (sample(text, 'taskprof_tasks_completed_total', `type="${type}"`) ?? 0) -
      (sample(text, 'taskprof_tasks_abandoned_total', `type="${type}"`) ?? 0) -
      (sample(text, 'taskprof_tasks', `type="${type}"`) ?? 0);
    for (let i = 0; i < 3; i++) await supertest(app).get(`/orders/${i}`).expect(200);
    const text = (await supertest(app).get('/debug/metrics')).text;
    // Node's own timers count too (each response's keep-alive timer, say): the route says the app's.
    assert.ok(sample(text, 'taskprof_tasks', 'type="Timeout"') >= 3);
    assert.ok(sample(text, 'taskprof_tasks_created_total', 'type="Timeout"') >= created + 3);
    assert.equal(sample(text, 'taskprof_tasks_by_route', 'method="GET",route="/orders/:id"'), 3);
    assert.equal(sample(text, 'taskprof_tasks_without_stack', 'type="Timeout"') ?? 0, 0);
    // created - completed - abandoned - live is what was live when tracking (re)started: it does not move.
    for (const type of ['Timeout', 'Promise']) assert.equal(balance(text, type), balance(before, type), type);
    clear();
    const cleared = (await supertest(app).get('/debug/metrics')).text;
    assert.equal(sample(cleared, 'taskprof_tasks_by_route', 'method="GET",route="/orders/:id"') ?? 0, 0);
    assert.ok(sample(cleared, 'taskprof_tasks_completed_total', 'type="Timeout"') >= 3);
  } finally {
    clear();
    startTracking({ mode: 'full' });
  }
});

test('register: the app\'s registry gets the metrics beside prom-client\'s defaults, once', async () => {
  const register = new Registry();
  collectDefaultMetrics({ register });
  const first = leakyApp({ tracking: 'full', register });
  // A second mount on the same registry must not register twice (prom-client would throw).
  const second = leakyApp({ register });
  try {
    await supertest(first.app).get('/users/1').expect(200);
    const text = await register.metrics();
    assert.match(text, /^nodejs_active_resources\{type="Timeout"\} \d+$/m);
    assert.match(text, /^taskprof_tasks\{type="Timeout"\} \d+$/m);
    // The interval, and perhaps Node's Date-header cache timer made in the same request.
    const byRoute = sample(text, 'taskprof_tasks_by_route', 'method="GET",route="/users/:id"');
    assert.ok(byRoute === 1 || byRoute === 2, `by route ${byRoute}`);
    // /debug/metrics serves taskprof's own metrics, not the app's whole registry.
    const own = (await supertest(second.app).get('/debug/metrics').expect(200)).text;
    assert.match(own, /^taskprof_tasks\{type="Timeout"\} \d+$/m);
    assert.doesNotMatch(own, /nodejs_/);
  } finally {
    first.clear();
    second.clear();
  }
});

test('a name the registry already has is a clear error naming metricsPrefix', () => {
  const register = new Registry();
  register.registerMetric({ name: 'mine_tasks', help: 'x', type: 'gauge', get: async () => ({ name: 'mine_tasks', help: 'x', type: 'gauge', values: [] }) });
  assert.throws(() => taskprof({ register, metricsPrefix: 'mine_' }), /cannot register metrics on the given registry .*choose another "metricsPrefix"/);
  assert.throws(() => taskprof({ register: {} }), /option "register" must be a prom-client Registry/);
  assert.throws(() => taskprof({ metricsPrefix: 'bad-prefix' }), /option "metricsPrefix" must be empty or match/);
  assert.throws(() => taskprof({ maxRoutes: 0 }), /option "maxRoutes" must be an integer >= 1/);
});

test('OpenMetrics when the scraper asks for it; the text format keeps its _total names after', async () => {
  const { app, clear } = leakyApp({ tracking: 'full' });
  try {
    // What Prometheus 2.x sends.
    const accept = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
    const om = await supertest(app).get('/debug/metrics').set('Accept', accept).expect(200);
    assert.equal(om.headers['content-type'], 'application/openmetrics-text; version=1.0.0; charset=utf-8');
    assert.match(om.text, /# EOF\n$/);
    assert.match(om.text, /^# TYPE taskprof_tasks_created counter$/m);
    assert.match(om.text, /^taskprof_tasks_created_total\{type="Timeout"\} \d+$/m);
    const text = (await supertest(app).get('/debug/metrics').set('Accept', 'text/plain').expect(200)).text;
    assert.match(text, /^# TYPE taskprof_tasks_created_total counter$/m);
    // A browser's Accept gets the text format.
    const browser = await supertest(app).get('/debug/metrics').set('Accept', 'text/html,application/xhtml+xml,*/*;q=0.8').expect(200);
    assert.match(browser.headers['content-type'], /^text\/plain/);
  } finally {
    clear();
  }
});

test('routes past maxRoutes are counted as route="other"', async () => {
  // Route counts are process-wide, like tracking: start from none.
  stopTracking();
  const { app, clear } = leakyApp({ tracking: 'full', maxRoutes: 2, metricsPrefix: 'capped_' });
  try {
    await supertest(app).get('/orders/1').expect(200);
    await supertest(app).get('/users/1').expect(200);
    await supertest(app).get('/items/1').expect(200);
    await supertest(app).get('/items/2').expect(200);
    const text = (await supertest(app).get('/debug/metrics').expect(200)).text;
    const routes = Object.fromEntries([...text.matchAll(/^capped_tasks_by_route\{method="GET",route="([^"]+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
    // Two routes of their own (the first two seen: these, unless a task of an
    // earlier test's request got in first); every later one counts as "other".
    const own = Object.keys(routes).filter((r) => r !== 'other');
    assert.equal(own.length, 2, JSON.stringify(routes));
    assert.ok(routes.other >= 2, JSON.stringify(routes));
    assert.equal((routes['/orders/:id'] ?? 0) + (routes['/users/:id'] ?? 0) + (routes['/items/:id'] ?? 0) + routes.other >= 4, true, JSON.stringify(routes));
    assert.equal(routes['/items/:id'], undefined, 'the third route is past the limit');
  } finally {
    clear();
  }
});

test('promtool check metrics passes on the live output', { skip: hasPromtool ? false : 'promtool is not installed (apt-get install prometheus)' }, async () => {
  const { app, clear } = leakyApp({ tracking: 'full' });
  try {
    await supertest(app).get('/orders/1').expect(200);
    const text = (await supertest(app).get('/debug/metrics').expect(200)).text;
    const result = await new Promise((resolve) => {
      const child = execFile('promtool', ['check', 'metrics'], (error, stdout, stderr) => resolve({ code: error?.code ?? 0, stdout, stderr }));
      child.stdin.end(text);
    });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.equal((result.stdout + result.stderr).trim(), '', 'promtool has no lint complaints');
  } finally {
    clear();
  }
});

test('a scrape does not walk the tasks: 20,000 live promises cost no more than none', async () => {
  // Not a timing assertion (bench/scrape.mjs measures that): the tracker's
  // snapshot is read, and the same numbers come back without a sweep.
  const { app, clear } = leakyApp({ tracking: 'full' });
  const pending = [];
  try {
    for (let i = 0; i < 20_000; i++) pending.push(new Promise(() => {}));
    const text = (await supertest(app).get('/debug/metrics').expect(200)).text;
    assert.ok(sample(text, 'taskprof_tasks', 'type="Promise"') >= 20_000);
    assert.ok(await eventually(async () => sample((await supertest(app).get('/debug/metrics')).text, 'taskprof_tasks', 'type="Promise"') >= 20_000));
  } finally {
    pending.length = 0;
    clear();
  }
});
