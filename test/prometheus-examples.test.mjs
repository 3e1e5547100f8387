// The Prometheus examples stay valid: promtool accepts the scrape config and
// the rules, the rule unit tests pass, and the Grafana dashboard queries only
// metrics taskprof exports. CI installs the Debian package prometheus (for
// promtool); locally the promtool tests say why they skip when it is absent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { commandWorks } from './helpers.mjs';

const run = promisify(execFile);
const file = (name) => fileURLToPath(new URL(`../examples/prometheus/${name}`, import.meta.url));

// The metrics taskprof exports under the default prefix.
const taskprofMetrics = new Set([
  'taskprof_tasks',
  'taskprof_tasks_created_total',
  'taskprof_tasks_completed_total',
  'taskprof_tasks_abandoned_total',
  'taskprof_task_oldest_age_seconds',
  'taskprof_leak_suspects',
  'taskprof_tracker_dropped_total',
  'taskprof_tasks_by_route',
]);

// PromQL functions, aggregations and keywords the queries may use.
const promqlWords = new Set([
  'sum', 'min', 'max', 'avg', 'count', 'topk', 'bottomk', 'quantile', 'stddev', 'stdvar', 'group', 'count_values',
  'rate', 'irate', 'increase', 'delta', 'idelta', 'deriv', 'predict_linear', 'resets', 'changes',
  'avg_over_time', 'min_over_time', 'max_over_time', 'sum_over_time', 'count_over_time', 'last_over_time', 'quantile_over_time',
  'abs', 'ceil', 'floor', 'round', 'clamp', 'clamp_min', 'clamp_max', 'scalar', 'vector', 'time', 'label_replace', 'label_join',
  'histogram_quantile', 'absent', 'absent_over_time',
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'offset', 'bool',
]);

/** Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or variables. */
function metricNames(expr) {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '') // string literals (label values)
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // range selectors, $__rate_interval included
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '$1') // label lists
    .replace(/\$\{?\w+\}?/g, '') // Grafana variables
    .replace(/\b\d+(?:ms|s|m|h|d|w|y)\b/g, '') // durations (offset 1h)
    .replace(/\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b/gi, ''); // numbers
  return [...stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)].map(([word]) => word).filter((word) => !promqlWords.has(word));
}

const hasPromtool = await commandWorks('promtool');
const skipPromtool = hasPromtool ? false : 'promtool is not installed (apt-get install prometheus)';
if (!hasPromtool) console.log('# SKIP promtool tests: promtool is not on PATH (CI installs the Debian package prometheus)');

/** Runs promtool; a non-zero exit fails with everything promtool printed. */
async function promtool(...args) {
  try {
    const { stdout, stderr } = await run('promtool', args, { timeout: 60_000 });
    return stdout + stderr;
  } catch (error) {
    throw new Error(`promtool ${args.join(' ')} failed (exit ${error.code}):\n${error.stdout ?? ''}${error.stderr ?? ''}`);
  }
}

test('promtool check config accepts prometheus.yml and the rule files it loads', { skip: skipPromtool }, async () => {
  const output = await promtool('check', 'config', file('prometheus.yml'));
  assert.match(output, /SUCCESS: 2 rule files found/);
  assert.match(output, /recording\.yml\n\s+SUCCESS: 3 rules found/);
  assert.match(output, /is valid prometheus config file syntax/);
});

test('promtool check rules accepts alerts.yml', { skip: skipPromtool }, async () => {
  const output = await promtool('check', 'rules', file('alerts.yml'));
  assert.match(output, /SUCCESS: 4 rules found/);
});

test('promtool test rules: growth alerts fire on a leak, not on noise, plateaus or traffic ramps', { skip: skipPromtool }, async () => {
  const output = await promtool('test', 'rules', file('alerts.test.yml'));
  assert.match(output, /SUCCESS/);
});

test('the metric-name check finds names taskprof does not export', () => {
  assert.deepEqual(metricNames('sum by (type) (rate(taskprof_tasks_created_total{instance=~"$instance"}[$__rate_interval]))'), ['taskprof_tasks_created_total']);
  assert.deepEqual(metricNames('avg_over_time(taskprof_tasks[10m] offset 1h) > 1e3'), ['taskprof_tasks']);
  assert.deepEqual(metricNames('sum(rate(nodejs_eventloop_lag_seconds{job="a"}[5m])) / taskprof_task_count'), ['nodejs_eventloop_lag_seconds', 'taskprof_task_count']);
});

test('the Grafana dashboard is valid JSON and queries only taskprof metrics', () => {
  const dashboard = JSON.parse(readFileSync(file('grafana-dashboard.json'), 'utf8'));
  assert.ok(dashboard.schemaVersion >= 39, `schemaVersion ${dashboard.schemaVersion}`);
  assert.ok(dashboard.uid && dashboard.title);
  assert.ok(dashboard.__inputs.some((input) => input.name === 'DS_PROMETHEUS' && input.pluginId === 'prometheus'));

  const variables = new Map(dashboard.templating.list.map((variable) => [variable.name, variable]));
  assert.equal(variables.get('datasource')?.type, 'datasource');
  assert.equal(variables.get('datasource').query, 'prometheus');
  assert.equal(variables.get('datasource').current.value, '${DS_PROMETHEUS}');
  const instance = variables.get('instance');
  assert.equal(instance?.type, 'query');
  assert.equal(instance.query.query, 'label_values(taskprof_tasks, instance)');
  assert.equal(instance.datasource.uid, '${datasource}');

  const panels = dashboard.panels.flatMap((panel) => (panel.type === 'row' ? (panel.panels ?? []) : [panel]));
  assert.ok(panels.length >= 7, `${panels.length} panels`);
  assert.equal(new Set(panels.map((panel) => panel.id)).size, panels.length, 'panel ids are unique');
  const used = new Set();
  // Fleet panels read the series recording.yml records (across instances, so not filtered by $instance).
  const recorded = new Set([...readFileSync(file('recording.yml'), 'utf8').matchAll(/- record: (\S+)/g)].map((m) => m[1]));
  for (const panel of panels) {
    assert.equal(panel.datasource?.uid, '${datasource}', `panel "${panel.title}" uses the datasource variable`);
    assert.ok(panel.targets?.length > 0, `panel "${panel.title}" has queries`);
    const fleet = panel.title.startsWith('Fleet:');
    for (const target of panel.targets) {
      const names = metricNames(target.expr);
      assert.ok(names.length > 0, `panel "${panel.title}": no metric in ${target.expr}`);
      for (const name of names) {
        assert.ok(fleet ? recorded.has(name) : taskprofMetrics.has(name), `panel "${panel.title}": unknown metric ${name} in ${target.expr}`);
        used.add(name);
      }
      if (!fleet) assert.ok(target.expr.includes('instance=~"$instance"'), `panel "${panel.title}" filters by $instance: ${target.expr}`);
    }
  }
  assert.ok(panels.some((panel) => panel.targets.some((t) => /by \(instance\)/.test(t.expr))), 'a per-instance panel');
  assert.ok(panels.some((panel) => panel.title.startsWith('Fleet:')), 'a fleet panel');
  assert.deepEqual([...taskprofMetrics].filter((name) => !used.has(name)), [], 'every metric has a panel');
  assert.deepEqual([...recorded].filter((name) => !used.has(name) && name !== 'instance:taskprof_tasks:sum' && name !== 'method_route:taskprof_tasks_by_route:sum'), [], 'the growth rule has a panel');
  const types = new Set(panels.map((panel) => panel.type));
  assert.ok(types.has('stat') && types.has('timeseries'));
});

test('the alert rules and their tests name only taskprof metrics', () => {
  for (const name of ['alerts.yml', 'alerts.test.yml', 'recording.yml']) {
    const text = readFileSync(file(name), 'utf8');
    const names = new Set(text.match(/\btaskprof_[a-z_]+/g));
    assert.ok(names.size > 0, name);
    for (const metric of names) assert.ok(taskprofMetrics.has(metric), `${name}: unknown metric ${metric}`);
  }
});
