// The stack budget over its share: shared fairly among the capture classes
// (a quiet class keeps all its stacks while busy ones are sampled), spending
// what it earns, and listings that still add up to the exact counts at the
// leaking lines. Unit tests of the internal module by its own path, then a
// real app overloaded in the default mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { StackBudget, expectedCaptures, levelFor } from '../dist/src/tracker/stack-budget.js';
import { startGrowthApp, healthyPaths, leakyPaths } from './fixtures/growth-apps.mjs';
import { eventually, fixturesDir } from './helpers.mjs';

test('expected captures and the level for a share are inverse', () => {
  assert.equal(expectedCaptures(3, 5), 3, 'under the level: all of them');
  assert.equal(expectedCaptures(5, 5), 5);
  // 64 exact, then 64/n each: 64 (1 + H(1000) - H(64)).
  const h = (n) => Array.from({ length: n }, (_, i) => 1 / (i + 1)).reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(expectedCaptures(1000, 64) - (64 + 64 * (h(1000) - h(64)))) < 0.01);
  assert.ok(Math.abs(expectedCaptures(1000, 0.5) - 0.5 * h(1000)) < 0.01, 'below 1, the first task too is sampled');
  for (const [tasks, stacks] of [[1000, 10], [50, 1.2], [20, 0.3]]) {
    assert.ok(Math.abs(expectedCaptures(tasks, levelFor(tasks, stacks)) - stacks) < 0.01 * stacks, `${tasks} tasks, ${stacks} stacks`);
  }
});

test('timer classes go by powers of two of the duration', () => {
  const budget = new StackBudget(0.01, false);
  const classOf = (ms) => budget.timerClassOf('Timeout', undefined, ms);
  assert.equal(classOf(5.3), classOf(7.9), 'random short timeouts share a class');
  assert.equal(classOf(977), classOf(995), "Node's remaining keep-alive times share one");
  assert.notEqual(classOf(60_000), classOf(995), 'a long interval has its own');
  assert.equal(classOf(0), classOf(1));
  assert.equal(new Set(Array.from({ length: 200 }, () => classOf(1 + Math.random() * 19))).size <= 5, true);
});

test('over its share, the budget is shared fairly: a quiet class keeps every stack, busy ones are sampled without bias', () => {
  // Each simulated second: ten busy classes of 400 tasks and a quiet one of
  // 4, every capture charged 0.01 ms, then refill() (which earns 1 ms plus
  // 1% of the CPU time this test used). The bank (200 ms) lasts the first
  // seconds; from then on about a hundred stacks a second are shared out.
  const budget = new StackBudget(0.01, false);
  const busy = Array.from({ length: 10 }, (_, i) => budget.classOf('Promise', { values: { route: `/busy/${i}` }, key: `b${i}`, pending: false }));
  const quiet = budget.timerClassOf('Timeout', undefined, 60_000);
  const seconds = 40;
  let quietStacks = 0;
  let busyStacks = 0;
  let busyWeight = 0;
  for (let second = 0; second < seconds; second++) {
    for (let n = 0; n < 400; n++) {
      for (const cls of busy) {
        const weight = budget.admit(cls);
        if (weight === 0) continue;
        budget.charge(0.01);
        if (second >= 20) {
          busyStacks++;
          busyWeight += weight;
        }
      }
      if (n % 100 === 0) {
        const weight = budget.admit(quiet);
        if (weight > 0) budget.charge(0.01);
        if (second >= 20) {
          assert.equal(weight, 1, `second ${second}: the quiet class's task got its stack, exactly`);
          quietStacks++;
        }
      }
    }
    budget.refill();
  }
  const stats = budget.stats();
  assert.equal(stats.shared, true, 'over the budget');
  assert.equal(quietStacks, 4 * 20, 'every quiet task of the last 20 seconds');
  // What was spent is what was earned: some 100 stacks a second, not the 4,000 made.
  assert.ok(busyStacks < 20 * 400, `${busyStacks} busy stacks in 20 s`);
  assert.ok(busyStacks / 20 > 20, `${busyStacks / 20} a second: the earned budget is spent`);
  assert.ok(stats.balanceMs > -20, `balance ${stats.balanceMs} ms: no runaway debt`);
  // Horvitz-Thompson: the weights stand for the 80,000 busy tasks.
  const made = 20 * 400 * 10;
  assert.ok(Math.abs(busyWeight - made) < 0.15 * made, `weights ${Math.round(busyWeight)} for ${made} tasks`);
});

// The demo's two leaks beside healthy routes, overloaded from its first
// seconds (a budget of 0.02% banks 4 ms): every leaked interval and promise
// is in a group at its line; no stackless group of the leaking route.
test('default mode over its budget: the leaks are at their lines, with exact counts of timers and pending promises and estimated flows', { timeout: 60_000 }, async () => {
  const app = await startGrowthApp({ leaky: true, options: { stackBudget: 0.0002, leakDetection: false } });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const answered = new Map();
  const paths = [...healthyPaths, ...leakyPaths];
  const sentTo = new Map();
  let sent = 0;
  const send = (urlPath) =>
    new Promise((resolve) => {
      sentTo.set(urlPath, (sentTo.get(urlPath) ?? 0) + 1);
      const req = http.get(app.base + urlPath, { agent, timeout: 300 }, (res) => {
        res.resume();
        res.on('end', () => {
          answered.set(urlPath, (answered.get(urlPath) ?? 0) + 1);
          resolve();
        });
      });
      req.on('timeout', () => req.destroy());
      req.on('error', resolve);
    });
  try {
    // About 100 requests a second for 6 s, in waves of 10; a /report never
    // answers (its client gives up after 300 ms), so it is not waited for.
    const started = Date.now();
    const hanging = [];
    while (Date.now() - started < 6000) {
      const wave = Array.from({ length: 10 }, () => paths[sent++ % paths.length]);
      for (const urlPath of wave) if (urlPath === '/report') hanging.push(send(urlPath));
      await Promise.all(wave.filter((urlPath) => urlPath !== '/report').map(send));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await Promise.all(hanging);
    const reports = sentTo.get('/report');
    const intervals = answered.get('/users/1') ?? 0;
    assert.ok(intervals > 30, `${intervals} /users/:id requests answered`);
    const ttlCache = path.join(fixturesDir, '..', '..', 'examples', 'demo', 'ttl-cache.mjs');
    const growthApps = path.join(fixturesDir, 'growth-apps.mjs');
    // Pending promises are counted exactly: two per /report request (its handler's, and askBackend's).
    const byRoute = async () => {
      const metrics = await (await fetch(`${app.base}/debug/metrics`)).text();
      return Number(metrics.match(/^taskprof_tasks_by_route\{method="GET",route="\/report"\} (\d+)$/m)?.[1]);
    };
    assert.ok(await eventually(async () => (await byRoute()) === 2 * reports, 10_000), `${await byRoute()} promises on /report for ${reports} requests`);
    const listing = await (await fetch(`${app.base}/debug/pprof/tasks?debug=1&format=json`)).json();
    // Flows over the budget: each sampled promise's links say whether it is
    // a flow's head, and its weight stands for as many flows; the groups say
    // they are estimates (README, "Flows").
    const reportFlows = listing.groups.filter((g) => g.type === 'Promise' && g.labels.route === '/report');
    assert.ok(reportFlows.length > 0 && reportFlows.every((g) => g.estimated && g.flow !== undefined), JSON.stringify(reportFlows.map((g) => [g.count, g.estimated])));
    assert.ok(listing.promises.pending >= 2 * reports, JSON.stringify(listing.promises));
    const vars = await (await fetch(`${app.base}/debug/vars`)).json();
    assert.ok(vars.tasks.stackBudget.refused > 0, `over its budget: ${JSON.stringify(vars.tasks.stackBudget)}`);
    assert.ok(listing.withoutStack > 0, 'some tasks were made without a stack');
    // (Node's own timers made in a request, its Date header's, say, are on the route too, with other durations.)
    const onLeakyRoute = listing.groups.filter((g) => g.type === 'Timeout' && g.labels.route === '/users/:id' && g.detail === 'setInterval(60000ms)');
    assert.equal(onLeakyRoute.length, 1, `one group: ${JSON.stringify(onLeakyRoute.map((g) => [g.count, g.stack[0]]))}`);
    const [leak] = onLeakyRoute;
    assert.equal(leak.stack[0]?.file, ttlCache);
    assert.equal(leak.count, intervals, 'every leaked interval, exactly (one class, one line)');
    assert.ok(reportFlows.every((g) => g.stack[0]?.file === growthApps), 'each /report flow at a line of the app');
  } finally {
    agent.destroy();
    await app.close();
  }
});
