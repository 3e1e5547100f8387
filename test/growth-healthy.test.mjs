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
    let created = 0;
    try {
      // Counted in the detector's samples and in the tasks the load made, not
      // in wall time (timers run late and requests come slower on a busy
      // machine): at least 60 samples, over a load that made 300 promises.
      while (sampled < samples || created <= 300) {
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
        const body = await (await fetch(`${app.base}/debug/pprof/leaks?format=json`)).json();
        sampled = body.samples;
        flagged.push(...body.suspects);
        const metrics = await (await fetch(`${app.base}/debug/metrics`)).text();
        created = Number(metrics.match(/^taskprof_tasks_created_total\{type="Promise"\} (\d+)$/m)?.[1] ?? 0);
      }
      assert.deepEqual(flagged, []);
    } finally {
      stop();
      await app.close();
      startTracking({ mode: 'full' });
    }
  });
}
