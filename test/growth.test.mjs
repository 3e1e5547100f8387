// The growth detector on a real app under steady load, with intervals cut
// from 10 s to 100 ms (so 3 minutes at the defaults is 18 samples here): it
// flags the demo's two leaks at their lines, and none of the healthy routes
// beside them. test/growth-healthy.test.mjs runs the healthy app alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startTracking } from 'taskprof';
import { startGrowthApp, steadyLoad, healthyPaths, leakyPaths } from './fixtures/growth-apps.mjs';
import { fixturesDir, sourcePosition } from './helpers.mjs';

const intervalMs = 100;
// The default minSamples (12) and minGrowth (10); only time is scaled.
const leakDetection = { intervalMs, windowMs: 3000 };
const samplesAllowed = 18;

const ttlCache = path.join(fixturesDir, '..', '..', 'examples', 'demo', 'ttl-cache.mjs');
const intervalLine = sourcePosition(ttlCache, 'the leak', 'setInterval(');
const askLine = sourcePosition(path.join(fixturesDir, 'growth-apps.mjs'), 'GROWTH LEAK: never resolved', 'new Promise');

async function leaksJson(base) {
  const res = await fetch(`${base}/debug/pprof/leaks?format=json`);
  assert.equal(res.status, 200);
  return res.json();
}

const position = (frame) => `${path.relative(process.cwd(), frame.file)}:${frame.line}:${frame.column}`;

for (const tracking of [{ tracking: 'full' }, { tracking: 'sampled' }]) {
  const exact = tracking.tracking === 'full';
  test(`${tracking.tracking}: both leaks are flagged within ${samplesAllowed} samples, healthy routes never`, { timeout: 60_000 }, async () => {
    const app = await startGrowthApp({ leaky: true, options: { ...tracking, leakDetection } });
    const stop = steadyLoad(app.base, [...healthyPaths, ...leakyPaths], 80);
    try {
      let found;
      let last;
      let falseAlarms = [];
      // Counted in the detector's samples, not in wall time, so that a busy
      // machine (timers late) does not change the verdict. The detector
      // starts at mount, a moment before the load: two samples of slack.
      for (let samples = 0; samples <= samplesAllowed + 2; ) {
        await new Promise((resolve) => setTimeout(resolve, intervalMs / 2));
        const body = await leaksJson(app.base);
        last = body;
        samples = body.samples;
        falseAlarms = falseAlarms.concat(body.suspects.filter((s) => !['/users/:id', '/report'].includes(s.labels.route)));
        const timer = body.suspects.find((s) => s.type === 'Timeout' && s.stack.some((f) => position(f) === intervalLine));
        // The promise nobody resolves, or (sampled: over the stack budget, either may
        // be sampled first) the /report handler awaiting it, whose own promise never
        // settles either.
        const promise = body.suspects.find((s) => s.type === 'Promise' && (position(s.stack[0]) === askLine || (!exact && s.labels.route === '/report')));
        if (timer && promise) {
          found = { timer, promise, samples };
          break;
        }
      }
      const summary = last.suspects.map((s) => `${s.count} ${s.type} ${s.labels.route} ${s.stack[0]?.functionName}`).join('; ');
      assert.ok(found, `both leaks flagged within ${samplesAllowed} samples; at sample ${last.samples}: ${summary || 'no suspects'}`);
      assert.deepEqual(falseAlarms, []);
      assert.deepEqual(found.timer.labels, { method: 'GET', route: '/users/:id' });
      assert.deepEqual(found.promise.labels, { method: 'GET', route: '/report' });
      if (exact) assert.equal(position(found.promise.stack[0]), askLine);
      assert.ok(found.timer.growthPerMinute > 0 && found.timer.count >= 10);
      // The text form names the line too, with its rate.
      const text = await (await fetch(`${app.base}/debug/pprof/leaks?debug=1`)).text();
      assert.match(text, new RegExp(`^\\d+ @ Timeout growing \\+[0-9.]+/min for \\S+, oldest \\S+ \\{method="GET", route="/users/:id"\\}\\n#\\tnew TtlCache\\t`, 'm'));
      assert.ok(text.includes(intervalLine));
      // And the gauge says so.
      const metrics = await (await fetch(`${app.base}/debug/metrics`)).text();
      assert.match(metrics, /^taskprof_leak_suspects [1-9]\d*$/m);
    } finally {
      stop();
      await app.close();
      startTracking({ mode: 'full' });
    }
  });
}

test('leakDetection: false serves a 404 that says why; bad settings are TypeErrors', async () => {
  const { default: taskprof } = await import('taskprof/express');
  assert.throws(() => taskprof({ leakDetection: { intervalMs: 5 } }), /option "leakDetection.intervalMs" must be an integer >= 10, got 5/);
  assert.throws(() => taskprof({ leakDetection: { intervalMs: 1000, windowMs: 5000 } }), /"leakDetection.windowMs" must hold at least minSamples \(12\) intervals of 1000 ms/);
  assert.throws(() => taskprof({ leakDetection: 'on' }), /option "leakDetection" must be false or an object/);
  // Memory and work per sample are bounded: at most 2880 samples in a window.
  assert.throws(() => taskprof({ leakDetection: { intervalMs: 10, windowMs: 1_800_000 } }), /"leakDetection.windowMs" may hold at most 2880 samples/);
  const app = await startGrowthApp({ leaky: false, options: { leakDetection: false, prefix: '/off' } });
  try {
    const res = await fetch(`${app.base}/off/pprof/leaks?debug=1`);
    assert.equal(res.status, 404);
    assert.match(await res.text(), /leakDetection option is false/);
  } finally {
    await app.close();
  }
});
