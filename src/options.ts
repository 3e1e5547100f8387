// The one options type, its defaults, and its validation.
import type { IncomingHttpHeaders } from 'node:http';
import { defaultTrackerSettings, trackingModes, type TrackingMode } from './tracker/types.js';
import { constants } from 'node:os';
import type { ProfilerEngineName } from './v8/engine.js';
import type { LeakDetectionOptions, LeakDetectionSettings } from './detect/growth.js';
import type { PromRegistry } from './metrics/metrics.js';
import {
  defaultDumpLimitBytes,
  defaultHeapSamplingBytes,
  defaultLeakDetection,
  defaultMaxProfileSeconds,
  defaultCpuProfileHz,
  defaultBlockThresholdMs,
  defaultMaxRoutes,
  defaultMetricsPrefix,
  defaultPrefix,
  maxWindowSamples,
  profilerEngines,
  refusedSignals,
} from './defaults.js';

export type { LeakDetectionOptions } from './detect/growth.js';

/** What `authorize` is given: the request as taskprof sees it, what it would serve, and the framework's own request object. */
export interface DebugRequestInfo {
  readonly method: string;
  /** Path and query as sent, relative to where the middleware is mounted. */
  readonly url: string;
  /**
   * What taskprof would serve: `index`, `cmdline`, `vars`, `metrics`, or a
   * profile's name (`tasks` for `goroutine` too, `heap`, `allocs`, `profile`,
   * `heapsnapshot`, `leaks`...); undefined for a path it does not serve
   * (answered 404 once allowed). Paths are canonical before this is decided:
   * dot segments, percent-encoding, backslashes and empty segments are
   * refused with 400, so no spelling of a path reaches another endpoint.
   */
  readonly endpoint?: string | undefined;
  /** The path that decided `endpoint` (no query), relative to the mount. */
  readonly path?: string;
  readonly headers: IncomingHttpHeaders;
  readonly remoteAddress: string | undefined;
  /** Express `req`, Fastify `request`, or node's `IncomingMessage`. */
  readonly native: unknown;
}

// Every option TaskprofOptions names: anything else is a typo to report.
const knownOptions: ReadonlySet<string> = new Set([
  'prefix', 'tracking', 'stackBudget', 'maxTasks', 'token', 'authorize', 'maxDumpBytes', 'maxProfileSeconds', 'engine',
  'heapSnapshot', 'heapSamplingInterval', 'heapSampling', 'availableMemory', 'register', 'metricsPrefix', 'maxRoutes',
  'leakDetection', 'dumpOnSignal', 'dumpPath', 'cpuProfileHz', 'blockThresholdMs', 'discovery',
]);

/** Why a token can never match what a client sends, if it cannot. */
function tokenProblem(token: string): string | undefined {
  if (token.length === 0) return 'is empty';
  // A header value is trimmed and carries visible ASCII only (RFC 9110 token68 and friends).
  if (token.trim() !== token) return 'starts or ends with white space, which a header value cannot carry';
  if (!/^[\x21-\x7e]+$/.test(token)) return 'may hold visible ASCII characters only (no spaces, control characters or non-ASCII), as an HTTP header can carry';
  return undefined;
}

export interface TaskprofOptions {
  /** Path under which the endpoints are served. Default `/debug`. */
  prefix?: string;
  /**
   * What the tracker records. Every mode but `off` counts every task exactly.
   * `sampled` (the default): a creation stack for every task while capturing
   * them stays within `stackBudget`, sampled above it; `full`: a stack for
   * every task, and every async resource Node reports; `counts`: counts by
   * type only; `off`. Process-wide: the last one set wins.
   */
  tracking?: TrackingMode;
  /**
   * `sampled`: the share of the process's CPU time that capturing creation
   * stacks may take, from 0 to 1. Default 0.01 (1%).
   */
  stackBudget?: number;
  /** Most task records (with their stacks) kept at once; counts are never capped. Default 200000. */
  maxTasks?: number;
  /** Allow requests carrying `Authorization: Bearer <token>`, from anywhere. */
  token?: string;
  /** Decide per request; when set, loopback requests are not allowed by default. */
  authorize?: (request: DebugRequestInfo) => boolean | Promise<boolean>;
  /** Bytes after which a `debug=2` dump is cut, with a closing line. Default 64 MiB. */
  maxDumpBytes?: number;
  /** Longest CPU profile a client may ask for, in seconds. Default 300. */
  maxProfileSeconds?: number;
  /**
   * Samples per second of CPU profiles (`profile`, and `block?seconds=N`). Default 100, Go's rate;
   * at most 1000. Profiles taken at once share one sampler, at the rate of the first. A lower
   * rate gives coarser profiles, not a cheaper profiler: the profiler being on is the cost (BENCHMARKS.md).
   */
  cpuProfileHz?: number;
  /**
   * The `block` profile lists stretches where the event loop was held by synchronous
   * work for at least this many milliseconds. Default 50 (the browser's long task).
   */
  blockThresholdMs?: number;
  /** CPU and heap profiler: `inspector` (Node's built-in, default) or `v8-profiler-next` (optional native addon the app installs). */
  engine?: ProfilerEngineName;
  /** Serve full heap snapshots (they contain every secret in memory). Default false. */
  heapSnapshot?: boolean;
  /** Mean bytes between samples of the heap profiler taskprof starts when mounted. Default 524288 (512 KiB). */
  heapSamplingInterval?: number;
  /**
   * What that one sampler keeps: `inuse` (live objects, served as `heap`; the default,
   * except with `tracking: 'counts'` or `'off'`), `allocs` (every allocation, freed ones
   * too, served as `allocs`), or `off` (no sampler, for apps that cannot spare its cost;
   * the default with `tracking: 'counts'` or `'off'`). V8 runs one sampler per process.
   */
  heapSampling?: HeapSampling;
  /** Bytes of memory free for a heap snapshot. Default: the container limit less RSS where one applies, else free system memory. */
  availableMemory?: () => number;
  /**
   * The app's prom-client Registry: taskprof's metrics are registered on it too,
   * so the app's own /metrics includes them. `<prefix>/metrics` serves them either way.
   */
  register?: PromRegistry;
  /** Prefix of every metric name. Default `taskprof_` (never clashes with prom-client's `nodejs_` defaults). */
  metricsPrefix?: string;
  /** Distinct (method, route) pairs in `taskprof_tasks_by_route`; the rest count as route="other". Default 100. */
  maxRoutes?: number;
  /**
   * The growth detector behind `<prefix>/pprof/leaks` and `taskprof_leak_suspects`:
   * its settings, or `false` for none. Defaults: sample every 10 s, keep 30 min,
   * flag a group after 12 samples (2 min) of growth by at least 10 tasks.
   */
  leakDetection?: LeakDetectionOptions | false;
  /**
   * Write the `debug=2` listing when the process gets this signal (Go's
   * goroutine dump on SIGQUIT), for processes that cannot be reached over
   * HTTP. Off by default; `SIGUSR1` is refused (Node's inspector uses it).
   */
  dumpOnSignal?: NodeJS.Signals;
  /** Where that dump goes: a file (replaced at each dump) instead of stderr. */
  dumpPath?: string;
  /**
   * Write a discovery file for `taskprof ps` while mounted (<runtime dir>/<pid>.json:
   * the pid, the prefixes, whether a token is needed; never the token). Default true.
   */
  discovery?: boolean;
}

export type HeapSampling = 'inuse' | 'allocs' | 'off';

export interface ResolvedOptions {
  prefix: string;
  tracking: TrackingMode | undefined;
  stackBudget: number;
  maxTasks: number;
  token: string | undefined;
  authorize: ((request: DebugRequestInfo) => boolean | Promise<boolean>) | undefined;
  maxDumpBytes: number;
  maxProfileSeconds: number;
  cpuProfileHz: number;
  blockThresholdMs: number;
  engine: ProfilerEngineName;
  heapSnapshot: boolean;
  heapSamplingInterval: number;
  heapSampling: HeapSampling;
  availableMemory: (() => number) | undefined;
  register: PromRegistry | undefined;
  metricsPrefix: string;
  maxRoutes: number;
  /** false: no detector; undefined: keep the one running (or start it with defaults). */
  leakDetection: LeakDetectionSettings | false | undefined;
  dumpOnSignal: NodeJS.Signals | undefined;
  dumpPath: string | undefined;
  discovery: boolean;
}

function positiveInteger(name: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new TypeError(`taskprof: option "${name}" must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

function boundedInteger(name: string, value: unknown, fallback: number, min: number, max: number): number {
  const n = positiveInteger(name, value, fallback, min);
  if (n > max) throw new TypeError(`taskprof: option "${name}" must be an integer from ${min} to ${max}, got ${n}`);
  return n;
}

function shareOption(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
    throw new TypeError(`taskprof: option "${name}" must be a share of CPU time from 0 to 1 (0.01 is 1%), got ${String(value)}`);
  }
  return value;
}

function booleanOption(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`taskprof: option "${name}" must be true or false, got ${String(value)}`);
  return value;
}

function functionOption<T extends Function>(name: string, value: T | undefined): T | undefined {
  if (value !== undefined && typeof value !== 'function') throw new TypeError(`taskprof: option "${name}" must be a function`);
  return value;
}

function registerOption(value: unknown): PromRegistry | undefined {
  if (value === undefined) return undefined;
  const registry = value as Partial<PromRegistry> | null;
  if (registry === null || typeof registry !== 'object' || typeof registry.registerMetric !== 'function' || typeof registry.metrics !== 'function') {
    throw new TypeError('taskprof: option "register" must be a prom-client Registry (new Registry() or the default `register`)');
  }
  return value as PromRegistry;
}

function leakDetectionOption(value: unknown): LeakDetectionSettings | false | undefined {
  if (value === undefined || value === false) return value;
  if (value === null || typeof value !== 'object') {
    throw new TypeError('taskprof: option "leakDetection" must be false or an object { intervalMs, windowMs, minSamples, minGrowth, maxGroups }');
  }
  const given = value as LeakDetectionOptions;
  const settings: LeakDetectionSettings = {
    intervalMs: positiveInteger('leakDetection.intervalMs', given.intervalMs, defaultLeakDetection.intervalMs, 10),
    windowMs: positiveInteger('leakDetection.windowMs', given.windowMs, defaultLeakDetection.windowMs, 1),
    minSamples: positiveInteger('leakDetection.minSamples', given.minSamples, defaultLeakDetection.minSamples, 3),
    minGrowth: positiveInteger('leakDetection.minGrowth', given.minGrowth, defaultLeakDetection.minGrowth, 1),
    maxGroups: positiveInteger('leakDetection.maxGroups', given.maxGroups, defaultLeakDetection.maxGroups, 1),
  };
  if (settings.windowMs / settings.intervalMs > maxWindowSamples) {
    throw new TypeError(
      `taskprof: option "leakDetection.windowMs" may hold at most ${maxWindowSamples} samples of intervalMs (${settings.intervalMs} ms), got ${settings.windowMs}`,
    );
  }
  if (settings.windowMs < settings.intervalMs * settings.minSamples) {
    throw new TypeError(
      `taskprof: option "leakDetection.windowMs" must hold at least minSamples (${settings.minSamples}) intervals of ${settings.intervalMs} ms, got ${settings.windowMs}`,
    );
  }
  return settings;
}

function dumpPathOption(value: unknown, signal: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw new TypeError('taskprof: option "dumpPath" must be a file path');
  if (signal === undefined) throw new TypeError('taskprof: option "dumpPath" needs "dumpOnSignal" (the signal that writes the dump)');
  return value;
}

function validateDumpSignal(value: unknown): NodeJS.Signals | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !(value in constants.signals) || refusedSignals.includes(value)) {
    throw new TypeError(
      `taskprof: option "dumpOnSignal" must be a signal name such as "SIGUSR2" or "SIGQUIT" (not ${refusedSignals.join(', ')}: SIGUSR1 starts Node's inspector, and the others must keep ending the process), got ${JSON.stringify(value)}`,
    );
  }
  return value as NodeJS.Signals;
}


/** Validates once, into a new object; the caller's object is never written. */
export function resolveOptions(options: TaskprofOptions = {}): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('taskprof: options must be an object');
  let prefix = options.prefix ?? defaultPrefix;
  if (typeof prefix !== 'string' || !prefix.startsWith('/') || /[?#\s]/.test(prefix)) {
    throw new TypeError(`taskprof: option "prefix" must be a path starting with "/", got ${JSON.stringify(prefix)}`);
  }
  prefix = prefix.replace(/\/+$/, '');
  if ((options as { samplingInterval?: unknown }).samplingInterval !== undefined) {
    throw new TypeError('taskprof: option "samplingInterval" is gone: counts are exact, and stacks are captured within "stackBudget" (a share of CPU time, default 0.01)');
  }
  for (const key of Object.keys(options)) {
    if (!knownOptions.has(key) && key !== 'samplingInterval') {
      throw new TypeError(`taskprof: unknown option ${JSON.stringify(key)}; the options are ${[...knownOptions].join(', ')}`);
    }
  }
  const tracking = options.tracking;
  if (tracking !== undefined && !trackingModes.includes(tracking)) {
    throw new TypeError(`taskprof: option "tracking" must be one of ${trackingModes.join(', ')}, got ${JSON.stringify(tracking)}`);
  }
  const token = options.token;
  if (token !== undefined) {
    if (typeof token !== 'string') throw new TypeError('taskprof: option "token" must be a non-empty string');
    const problem = tokenProblem(token);
    if (problem !== undefined) throw new TypeError(`taskprof: option "token" ${problem}: no request could ever match it`);
  }
  const authorize = options.authorize;
  if (authorize !== undefined && typeof authorize !== 'function') {
    throw new TypeError('taskprof: option "authorize" must be a function (request) => boolean | Promise<boolean>');
  }
  const engine = options.engine;
  if (engine !== undefined && !profilerEngines.includes(engine)) {
    throw new TypeError(`taskprof: option "engine" must be one of ${profilerEngines.join(', ')}, got ${JSON.stringify(engine)}`);
  }
  // `counts` is the cheapest mode: its sampler is off unless asked for (the
  // sampler alone measured about +2% to +4% of a hello-world request).
  const heapSampling = options.heapSampling ?? (tracking === 'counts' || tracking === 'off' ? 'off' : 'inuse');
  if (heapSampling !== 'inuse' && heapSampling !== 'allocs' && heapSampling !== 'off') {
    throw new TypeError(`taskprof: option "heapSampling" must be "inuse", "allocs" or "off", got ${JSON.stringify(heapSampling)}`);
  }
  const metricsPrefix = options.metricsPrefix ?? defaultMetricsPrefix;
  if (typeof metricsPrefix !== 'string' || !/^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/.test(metricsPrefix)) {
    throw new TypeError(`taskprof: option "metricsPrefix" must be empty or match [a-zA-Z_:][a-zA-Z0-9_:]*, got ${JSON.stringify(metricsPrefix)}`);
  }
  if (heapSampling === 'allocs' && engine === 'v8-profiler-next') {
    throw new TypeError('taskprof: option "heapSampling: allocs" needs the inspector engine (v8-profiler-next cannot keep samples of freed objects)');
  }
  return {
    prefix,
    tracking,
    stackBudget: shareOption('stackBudget', options.stackBudget, defaultTrackerSettings.stackBudget),
    maxTasks: positiveInteger('maxTasks', options.maxTasks, defaultTrackerSettings.maxTasks, 0),
    token,
    authorize,
    maxDumpBytes: positiveInteger('maxDumpBytes', options.maxDumpBytes, defaultDumpLimitBytes, 1024),
    maxProfileSeconds: positiveInteger('maxProfileSeconds', options.maxProfileSeconds, defaultMaxProfileSeconds, 1),
    cpuProfileHz: boundedInteger('cpuProfileHz', options.cpuProfileHz, defaultCpuProfileHz, 1, 1000),
    blockThresholdMs: positiveInteger('blockThresholdMs', options.blockThresholdMs, defaultBlockThresholdMs, 1),
    engine: engine ?? 'inspector',
    heapSnapshot: booleanOption('heapSnapshot', options.heapSnapshot, false),
    heapSamplingInterval: positiveInteger('heapSamplingInterval', options.heapSamplingInterval, defaultHeapSamplingBytes, 1024),
    heapSampling,
    availableMemory: functionOption('availableMemory', options.availableMemory),
    register: registerOption(options.register),
    metricsPrefix,
    maxRoutes: positiveInteger('maxRoutes', options.maxRoutes, defaultMaxRoutes, 1),
    leakDetection: leakDetectionOption(options.leakDetection),
    dumpOnSignal: validateDumpSignal(options.dumpOnSignal),
    dumpPath: dumpPathOption(options.dumpPath, options.dumpOnSignal),
    discovery: booleanOption('discovery', options.discovery, true),
  };
}
