// Prometheus metrics through prom-client: exact task counts by type,
// cumulative created/completed/abandoned counters (so rate() sees spikes a
// gauge scraped every 15 s misses), the oldest recorded task's age, live
// tasks by route, and the growth detector's suspects. Every value is read
// from counts the tracker keeps up to date; only live timers are counted by
// walking Node's timer lists (docs/design.md).
import { Counter, Gauge, Registry } from 'prom-client';
import { tracker as defaultTracker, type TaskSnapshot, type Tracker } from '../tracker/tracker.js';
import { PROMISE_TYPE, type TypeCount } from '../tracker/types.js';
import { growthDetector as defaultDetector, type GrowthDetector } from '../detect/growth.js';
import { countFlows } from '../tasks/groups.js';

export type PromRegistry = Registry<'text/plain; version=0.0.4; charset=utf-8'> | Registry<'application/openmetrics-text; version=1.0.0; charset=utf-8'>;


// The metrics of one scrape are collected one after another in the same
// turn (prom-client calls every collect() before awaiting any): they share
// one read of the counts, dropped once that turn is over.
function createSnapshotReader(tracker: Tracker): () => TaskSnapshot {
  let snapshot: TaskSnapshot | undefined;
  return () => {
    if (snapshot === undefined) {
      snapshot = tracker.snapshot(true);
      queueMicrotask(() => {
        snapshot = undefined;
      });
    }
    return snapshot;
  };
}

// taskprof_flows has no value where flows are not linked: no sample rather
// than a made-up 0 (a gauge's own reset() leaves one).
class FlowsGauge extends Gauge {
  readonly #tracker: Tracker;
  constructor(tracker: Tracker, configuration: ConstructorParameters<typeof Gauge>[0]) {
    super(configuration);
    this.#tracker = tracker;
  }
  override async get(): ReturnType<Gauge['get']> {
    const metric = await super.get();
    return this.#tracker.linksFlows ? metric : { ...metric, values: [] };
  }
}

const routeHelp = 'Live tasks created while serving each HTTP route (method and route template); routes past the maxRoutes option are counted as route="other".';

const sinceTracking = ' Counts tasks made since tracking started (tasks already pending then are not counted), so created - completed - abandoned = tasks.';

/**
 * Creates taskprof's metrics on `registry`. A registry gets them once; a name
 * the registry already has from elsewhere is an error naming `metricsPrefix`.
 */
export function registerTaskMetrics(
  registry: PromRegistry,
  prefix: string,
  tracker: Tracker = defaultTracker,
  detector: GrowthDetector = defaultDetector,
): void {
  const read = createSnapshotReader(tracker);
  const registers = [registry];
  const metrics: Array<Gauge | Counter> = [];
  const typeHelp = 'Live tasks (pending promises, timers, sockets, servers, requests) by type, exact: Node\'s go_goroutines. Tasks made since tracking started.';
  const counterOf = (byType: (count: TypeCount) => number) =>
    function (this: Counter<'type'>): void {
      this.reset();
      for (const count of read().counts) this.inc({ type: count.type }, byType(count));
    };
  const gaugeOf = (byType: (count: TypeCount) => number) =>
    function (this: Gauge<'type'>): void {
      this.reset();
      for (const count of read().counts) this.set({ type: count.type }, byType(count));
    };
  const definitions: Array<() => Gauge | Counter> = [
    () =>
      new Gauge({
        name: prefix + 'tasks',
        help: typeHelp,
        labelNames: ['type'],
        registers,
        collect: gaugeOf((count) => count.live),
      }),
    () =>
      new Counter({
        name: prefix + 'tasks_created_total',
        help: 'Tasks created by type since tracking started.' + sinceTracking,
        labelNames: ['type'],
        registers,
        collect: counterOf((count) => count.created),
      }),
    () =>
      new Counter({
        name: prefix + 'tasks_completed_total',
        help: 'Tasks that settled, fired, were cleared, closed or were destroyed, by type, since tracking started.' + sinceTracking,
        labelNames: ['type'],
        registers,
        collect: counterOf((count) => count.completed),
      }),
    () =>
      new Counter({
        name: prefix + 'tasks_abandoned_total',
        help: 'Tasks garbage collected without ever settling (a promise nobody resolves and nobody holds), by type, counted after the collection that found them; see /debug/pprof/leaks for where they were made.',
        labelNames: ['type'],
        registers,
        collect: counterOf((count) => count.abandoned),
      }),
    () =>
      new FlowsGauge(tracker, {
        name: prefix + 'flows',
        help:
          'Live async flows: chains of pending promises linked by awaiting, each counted once (a stuck request handler awaiting a helper awaiting a never-resolved promise is 1 flow, 3 in taskprof_tasks{type="Promise"}). ' +
          'Exact while every promise gets its stack (tracking "full", and the default mode within its stack budget); beyond the budget, an estimate from the sampled promises\' links. Absent under tracking "counts" and "off", which link no promises.',
        registers,
        collect(this: Gauge) {
          if (tracker.linksFlows) this.set(countFlows(tracker, read().counts.find((count) => count.type === PROMISE_TYPE)?.live ?? 0));
        },
      }),
    () =>
      new Gauge({
        name: prefix + 'task_oldest_age_seconds',
        help: 'Age of the oldest live task of each type among those with a record (every task while stack capture is within its budget).',
        labelNames: ['type'],
        registers,
        collect(this: Gauge<'type'>) {
          this.reset();
          const now = Date.now();
          for (const [type, createdAt] of read().oldest) this.set({ type }, (now - createdAt) / 1000);
        },
      }),
    () =>
      new Gauge({
        name: prefix + 'tasks_without_stack',
        help: 'Live tasks of each type without a creation stack: not captured (over the stack budget, or tracking counts), or maxTasks records were held. They are counted in taskprof_tasks all the same.',
        labelNames: ['type'],
        registers,
        collect: gaugeOf((count) => count.withoutStack),
      }),
    () =>
      new Gauge({
        name: prefix + 'tasks_by_route',
        help: routeHelp,
        labelNames: ['method', 'route'],
        registers,
        collect(this: Gauge<'method' | 'route'>) {
          this.reset();
          for (const count of read().routes) this.set({ method: count.method, route: count.route }, Math.max(0, count.live));
        },
      }),
    () =>
      new Gauge({
        name: prefix + 'leak_suspects',
        help: 'Task groups (creation site and labels) the growth detector finds growing steadily; /debug/pprof/leaks lists them.',
        registers,
        collect(this: Gauge) {
          this.set(detector.suspects().length);
        },
      }),
    () =>
      new Counter({
        name: prefix + 'tracker_dropped_total',
        help: 'Tasks not recorded because the tracker held maxTasks records; counts stay exact, listings show them as tasks without a record.',
        registers,
        collect(this: Counter) {
          this.reset();
          this.inc(tracker.dropped);
        },
      }),
    () =>
      new Gauge({
        name: prefix + 'tracker_records',
        help: 'Task records held now: promises with a stack and handles (at most maxTasks), and live timers (whose records their timers hold).',
        registers,
        collect(this: Gauge) {
          this.set(read().records);
        },
      }),
  ];
  try {
    for (const define of definitions) metrics.push(define());
  } catch (error) {
    for (const metric of metrics) registry.removeSingleMetric((metric as unknown as { name: string }).name);
    if (!/already been registered/.test((error as Error).message)) throw error;
    throw new TypeError(`taskprof: cannot register metrics on the given registry (${(error as Error).message}); choose another "metricsPrefix"`);
  }
}

const registered = new WeakMap<PromRegistry, Set<string>>();

/** Registers taskprof's metrics with `prefix` on `registry`, once per (registry, prefix). */
export function ensureTaskMetrics(registry: PromRegistry, prefix: string): void {
  let prefixes = registered.get(registry);
  if (prefixes?.has(prefix)) return;
  registerTaskMetrics(registry, prefix);
  if (prefixes === undefined) {
    prefixes = new Set();
    registered.set(registry, prefixes);
  }
  prefixes.add(prefix);
}

// taskprof's own registries for /debug/metrics: one per format, because
// prom-client renames counters in place when it writes OpenMetrics.
const ownRegistries = new Map<string, { text: PromRegistry; openMetrics: PromRegistry }>();

function openMetricsRegistry(): PromRegistry {
  const registry = new Registry();
  registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE as never);
  return registry;
}

export function ownRegistriesFor(prefix: string): { text: PromRegistry; openMetrics: PromRegistry } {
  let own = ownRegistries.get(prefix);
  if (own === undefined) {
    own = { text: new Registry(), openMetrics: openMetricsRegistry() };
    registerTaskMetrics(own.text, prefix);
    registerTaskMetrics(own.openMetrics, prefix);
    ownRegistries.set(prefix, own);
  }
  return own;
}

/** True when an Accept header prefers OpenMetrics to the Prometheus text format (as Prometheus's own scraper does). */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  let openMetrics = -1;
  let text = -1;
  for (const part of accept.split(',')) {
    const [type = '', ...params] = part.trim().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const weight = q === undefined ? 1 : Number(q.slice(2));
    const name = type.trim().toLowerCase();
    if (name === 'application/openmetrics-text') openMetrics = Math.max(openMetrics, weight);
    else if (name === 'text/plain' || name === 'text/*' || name === '*/*') text = Math.max(text, weight);
  }
  return openMetrics > 0 && openMetrics >= text;
}
