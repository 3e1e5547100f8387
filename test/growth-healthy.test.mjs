// The growth detector on the healthy app alone, under the same steady load,
// for 60 samples (10 minutes at the default 10 s interval, cut here to
// 100 ms): in-flight requests, expiring sessions and a keep-alive pool that
// fills must never be flagged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTracking } from 'taskprof';
import { startGrowthApp, steadyLoad, healthyPaths } from './fixtures/growth-apps.mjs';

const intervalMs = 100;
const samples = 60;

for (const tracking of [{ tracking: 'full' }, { tracking: 'sampled' }]) {
  test(`${tracking.tracking}: nothing is flagged in ${samples} samples of steady load`, { timeout: 60_000 }, async () => {
    const app = await startGrowthApp({ leaky: false, options: { ...tracking, leakDetection: { intervalMs, windowMs: samples * intervalMs } } });
    const stop = steadyLoad(app.base, healthyPaths, 80);
    const flagged = [];
    let sampled = 0;
    try {
      // Counted in the detector's samples, not in wall time (timers run late on a busy machine).
      while (sampled < samples) {
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
        const body = await (await fetch(`${app.base}/debug/pprof/leaks?format=json`)).json();
        sampled = body.samples;
        flagged.push(...body.suspects);
      }
      assert.deepEqual(flagged, []);
      // The load was real: tasks came and went.
      const metrics = await (await fetch(`${app.base}/debug/metrics`)).text();
      assert.ok(Number(metrics.match(/^taskprof_tasks_created_total\{type="Promise"\} (\d+)$/m)[1]) > 300);
    } finally {
      stop();
      await app.close();
      startTracking({ mode: 'full' });
    }
  });
}
