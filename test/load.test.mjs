// The example app under load while every endpoint is scraped by 50 scrapers
// at once: bench/load.mjs's run, short. Outcomes only, never timing: every
// scrape answered 2xx or 429 (or the status the app's configuration gives by
// design, as bench/load.mjs lists them) with a whole body, the load generator
// saw no error and only 200s, was served while the scrapers ran and after,
// and the app wrote nothing on stderr.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runLoadBench } from '../bench/load.mjs';

test('the demo under load, every endpoint scraped by 50 scrapers: every scrape answered, the app keeps serving, no error in its log', { timeout: 300_000 }, async () => {
  const r = await runLoadBench({ app: 'demo', seconds: 4, warmupSeconds: 1, cooldownSeconds: 1, concurrency: 8, scrapers: 50 });
  const context = JSON.stringify({ failures: r.failures, appLog: r.appLog }, null, 2);

  for (const e of r.endpoints) {
    assert.ok(e.requests > 0, `${e.name} was scraped`);
    assert.equal(e.errors, 0, `${e.name}: connection errors, timeouts or bodies cut short: ${JSON.stringify(e.errorKinds)} ${JSON.stringify(e.failures)}`);
    assert.equal(e.failed, 0, `${e.name}: ${JSON.stringify(e.failures)}`);
  }
  const scraped = r.endpoints.reduce((n, e) => n + e.s2xx, 0);
  assert.ok(scraped > 0, 'some scrapes were served');

  const phase = (name) => r.load.phases.find((p) => p.phase === name);
  for (const p of r.load.phases) {
    assert.equal(p.errors, 0, `load generator errors in ${p.phase}: ${JSON.stringify(p.errorSamples)}`);
    assert.equal(p.notOk, 0, `load generator non-200s in ${p.phase}: ${JSON.stringify(p.byStatus)}`);
  }
  assert.ok(phase('scraping').ok > 0, 'served while scraped');
  assert.ok(phase('cool-down').ok > 0, 'still served after the scrapers stopped');

  assert.deepEqual(r.appLog.errors, [], 'nothing on the app\'s stderr, no error on its stdout');
  assert.deepEqual(r.failures, [], context);
  assert.equal(r.pass, true);
});
