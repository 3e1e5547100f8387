// taskprof's programmatic API: Go's runtime.NumGoroutine, pprof.Lookup(name).WriteTo and pprof.Do.
import { tracker } from './tracker/tracker.js';
import { defaultTrackerSettings, trackingModes, type TrackerSettings, type TypeCount } from './tracker/types.js';
import { extendLabels, runWithLabels, type Labels } from './labels/labels.js';
import { configureTracking } from './tracker/control.js';

export type { TaskprofOptions, DebugRequestInfo, LeakDetectionOptions } from './options.js';
export type { TrackingMode, TrackerSettings, TypeCount } from './tracker/types.js';
export type { Labels } from './labels/labels.js';
export type { StackFrame } from './stacks/stack.js';

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

export { writeProfile, type WriteProfileOptions } from './profiles/write-profile.js';
