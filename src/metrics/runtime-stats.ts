// GET <prefix>/vars: JSON like Go's expvar, for dashboards and quick looks.
import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';
import v8 from 'node:v8';
import { tracker } from '../tracker/tracker.js';

let delay: IntervalHistogram | undefined;
// The histogram records the time between its timer's runs; the delay is what exceeds this.
const delayResolutionMs = 20;
let eluAtStart: EventLoopUtilization | undefined;

/** Starts the event loop delay histogram (once per process). */
export function startRuntimeStats(): void {
  if (delay !== undefined) return;
  delay = monitorEventLoopDelay({ resolution: delayResolutionMs });
  delay.enable();
  eluAtStart = performance.eventLoopUtilization();
}

/** Stops the histogram (the last mount closing). */
export function stopRuntimeStats(): void {
  delay?.disable();
  delay = undefined;
  eluAtStart = undefined;
}

const ms = (ns: number) => Math.round(ns / 1e3) / 1e3;
const beyondResolution = (ns: number) => Math.max(0, Math.round((ns / 1e6 - delayResolutionMs) * 1e3) / 1e3);

export function runtimeVars(): Record<string, unknown> {
  const byType: Record<string, number> = {};
  let total = 0;
  let withoutStack = 0;
  for (const count of tracker.typeCounts()) {
    byType[count.type] = count.live;
    total += count.live;
    withoutStack += count.withoutStack;
  }
  return {
    cmdline: process.argv,
    pid: process.pid,
    uptimeSeconds: process.uptime(),
    versions: { node: process.version, v8: process.versions.v8 },
    memoryUsage: process.memoryUsage(),
    heapStatistics: v8.getHeapStatistics(),
    heapSpaces: v8.getHeapSpaceStatistics(),
    resourceUsage: process.resourceUsage(),
    eventLoop: {
      delayMs:
        delay === undefined
          ? null
          : {
              min: beyondResolution(delay.min),
              mean: beyondResolution(delay.mean),
              stddev: ms(delay.stddev),
              p50: beyondResolution(delay.percentile(50)),
              p90: beyondResolution(delay.percentile(90)),
              p99: beyondResolution(delay.percentile(99)),
              max: beyondResolution(delay.max),
            },
      utilization: eluAtStart === undefined ? null : performance.eventLoopUtilization(eluAtStart).utilization,
    },
    tasks: { total, withoutStack, tracking: tracker.mode, byType, stackBudget: tracker.stackBudgetStats() ?? null },
  };
}
