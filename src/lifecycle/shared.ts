// The one owner of what every mount in the process shares: tracking, the
// growth detector, the event-loop histogram, the heap sampler, the signal
// dump and the inspector session. Mounts hold it: the first one starts each
// part, every mount may reconfigure them with its options, and the last one
// to close stops them all. (The work gates in http/work-gate.ts are
// process-wide too, but have nothing to start or stop.)
import type { ResolvedOptions } from '../options.js';
import type { ProfilerEngine } from '../v8/engine.js';
import { ownWork, runWithLabels } from '../labels/labels.js';
import { tracker } from '../tracker/tracker.js';
import { defaultTrackerSettings } from '../tracker/types.js';
import { configureTracking, releaseTracking, trackingChosen } from '../tracker/control.js';
import { heapSampler } from '../profiles/heap.js';
import { startRuntimeStats, stopRuntimeStats } from '../metrics/runtime-stats.js';
import { growthDetector } from '../detect/growth.js';
import { defaultLeakDetection } from '../defaults.js';
import { installDumpOnSignal, uninstallDumpOnSignal } from '../dump/signal-dump.js';
import { disconnectInspector } from '../v8/inspector.js';

// Mounts holding the shared state.
let holders = 0;

/** Starts (or reconfigures) the process-wide tracker from mount options. */
function applyTracking(options: ResolvedOptions): void {
  if (options.tracking === undefined && trackingChosen()) return;
  configureTracking({
    mode: options.tracking ?? defaultTrackerSettings.mode,
    stackBudget: options.stackBudget,
    maxTasks: options.maxTasks,
  });
}

/** Starts the growth detector from mount options: the first mount starts it, a mount with settings restarts it. */
function applyLeakDetection(options: ResolvedOptions): void {
  if (options.leakDetection === false) return;
  if (options.leakDetection === undefined && growthDetector.running) return;
  growthDetector.start(options.leakDetection ?? defaultLeakDetection);
}

/** A mount takes hold of the shared state, started or reconfigured with its options. */
export function acquireShared(options: ResolvedOptions, engine: ProfilerEngine): void {
  holders++;
  applyTracking(options);
  tracker.routes.limit = options.maxRoutes;
  // taskprof's own timers, histogram and profiler session are not the app's tasks.
  runWithLabels(ownWork, () => {
    applyLeakDetection(options);
    if (options.dumpOnSignal !== undefined) installDumpOnSignal(options.dumpOnSignal, options.dumpPath);
    startRuntimeStats();
    // The heap profile shows what is live now only if sampling began before.
    if (options.heapSampling !== 'off') {
      heapSampler.start(engine, options.heapSamplingInterval, options.heapSampling === 'allocs').catch((error: unknown) => {
        console.error('taskprof: could not start the sampling heap profiler; /pprof/heap will say why:', (error as Error).message);
      });
    }
  });
}

/** A mount lets go; the last one stops every part (every task taskprof keeps). */
export async function releaseShared(): Promise<void> {
  if (holders === 0 || --holders > 0) return;
  growthDetector.stop();
  stopRuntimeStats();
  uninstallDumpOnSignal();
  releaseTracking();
  try {
    await heapSampler.stop();
  } finally {
    // A mount opened meanwhile uses the session (its sampler started after the stop).
    if (holders === 0) disconnectInspector();
  }
}
