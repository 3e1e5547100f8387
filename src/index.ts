// taskprof's programmatic API: Go's runtime.NumGoroutine, pprof.Lookup(name).WriteTo and pprof.Do.
import type { Writable } from 'node:stream';
import { Readable } from 'node:stream';
import { once } from 'node:events';
import { tracker } from './tracker/tracker.js';
import { defaultTrackerSettings, trackingModes, type TrackerSettings, type TypeCount } from './tracker/types.js';
import { extendLabels, ownWork, runWithLabels, type Labels } from './labels.js';
import { createTasksProfile } from './profiles/tasks.js';
import { configureTracking } from './node.js';

export type { TaskprofOptions, DebugRequestInfo, LeakDetectionOptions } from './options.js';
export type { TrackingMode, TrackerSettings, TypeCount } from './tracker/types.js';
export type { Labels } from './labels.js';
export type { StackFrame } from './stack.js';

/** Live tasks now, exact: Node's runtime.NumGoroutine(). */
export function taskCount(): number {
  return tracker.total();
}

/** Live tasks by type, with created, completed and abandoned counts since tracking started. */
export function taskCounts(): TypeCount[] {
  return tracker.typeCounts();
}

/**
 * Runs `fn` with `labels` added to every task it creates, directly or through
 * callbacks and continuations (Go's pprof.Do). Returns what `fn` returns.
 */
export function withLabels<T>(labels: Labels, fn: () => T): T {
  if (labels === null || typeof labels !== 'object') throw new TypeError('withLabels: labels must be an object of strings');
  for (const [key, value] of Object.entries(labels)) {
    if (typeof value !== 'string') throw new TypeError(`withLabels: label "${key}" must be a string`);
  }
  return runWithLabels(extendLabels(labels), fn);
}

/** Starts tracking, or changes how it tracks (mode, stackBudget, maxTasks); unspecified settings keep their current (or default) values. */
export function startTracking(settings: Partial<TrackerSettings> = {}): void {
  const current = tracker.settings;
  const next: TrackerSettings = {
    mode: settings.mode ?? (current.mode === 'off' ? defaultTrackerSettings.mode : current.mode),
    stackBudget: settings.stackBudget ?? current.stackBudget,
    maxTasks: settings.maxTasks ?? current.maxTasks,
  };
  if (!trackingModes.includes(next.mode)) throw new TypeError(`startTracking: mode must be one of ${trackingModes.join(', ')}`);
  if (typeof next.stackBudget !== 'number' || !(next.stackBudget >= 0 && next.stackBudget <= 1)) throw new TypeError('startTracking: stackBudget must be a share of CPU time from 0 to 1');
  if (!Number.isSafeInteger(next.maxTasks) || next.maxTasks < 0) throw new TypeError('startTracking: maxTasks must be an integer >= 0');
  configureTracking(next);
}

/** Stops tracking: removes every hook taskprof installed and forgets its records. */
export function stopTracking(): void {
  configureTracking({ ...tracker.settings, mode: 'off' });
}

/** The tracker's current settings. */
export function trackingSettings(): Readonly<TrackerSettings> {
  return { ...tracker.settings };
}

export interface WriteProfileOptions {
  /** 0: gzipped pprof, 1: grouped text, 2: every task. Default 0. */
  debug?: 0 | 1 | 2;
  /** JSON instead of text (debug 1 and 2; with 0 it gives the debug=1 JSON). */
  json?: boolean;
}

/**
 * Writes a profile to `writable` without ending it (Go's
 * pprof.Lookup(name).WriteTo). The only profile so far is `tasks`.
 */
export function writeProfile(name: 'tasks', writable: Writable, options: WriteProfileOptions = {}): Promise<void> {
  // taskprof's own work: its promises are not the app's tasks.
  return runWithLabels(ownWork, () => writeTasks(name, writable, options));
}

async function writeTasks(name: 'tasks', writable: Writable, options: WriteProfileOptions): Promise<void> {
  if (name !== 'tasks') throw new TypeError(`writeProfile: unknown profile ${JSON.stringify(name)}; known: tasks`);
  const debug = options.debug ?? 0;
  if (debug !== 0 && debug !== 1 && debug !== 2) throw new TypeError('writeProfile: debug must be 0, 1 or 2');
  const output = await createTasksProfile(tracker).write({
    debug,
    format: options.json === true ? 'json' : undefined,
    json: options.json === true,
    params: new URLSearchParams(),
    signal: new AbortController().signal,
    deltaSeconds: undefined,
    head: false,
    gated: async (work) => work(),
  });
  const chunks = output.body instanceof Readable ? output.body : [output.body ?? ''];
  for await (const chunk of chunks) {
    if (!writable.write(chunk)) await once(writable, 'drain');
  }
}
