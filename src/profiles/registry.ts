// The built-in profiles. The index page, the counts and the routes come from here.
import type { ResolvedOptions } from '../options.js';
import { tracker } from '../tracker/tracker.js';
import type { ProfileDefinition } from './profile.js';
import { createTasksProfile } from './tasks.js';
import { createCpuProfile } from './cpu.js';
import { createHeapProfiles } from './heap.js';
import { createHeapSnapshotProfile, defaultAvailableMemory } from './heapsnapshot.js';
import { createLeaksProfile } from './leaks.js';
import { createBlockProfiles } from './block.js';
import type { ProfilerEngine } from '../v8/engine.js';

export interface ProfileRegistry {
  readonly profiles: readonly ProfileDefinition[];
  lookup(name: string): ProfileDefinition | undefined;
}

/** Descriptions of endpoints that are not profiles, for the index page (as Go lists cmdline). */
export const otherEndpoints: ReadonlyArray<{ name: string; href: string; description: string }> = [
  { name: 'cmdline', href: 'cmdline', description: 'The command line invocation of the current process (process.argv, NUL-separated)' },
  { name: 'metrics', href: '../metrics', description: 'Task counts, creation and completion counters, leak suspects and tasks by route in the Prometheus text format (OpenMetrics when the scraper asks for it)' },
  { name: 'vars', href: '../vars', description: 'Runtime figures as JSON, like Go\'s expvar: memory, heap spaces, resource usage, event loop delay and utilization, versions, task counts' },
];

export function createRegistry(options: ResolvedOptions, engine: ProfilerEngine): ProfileRegistry {
  const cpuIntervalUs = Math.round(1e6 / options.cpuProfileHz);
  const profiles: ProfileDefinition[] = [
    createTasksProfile(tracker, options.maxDumpBytes),
    createLeaksProfile(options.leakDetection !== false),
    ...createHeapProfiles(engine, options.heapSamplingInterval, options.heapSampling),
    createCpuProfile(engine, options.maxProfileSeconds, options.cpuProfileHz, cpuIntervalUs),
    ...createBlockProfiles(engine, cpuIntervalUs, options.blockThresholdMs),
    createHeapSnapshotProfile(options.heapSnapshot, options.availableMemory ?? defaultAvailableMemory),
  ];
  const byName = new Map<string, ProfileDefinition>();
  for (const profile of profiles) {
    byName.set(profile.name, profile);
    for (const alias of profile.aliases) byName.set(alias, profile);
  }
  return { profiles, lookup: (name) => byName.get(name) };
}
