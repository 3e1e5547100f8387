// The growth detector at its group limit: a new group never pushes out a
// followed group that still has tasks (it is counted as not followed instead).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import taskprof from 'taskprof/http';
import { startTracking } from 'taskprof';

const timers = [];
const held = [];
function growA() {
  timers.push(setInterval(() => {}, 60_000)); // GROUP A
}
function growB() {
  timers.push(setInterval(() => {}, 60_001)); // GROUP B
}
// Eight more creation sites, one per line: more groups than the limit.
const newSites = [
  () => new Promise(() => {}),
  () => new Promise(() => {}),
  () => new Promise(() => {}),
  () => new Promise(() => {}),
  () => new Promise(() => {}),
  () => new Promise(() => {}),
  () => new Promise(() => {}),
  () => new Promise(() => {}),
];

test('maxGroups: followed, growing groups stay followed when a new group appears', async () => {
  startTracking({ mode: 'full' });
  const debug = taskprof({ leakDetection: { intervalMs: 50, windowMs: 2000, minSamples: 6, minGrowth: 3, maxGroups: 6 } });
  const server = http.createServer((req, res) => debug(req, res, () => res.end('app')));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  const grow = setInterval(() => {
    growA();
    growB();
  }, 25);
  const leaks = async () => (await fetch(`${base}/debug/pprof/leaks?format=json`)).json();
  try {
    let body;
    for (let i = 0; i < 60; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      body = await leaks();
      if (body.suspects.length === 2) break;
    }
    assert.equal(body.suspects.length, 2, JSON.stringify({ samples: body.samples, unfollowed: body.unfollowedGroups, settings: body.settings, s: body.suspects.map((x) => x.stack[0]) }));
    // Eight new groups at once, while both are followed and growing.
    for (const make of newSites) for (let i = 0; i < 5; i++) held.push(make());
    // Until a sample has seen the newcomers (some of them are left unfollowed).
    for (let i = 0; i < 400 && !(body.unfollowedGroups >= 1); i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      body = await leaks();
    }
    const names = body.suspects.map((s) => s.stack[0].functionName).sort();
    assert.deepEqual(names, ['growA', 'growB']);
    assert.ok(body.unfollowedGroups >= 1, `unfollowed ${body.unfollowedGroups}`);
  } finally {
    clearInterval(grow);
    timers.forEach(clearInterval);
    server.close();
  }
});
