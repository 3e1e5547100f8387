// Issue 11: in the default mode (no tracking option), counts are exact and
// every small leak shows at its line. 1, 3 and 7 leaked tasks of each kind,
// on Express, Fastify and node:http, each found at its exact line with its
// exact count; the gauges move by exactly as much.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { closeSink, frameworks, leaks, releaseAll } from './fixtures/exact-app.mjs';
import { fixturesDir, parseGroups, sourcePosition } from './helpers.mjs';

const fixture = path.join(fixturesDir, 'exact-app.mjs');
test.after(() => {
  releaseAll();
  return closeSink();
});
// Kind: the task type it leaks, and the call on its marked line.
const kinds = {
  promise: { type: 'Promise', callee: 'new Promise' },
  timeout: { type: 'Timeout', callee: 'setTimeout(' },
  interval: { type: 'Timeout', callee: 'setInterval(' },
  socket: { type: 'TCPWRAP', callee: 'connect(' },
  request: { type: 'HTTPCLIENTREQUEST', callee: 'get(' },
};

async function groupAt(base, type, line) {
  const text = await (await fetch(`${base}/debug/pprof/tasks?debug=1`)).text();
  return { text, group: parseGroups(text).find((g) => g.head.includes(` @ ${type}`) && g.frames[0] === line) };
}

for (const framework of frameworks) {
  test(`${framework.name}, default mode: 1, 3 and 7 leaked tasks of each kind show at their exact line with their exact count`, async () => {
    const app = await framework.start();
    try {
      for (const [kind, { type, callee }] of Object.entries(kinds)) {
        const line = sourcePosition(fixture, `// EXACT ${kind}`, callee);
        let leaked = 0;
        for (const target of [1, 3, 7]) {
          while (leaked < target) {
            const res = await fetch(`${app.url}/leak/${kind}`);
            assert.equal(res.status, 200);
            await res.text();
            leaked++;
          }
          const { text, group } = await groupAt(app.url, type, line);
          assert.ok(group, `${kind}: a group at ${line}\n${text}`);
          assert.equal(group.count, target, `${kind}: ${target} at ${line}\n${group.head}`);
          assert.doesNotMatch(group.head, /estimated|no stack/, group.head);
          const labels = framework.route === undefined ? ' {method="GET"}' : ` {method="GET", route="${framework.route}"}`;
          assert.ok(group.head.endsWith(labels), group.head);
        }
        releaseAll();
        await new Promise((resolve) => setImmediate(resolve));
        const { group } = await groupAt(app.url, type, line);
        assert.equal(group, undefined, `${kind}: released tasks leave the listing`);
      }
    } finally {
      releaseAll();
      await app.close();
    }
  });
}

test('default mode: the gauges move by exactly the leaked tasks, and created - completed - abandoned - live stays put', async () => {
  const app = await frameworks[0].start();
  const metrics = async () => (await (await fetch(`${app.url}/debug/metrics`)).text());
  const sample = (text, name, type) => Number(text.match(new RegExp(`^${name}\\{type="${type}"\\} (\\d+)$`, 'm'))?.[1] ?? 0);
  const balance = (text, type) =>
    sample(text, 'taskprof_tasks_created_total', type) - sample(text, 'taskprof_tasks_completed_total', type) - sample(text, 'taskprof_tasks_abandoned_total', type) - sample(text, 'taskprof_tasks', type);
  try {
    // Scrapes leave timers of their own (a connection's keep-alive timer): made before the count starts.
    await metrics();
    await metrics();
    const before = await metrics();
    // Leaked straight from the test, not through a request: the app's other
    // tasks (a request's own) are the same at both scrapes.
    for (let i = 0; i < 7; i++) leaks.promise();
    for (let i = 0; i < 3; i++) leaks.interval();
    const after = await metrics();
    assert.equal(sample(after, 'taskprof_tasks', 'Promise') - sample(before, 'taskprof_tasks', 'Promise'), 7);
    assert.equal(sample(after, 'taskprof_tasks', 'Timeout') - sample(before, 'taskprof_tasks', 'Timeout'), 3);
    for (const type of ['Promise', 'Timeout']) {
      assert.ok(sample(after, 'taskprof_tasks_completed_total', type) <= sample(after, 'taskprof_tasks_created_total', type), type);
      assert.equal(balance(after, type), balance(before, type), `${type}: the counters account for every task`);
    }
  } finally {
    releaseAll();
    await app.close();
  }
});
