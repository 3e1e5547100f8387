// Abandoned tasks by creation site: promises nobody settles and nobody holds
// are collected; /debug/pprof/leaks names where they were made, and the
// counter counts them, in full and in the default mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import express from 'express';
import supertest from 'supertest';
import taskprof from 'taskprof/express';
import { startTracking } from 'taskprof';
import { collectGarbage, eventually, sourcePosition } from './helpers.mjs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(import.meta.url);
const abandonLine = sourcePosition(here, 'ABANDONED' + ' HERE', 'new Promise');

function forgetPromises(n) {
  for (let i = 0; i < n; i++) new Promise(() => {}); // ABANDONED HERE
}

const app = express();
app.use(taskprof({ tracking: 'full' }));
app.get('/fire-and-forget', (req, res) => {
  forgetPromises(20);
  res.send('ok');
});

test('full: abandoned promises are listed by creation site, with labels, and counted', async () => {
  startTracking({ mode: 'full' });
  await supertest(app).get('/fire-and-forget').expect(200);
  await collectGarbage();
  const text = (await supertest(app).get('/debug/pprof/leaks?debug=1').expect(200)).text;
  const block = text.split('\n\n').find((b) => b.includes(abandonLine));
  assert.ok(block, text);
  assert.match(text, /^abandoned tasks \(garbage collected without ever settling\), by creation site:$/m);
  assert.match(block, /^20 @ Promise last \S+ ago \{method="GET", route="\/fire-and-forget"\}\n#\tforgetPromises\t/m);
  const json = (await supertest(app).get('/debug/pprof/leaks?format=json').expect(200)).body;
  const site = json.abandoned.find((a) => a.stack[0]?.functionName === 'forgetPromises');
  assert.equal(site.count, 20);
  assert.equal(json.abandonedCounted, true);
  const metrics = (await supertest(app).get('/debug/metrics')).text;
  assert.ok(Number(metrics.match(/^taskprof_tasks_abandoned_total\{type="Promise"\} (\d+)$/m)[1]) >= 20);
});

test('sampled (the default): abandoned promises are counted too, by site, once found pending at a flush and then collected', async () => {
  startTracking({ mode: 'sampled' });
  try {
    const abandoned = async () => {
      const metrics = (await supertest(app).get('/debug/metrics')).text;
      return Number(metrics.match(/^taskprof_tasks_abandoned_total\{type="Promise"\} (\d+)$/m)?.[1] ?? 0);
    };
    const before = await abandoned();
    const siteCount = async () => {
      const json = (await supertest(app).get('/debug/pprof/leaks?format=json').expect(200)).body;
      return json.abandoned.find((a) => a.stack[0]?.functionName === 'forgetPromises');
    };
    // Sites are kept across modes: the full test above may have left 20 there.
    const siteBefore = (await siteCount())?.count ?? 0;
    await supertest(app).get('/fire-and-forget').expect(200);
    // A pending promise is handed to the FinalizationRegistry a tenth of a
    // second after it was made; then a collection finds it.
    const after = await eventually(async () => {
      await collectGarbage();
      const now = await abandoned();
      return now - before >= 20 ? now : undefined;
    }, 5000);
    assert.equal(after - before, 20);
    const site = await siteCount();
    assert.equal(site?.count - siteBefore, 20, JSON.stringify(site));
    assert.deepEqual(site.labels, { method: 'GET', route: '/fire-and-forget' });
    // Not live either: they ended when collected.
    const tasks = (await supertest(app).get('/debug/pprof/tasks?debug=1')).text;
    assert.ok(!tasks.includes(abandonLine), tasks);
  } finally {
    startTracking({ mode: 'full' });
  }
});
