// A fleet: 10 instances of an app, 3 of them leaking at different rates, and
// a real Prometheus (Debian package prometheus) scraping all 10 with the
// shipped rule files. Through Prometheus's HTTP API, the shipped leak alert
// selects exactly the 3 leaking instances, and the shipped recording rule
// gives the fleet's growth by route.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { steadyLoad } from './fixtures/growth-apps.mjs';
import { commandWorks, eventually, fixturesDir, freePort, startChildApp } from './helpers.mjs';

const hasPrometheus = await commandWorks('prometheus', ['--version']);
if (!hasPrometheus) console.log('# SKIP fleet test: prometheus is not on PATH (CI installs the Debian package prometheus)');
const examples = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'prometheus');

/** The `expr` of a rule in a shipped rule file (single-line expressions only). */
function ruleExpr(file, name) {
  const text = readFileSync(path.join(examples, file), 'utf8');
  const match = new RegExp(`- (?:alert|record): ${name}\\n\\s+expr: ([^|\\n][^\\n]*)\\n`).exec(text);
  assert.ok(match, `${name} in ${file}`);
  return match[1].trim();
}


async function query(prometheus, expr) {
  const res = await fetch(`${prometheus}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = await res.json();
  assert.equal(body.status, 'success', JSON.stringify(body));
  return body.data.result;
}

test('10 instances, 3 leaking at different rates: the shipped alert selects exactly those 3, the recording rule gives fleet growth by route', { skip: hasPrometheus ? false : 'prometheus is not installed (apt-get install prometheus)', timeout: 240_000 }, async () => {
  const script = path.join(fixturesDir, 'fleet-app.mjs');
  // Leaked timers per second on the last three; none on the others.
  const leakRates = [0, 0, 0, 0, 0, 0, 0, 2, 5, 10];
  const stops = [];
  const dir = mkdtempSync(path.join(tmpdir(), 'taskprof-fleet-'));
  const started = Array.from({ length: 10 }, () => startChildApp(script, []));
  let instances = [];
  let prometheus;
  // A test process killed mid-run takes its Prometheus with it.
  const killPrometheus = () => prometheus?.kill();
  process.once('exit', killPrometheus);
  try {
    instances = await Promise.all(started);
    for (const [i, instance] of instances.entries()) {
      stops.push(steadyLoad(instance.base, ['/work'], 10, 1000));
      if (leakRates[i] > 0) stops.push(steadyLoad(instance.base, ['/leak'], leakRates[i], 1000));
    }
    const port = await freePort();
    const targets = instances.map((instance) => new URL(instance.base).host);
    writeFileSync(
      path.join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        `rule_files: [${JSON.stringify(path.join(examples, 'alerts.yml'))}, ${JSON.stringify(path.join(examples, 'recording.yml'))}]`,
        'scrape_configs:',
        '  - job_name: fleet',
        '    metrics_path: /debug/metrics',
        `    static_configs: [{ targets: ${JSON.stringify(targets)} }]`,
        '',
      ].join('\n'),
    );
    prometheus = spawn('prometheus', [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    prometheus.stderr.on('data', (chunk) => (log = (log + chunk).slice(-4000)));
    const api = `http://127.0.0.1:${port}`;
    assert.ok(await eventually(async () => (await fetch(`${api}/-/ready`).catch(() => undefined))?.status === 200, 30_000), `prometheus is ready: ${log}`);
    assert.ok(await eventually(async () => (await query(api, 'up == 1')).length === 10, 30_000), 'all 10 targets are up');

    // The shipped alert's expression, as Prometheus evaluates it.
    const alertExpr = ruleExpr('alerts.yml', 'TaskprofLeakSuspected');
    const leaking = new Set(targets.slice(7));
    const selected = async () => new Set((await query(api, alertExpr)).map((s) => s.metric.instance));
    const same = (a, b) => a.size === b.size && [...a].every((x) => b.has(x));
    assert.ok(await eventually(async () => same(await selected(), leaking), 60_000), `the alert selects the 3 leaking instances; it selects ${[...(await selected())].join(', ')}`);
    // ...and Prometheus's rule manager has the alert pending for exactly those.
    assert.ok(
      await eventually(async () => {
        const alerts = (await (await fetch(`${api}/api/v1/alerts`)).json()).data.alerts.filter((a) => a.labels.alertname === 'TaskprofLeakSuspected');
        return same(new Set(alerts.map((a) => a.labels.instance)), leaking);
      }, 15_000),
      'TaskprofLeakSuspected is pending on exactly the leaking instances',
    );
    // The clean seven are scraped and say 0, not absent.
    const zero = await query(api, 'taskprof_leak_suspects == 0');
    assert.deepEqual(new Set(zero.map((s) => s.metric.instance)), new Set(targets.slice(0, 7)));

    // Fleet growth by route from the recording rule: the leaking route grows by
    // about the leak rates' sum (17/s), the clean route does not grow.
    const growth = 'method_route:taskprof_tasks_by_route:deriv10m_per_hour';
    const expected = leakRates.reduce((a, b) => a + b, 0) * 3600;
    const byRoute = async () => new Map((await query(api, growth)).map((s) => [s.metric.route, Number(s.value[1])]));
    assert.ok(
      await eventually(async () => {
        const rates = await byRoute();
        const leak = rates.get('/leak');
        return leak !== undefined && Math.abs(leak - expected) < expected * 0.3 && Math.abs(rates.get('/work') ?? 0) < expected * 0.05;
      }, 30_000),
      `fleet growth by route: ${JSON.stringify([...(await byRoute())])}, expected /leak near ${expected}/h and /work near 0`,
    );
    const rates = await byRoute();
    console.log(`# fleet growth by route (tasks per hour): /leak ${Math.round(rates.get('/leak'))} (leak rates sum to ${expected}), /work ${Math.round(rates.get('/work') ?? 0)}`);
    const perInstance = await query(api, 'instance:taskprof_tasks:sum');
    assert.equal(perInstance.length, 10, 'one per-instance series per instance');
  } finally {
    for (const stop of stops) stop();
    if (prometheus !== undefined && prometheus.exitCode === null) {
      prometheus.kill();
      await once(prometheus, 'exit');
    }
    process.off('exit', killPrometheus);
    await Promise.all(started.map((starting) => starting.then((instance) => instance.close(), () => undefined)));
    rmSync(dir, { recursive: true, force: true });
  }
});
