// Issue 11 at volume: no phantom tasks while 100,000 promises a second come
// and go (every mode that counts, 20 scrapes each), and a million live tasks
// counted as a million with the record cap hit and said.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fixturesDir } from './helpers.mjs';

async function startApp(options) {
  const child = fork(path.join(fixturesDir, 'scale-app.mjs'), [], { env: { ...process.env, TASKPROF_OPTIONS: JSON.stringify(options) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [ready] = await once(child, 'message');
  const base = `http://127.0.0.1:${ready.port}`;
  return {
    base,
    async ask(message) {
      child.send(message);
      const [reply] = await once(child, 'message');
      return reply;
    },
    async stop() {
      child.kill();
      if (child.exitCode === null) await once(child, 'exit');
    },
  };
}

const sample = (text, name, type) => Number(text.match(new RegExp(`^${name}\\{type="${type}"\\} (\\d+)$`, 'm'))?.[1] ?? 0);
const metrics = async (base) => (await fetch(`${base}/debug/metrics`)).text();

for (const tracking of ['sampled', 'counts', 'full']) {
  test(`${tracking}: 100,000 promises a second settling add no phantom tasks at any of 20 scrapes; counters stay consistent`, { timeout: 60_000 }, async () => {
    const app = await startApp(tracking === 'sampled' ? {} : { tracking });
    try {
      // Idle: the scrape's own view of the app, three times.
      const idle = [];
      for (let i = 0; i < 3; i++) idle.push(sample(await metrics(app.base), 'taskprof_tasks', 'Promise'));
      const idleLive = Math.max(...idle);
      await app.ask({ type: 'churn' });
      let first;
      let last;
      for (let i = 0; i < 20; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        const text = await metrics(app.base);
        const live = sample(text, 'taskprof_tasks', 'Promise');
        const created = sample(text, 'taskprof_tasks_created_total', 'Promise');
        const completed = sample(text, 'taskprof_tasks_completed_total', 'Promise');
        const abandoned = sample(text, 'taskprof_tasks_abandoned_total', 'Promise');
        assert.ok(Math.abs(live - idleLive) <= 5, `scrape ${i + 1}: ${live} live promises while idle showed ${idleLive}`);
        assert.ok(completed <= created, `scrape ${i + 1}: completed ${completed} <= created ${created}`);
        assert.equal(created - completed - abandoned, live, `scrape ${i + 1}: created - completed - abandoned = live`);
        if (last !== undefined) assert.ok(created >= last.created && completed >= last.completed, 'counters never go down');
        // Through the app's own registry too.
        const own = await (await fetch(`${app.base}/metrics`)).text();
        assert.ok(sample(own, 'taskprof_tasks_completed_total', 'Promise') <= sample(own, 'taskprof_tasks_created_total', 'Promise'), `scrape ${i + 1}: the app's registry`);
        assert.ok(Math.abs(sample(own, 'taskprof_tasks', 'Promise') - idleLive) <= 5, `scrape ${i + 1}: the app's registry`);
        last = { created, completed };
        first ??= { created, at: Date.now() };
      }
      const { churned } = await app.ask({ type: 'stop-churn' });
      assert.ok(churned >= 50_000, `the churn ran: ${churned} promises`);
      assert.ok(last.created - first.created >= 0.5 * churned * 0.8, `the counters saw the churn: ${last.created - first.created} of about ${churned}`);
    } finally {
      await app.stop();
    }
  });
}

test('sampled (the default): a million live promises count as a million; maxTasks limits the records, and the listing says so', { timeout: 120_000 }, async () => {
  const app = await startApp({ maxTasks: 1000 });
  try {
    await app.ask({ type: 'hold-promises', n: 1_000_000 });
    const text = await metrics(app.base);
    const live = sample(text, 'taskprof_tasks', 'Promise');
    assert.ok(live >= 1_000_000 && live < 1_000_100, `live promises ${live}`);
    assert.ok(sample(text, 'taskprof_tasks_without_stack', 'Promise') >= 999_000);
    assert.ok(Number(text.match(/^taskprof_tracker_dropped_total (\d+)$/m)[1]) > 0);
    const listing = await (await fetch(`${app.base}/debug/pprof/tasks?debug=1`)).text();
    assert.match(listing.split('\n')[0], /^tasks profile: total 10\d{5}.*; 9\d{5} tasks without a stack \(not captured \(over the stack budget\), or maxTasks 1000 records held\); dropped \d+ records \(maxTasks 1000 reached\)$/);
    const json = await (await fetch(`${app.base}/debug/pprof/tasks?debug=1&format=json`)).json();
    assert.equal(json.groups.reduce((n, g) => n + g.count, 0), json.total, 'the groups add up to the total');
  } finally {
    await app.stop();
  }
});

test('full: 250,000 live timers count as 250,000 beyond a record cap of 50,000', { timeout: 120_000 }, async () => {
  const app = await startApp({ tracking: 'full', maxTasks: 50_000 });
  try {
    await app.ask({ type: 'hold-timers', n: 250_000 });
    const text = await metrics(app.base);
    const live = sample(text, 'taskprof_tasks', 'Timeout');
    assert.ok(live >= 250_000 && live < 250_100, `live timers ${live}`);
    assert.ok(sample(text, 'taskprof_tasks_without_stack', 'Timeout') >= 200_000);
    const listing = await (await fetch(`${app.base}/debug/pprof/tasks?debug=1`)).text();
    assert.match(listing.split('\n')[0], /dropped \d+ records \(maxTasks 50000 reached\)$/);
  } finally {
    await app.stop();
  }
});
