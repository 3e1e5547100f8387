// Prometheus metrics through prom-client: task counts by type, cumulative
// created/completed/abandoned counters (so rate() sees spikes a gauge scraped
// every 15 s misses), the oldest task's age, live tasks by route, and the
// growth detector's suspects. Every value is read from counters the tracker
// keeps up to date: a scrape never walks the tasks.
import { Counter, Gauge, Registry } from 'prom-client';
import { tracker as defaultTracker, type Tracker, type TypeCount } from './tracker.js';
import { growthDetector as defaultDetector, type GrowthDetector } from './growth.js';

export type PromRegistry = Registry<'text/plain; version=0.0.4; charset=utf-8'> | Registry<'application/openmetrics-text; version=1.0.0; charset=utf-8'>;

export const defaultMetricsPrefix = 'taskprof_';

// The metrics of one scrape are collected one after another in the same
// turn (prom-client calls every collect() before awaiting any): they share
// one read of the counts, dropped once that turn is over.
function createSnapshotReader(tracker: Tracker): () => TypeCount[] {
  let snapshot: TypeCount[] | undefined;
  return () => {
    if (snapshot === undefined) {
      snapshot = tracker.typeCounts(false);
      queueMicrotask(() => {
        snapshot = undefined;
      });
    }
    return snapshot;
  };
}

const routeHelp = 'Live tasks created while serving each HTTP route (method and route template); routes past the maxRoutes option are counted as route="other".';

// prom-client reads `help` at every scrape; the note on estimates follows the tracking mode.
function setHelp(metric: Gauge<string>, help: string): void {
  (metric as unknown as { help: string }).help = help;
}

function estimateNote(tracker: Tracker): string {
  if (!tracker.sampled) return '';
  return ` Promise values are estimates: tracking mode "${tracker.mode}" records 1 in ${tracker.settings.samplingInterval} promises.`;
}

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
  const typeHelp = 'Live tasks (pending promises, timers, sockets, servers, requests and other async resources) by type: Node\'s go_goroutines.';
  const counterOf = (byType: (count: TypeCount) => number | undefined) =>
    function (this: Counter<'type'>): void {
      this.reset();
      for (const count of read()) {
        const value = byType(count);
        if (value !== undefined) this.inc({ type: count.type }, value);
      }
    };
  const definitions: Array<() => Gauge | Counter> = [
    () =>
      new Gauge({
        name: prefix + 'tasks',
        help: typeHelp,
        labelNames: ['type'],
        registers,
        collect(this: Gauge<'type'>) {
          setHelp(this, typeHelp + estimateNote(tracker));
          this.reset();
          for (const count of read()) this.set({ type: count.type }, count.live);
        },
      }),
    () =>
      new Counter({
        name: prefix + 'tasks_created_total',
        help: 'Tasks created by type since tracking started. Without full tracking, only handles made through Node\'s public functions (timers, servers, client sockets and requests, child processes) are counted, and promises are estimates.',
        labelNames: ['type'],
        registers,
        collect: counterOf((count) => count.created),
      }),
    () =>
      new Counter({
        name: prefix + 'tasks_completed_total',
        help: 'Tasks that settled, fired, closed or were destroyed, by type, since tracking started. Handles appear only under full tracking (otherwise their ends are not seen); promises are estimates when tracking samples.',
        labelNames: ['type'],
        registers,
        collect: counterOf((count) => (count.completionsCounted ? count.completed : undefined)),
      }),
    () =>
      new Counter({
        name: prefix + 'tasks_abandoned_total',
        help: 'Tasks garbage collected without ever settling (a promise nobody resolves and nobody holds), by type; see /debug/pprof/leaks for where they were made. Only under full tracking, whose settled hook tells these apart.',
        labelNames: ['type'],
        registers,
        collect: counterOf((count) => (count.abandonedCounted ? count.abandoned : undefined)),
      }),
    () =>
      new Gauge({
        name: prefix + 'task_oldest_age_seconds',
        help: 'Age of the oldest live task of each type with a record (every task under full tracking; the sampled ones otherwise).',
        labelNames: ['type'],
        registers,
        collect(this: Gauge<'type'>) {
          this.reset();
          const now = Date.now();
          for (const count of read()) {
            const oldest = tracker.oldest(count.type);
            if (oldest !== undefined) this.set({ type: count.type }, (now - oldest.createdAt) / 1000);
          }
        },
      }),
    () =>
      new Gauge({
        name: prefix + 'tasks_by_route',
        help: routeHelp,
        labelNames: ['method', 'route'],
        registers,
        collect(this: Gauge<'method' | 'route'>) {
          setHelp(this, routeHelp + estimateNote(tracker));
          this.reset();
          for (const count of tracker.routes.counts()) this.set({ method: count.method, route: count.route }, Math.max(0, Math.round(count.live)));
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
        help: 'Tasks not recorded because the tracker held maxTasks records; counts stay right, listings miss them.',
        registers,
        collect(this: Counter) {
          this.reset();
          this.inc(tracker.dropped);
        },
      }),
    () =>
      new Gauge({
        name: prefix + 'tracker_records',
        help: 'Task records the tracker holds now (its memory grows with this, up to maxTasks).',
        registers,
        collect(this: Gauge) {
          this.set(tracker.recordCount);
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
