// Every default value in one leaf module (it imports nothing), so that the
// options, and each module that needs a default, read it from here.
import type { LeakDetectionSettings } from './detect/growth.js';
import type { ProfilerEngineName } from './v8/engine.js';

export const defaultPrefix = '/debug';
/** Bytes after which a debug=2 dump is cut. */
export const defaultDumpLimitBytes = 64 * 1024 * 1024;
/** Mean bytes between samples of the sampling heap profiler. */
export const defaultHeapSamplingBytes = 512 * 1024;
export const defaultMaxProfileSeconds = 300;
// Go's CPU profiling rate; a continuous scraper keeps it on 14 s of every 15 (BENCHMARKS.md, "Continuously profiled").
export const defaultCpuProfileHz = 100;
// The browser's long-task threshold.
export const defaultBlockThresholdMs = 50;
export const defaultMetricsPrefix = 'taskprof_';
/** Distinct (method, route) pairs counted by route; past it, route="other". */
export const defaultMaxRoutes = 100;
export const profilerEngines: readonly ProfilerEngineName[] = ['inspector', 'v8-profiler-next'];
export const defaultLeakDetection: LeakDetectionSettings = {
  intervalMs: 10_000,
  windowMs: 30 * 60_000,
  minSamples: 12,
  minGrowth: 10,
  maxGroups: 500,
};
/** Samples a growth-detector window may hold (its arrays are this long at most). */
export const maxWindowSamples = 2880;
/**
 * Signals dumpOnSignal cannot take: SIGUSR1 starts Node's inspector; SIGKILL
 * and SIGSTOP cannot be caught; a listener on SIGTERM, SIGINT or SIGHUP would
 * stop them ending the process (an orchestrator's shutdown, Ctrl-C).
 */
export const refusedSignals: readonly string[] = ['SIGUSR1', 'SIGKILL', 'SIGSTOP', 'SIGTERM', 'SIGINT', 'SIGHUP'];
