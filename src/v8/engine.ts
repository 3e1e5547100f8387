// Profiler engines. The default is Node's own in-process inspector session;
// `v8-profiler-next` (a native addon, optional peer dependency) is used when
// the app installs it and selects it.
import { createRequire } from 'node:module';
import { post } from './inspector.js';
import type { CpuProfile } from '../profiles/cpu.js';
import type { SamplingHeapProfile } from '../profiles/heap.js';

export type ProfilerEngineName = 'inspector' | 'v8-profiler-next';

export interface ProfilerEngine {
  readonly name: ProfilerEngineName;
  startCpu(intervalUs: number): Promise<void>;
  stopCpu(): Promise<CpuProfile>;
  /** `includeCollected`: keep samples of objects the GC has freed (an allocation profile). */
  startHeapSampling(intervalBytes: number, includeCollected: boolean): Promise<void>;
  /** Whether `includeCollected` is available. */
  readonly samplesCollected: boolean;
  /** The live sample; engines that cannot read it without stopping restart sampling (see `heapSinceLastRead`). */
  heapProfile(): Promise<SamplingHeapProfile>;
  stopHeapSampling(): Promise<void>;
  collectGarbage(): Promise<void>;
  /** True when each heap profile covers only the time since the previous one. */
  readonly heapSinceLastRead: boolean;
}

const inspectorEngine: ProfilerEngine = {
  name: 'inspector',
  heapSinceLastRead: false,
  samplesCollected: true,
  async startCpu(intervalUs) {
    await post('Profiler.enable');
    await post('Profiler.setSamplingInterval', { interval: intervalUs });
    await post('Profiler.start');
  },
  async stopCpu() {
    try {
      return (await post<{ profile: CpuProfile }>('Profiler.stop')).profile;
    } finally {
      await post('Profiler.disable').catch(() => undefined);
    }
  },
  async startHeapSampling(intervalBytes, includeCollected) {
    await post('HeapProfiler.enable');
    await post('HeapProfiler.stopSampling').catch(() => undefined);
    await post('HeapProfiler.startSampling', {
      samplingInterval: intervalBytes,
      includeObjectsCollectedByMajorGC: includeCollected,
      includeObjectsCollectedByMinorGC: includeCollected,
    });
  },
  async heapProfile() {
    return (await post<{ profile: SamplingHeapProfile }>('HeapProfiler.getSamplingProfile')).profile;
  },
  async stopHeapSampling() {
    await post('HeapProfiler.stopSampling').catch(() => undefined);
    await post('HeapProfiler.disable').catch(() => undefined);
  },
  async collectGarbage() {
    await post('HeapProfiler.collectGarbage');
  },
};

interface V8ProfilerNext {
  setGenerateType(type: 0 | 1): void;
  setSamplingInterval(us: number): void;
  startProfiling(name: string, recordSamples: boolean): void;
  stopProfiling(name: string): { export(callback: (error: Error | undefined, result: string | undefined) => void): void; delete(): void };
  startSamplingHeapProfiling(interval: number, depth: number): void;
  stopSamplingHeapProfiling(): { export(callback: (error: Error | undefined, result: string | undefined) => void): void };
}

const cpuTitle = 'taskprof';
const heapStackDepth = 64;

function exported(profile: { export(callback: (error: Error | undefined, result: string | undefined) => void): void }): Promise<string> {
  return new Promise((resolve, reject) => profile.export((error, result) => (error || result === undefined ? reject(error ?? new Error('empty export')) : resolve(result))));
}

function v8ProfilerNextEngine(addon: V8ProfilerNext): ProfilerEngine {
  let heapInterval = 0;
  return {
    name: 'v8-profiler-next',
    heapSinceLastRead: true,
    samplesCollected: false,
    async startCpu(intervalUs) {
      addon.setGenerateType(1);
      addon.setSamplingInterval(intervalUs);
      addon.startProfiling(cpuTitle, true);
    },
    async stopCpu() {
      const profile = addon.stopProfiling(cpuTitle);
      try {
        return JSON.parse(await exported(profile)) as CpuProfile;
      } finally {
        profile.delete();
      }
    },
    async startHeapSampling(intervalBytes) {
      heapInterval = intervalBytes;
      addon.startSamplingHeapProfiling(intervalBytes, heapStackDepth);
    },
    // The addon can only stop to read: read, then sample again.
    async heapProfile() {
      const profile = addon.stopSamplingHeapProfiling();
      addon.startSamplingHeapProfiling(heapInterval, heapStackDepth);
      return JSON.parse(await exported(profile)) as SamplingHeapProfile;
    },
    async stopHeapSampling() {
      addon.stopSamplingHeapProfiling();
    },
    async collectGarbage() {
      await post('HeapProfiler.collectGarbage');
    },
  };
}

const require = createRequire(import.meta.url);

/** The engine by name; throws a TypeError saying how to install v8-profiler-next when it is missing. */
export function loadEngine(name: ProfilerEngineName): ProfilerEngine {
  if (name === 'inspector') return inspectorEngine;
  let addon: V8ProfilerNext;
  try {
    addon = require('v8-profiler-next') as V8ProfilerNext;
  } catch (error) {
    throw new TypeError(
      `taskprof: option "engine" is "v8-profiler-next" but it cannot be loaded (${(error as Error).message.split('\n')[0]}); ` +
        'install it (npm install v8-profiler-next; it builds a native addon and supports Node up to 21), or leave "engine" unset for the built-in inspector',
    );
  }
  return v8ProfilerNextEngine(addon);
}
