// Abandoned tasks by creation site: promises nobody settles and nobody holds
// are collected; under full tracking /debug/pprof/leaks names where they were
// made, and the counter counts them. Elsewhere the listing says why it cannot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import express from 'express';
import supertest from 'supertest';
import taskprof from 'taskprof/express';
import { startTracking } from 'taskprof';
import { collectGarbage, sourcePosition } from './helpers.mjs';
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
  // Full tracking formats the stacks of live tasks once a second (before that
  // they are raw, kept on the promise, and go with it); V8 collects such
  // promises only in full collections, which in a service come far less often.
  await new Promise((resolve) => setTimeout(resolve, 1200));
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

test('full: promises collected before their stacks were formatted are still counted, without a site', async () => {
  startTracking({ mode: 'full' });
  await supertest(app).get('/fire-and-forget').expect(200);
  await collectGarbage();
  const json = (await supertest(app).get('/debug/pprof/leaks?format=json').expect(200)).body;
  const unsited = json.abandoned.find((a) => a.stack.length === 0 && a.labels.route === '/fire-and-forget');
  assert.equal(unsited?.count, 20, JSON.stringify(json.abandoned));
});

test('sampled: collected promises just end; the listing says abandoned needs full tracking', async () => {
  startTracking({ mode: 'sampled', samplingInterval: 1 });
  try {
    await supertest(app).get('/fire-and-forget').expect(200);
    await collectGarbage();
    const text = (await supertest(app).get('/debug/pprof/leaks?debug=1').expect(200)).text;
    assert.match(text, /^abandoned tasks \(garbage collected without ever settling\) are told apart only with tracking "full" \(now "sampled"\)$/m);
    const metrics = (await supertest(app).get('/debug/metrics')).text;
    assert.doesNotMatch(metrics, /^taskprof_tasks_abandoned_total\{/m);
    // Not live either: they ended when collected.
    const tasks = (await supertest(app).get('/debug/pprof/tasks?debug=1')).text;
    assert.ok(!tasks.includes(abandonLine), tasks);
  } finally {
    startTracking({ mode: 'full', samplingInterval: 256 });
  }
});
