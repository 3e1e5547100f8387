// One V8 CPU sampler for the process, shared by every CPU profile asked for
// at once: two scrapers (Alloy and Parca), or a scraper and a person, each get
// a profile of their own window instead of a 429. V8 has one sampler, so a
// window that joins a running one reads the same samples from its join on
// (the profile's clock is the process's monotonic clock, as hrtime's), and a
// window that ends cuts the sampler: the samples so far go to every open
// window, and the sampler starts again for the others.
import type { ProfilerEngine } from '../v8/engine.js';
import { MSG_CPU_BUSY, MSG_CPU_ENGINE_BUSY, ProfileError } from '../errors.js';

/** V8's .cpuprofile, as Profiler.stop returns it. */
export interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
    children?: number[];
    hitCount?: number;
  }>;
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** One asker's share of the sampler: the samples from `fromUs` until it leaves. */
export interface CpuWindow {
  readonly fromUs: number;
  readonly untilMs: number;
  /** The sampler's interval (the first open window's choice). */
  readonly intervalUs: number;
  readonly segments: CpuProfile[];
  /** Why the sampler stopped under this window (a restart failed): it answers 500, not a short profile. */
  failure?: unknown;
}

// More open windows than this are refused: each holds a request and its samples.
const maxWindows = 8;

function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** Sample times (µs, V8's clock) of a profile. */
function sampleTimes(profile: CpuProfile): number[] {
  const times: number[] = [];
  let at = profile.startTime;
  for (const delta of profile.timeDeltas ?? []) {
    at += delta;
    times.push(at);
  }
  return times;
}

/** The part of a profile from `fromUs` on (its nodes are shared, unchanged). */
function clipped(profile: CpuProfile, fromUs: number): CpuProfile {
  if (profile.startTime >= fromUs) return profile;
  const times = sampleTimes(profile);
  const first = times.findIndex((t) => t >= fromUs);
  const samples = profile.samples ?? [];
  if (first === -1) return { nodes: profile.nodes, startTime: fromUs, endTime: Math.max(fromUs, profile.endTime), samples: [], timeDeltas: [] };
  const deltas = (profile.timeDeltas ?? []).slice(first);
  deltas[0] = times[first]! - fromUs;
  return { nodes: profile.nodes, startTime: fromUs, endTime: profile.endTime, samples: samples.slice(first), timeDeltas: deltas };
}

function frameKey(callFrame: CpuProfile['nodes'][number]['callFrame']): string {
  return `${callFrame.functionName}\0${callFrame.url}\0${callFrame.lineNumber}\0${callFrame.columnNumber}`;
}

/**
 * One .cpuprofile from consecutive segments: their trees merged by call path,
 * their samples in order (the gap between two segments is in the time delta
 * of the later one's first sample).
 */
export function mergeCpuProfiles(segments: readonly CpuProfile[]): CpuProfile {
  if (segments.length === 0) {
    const now = monotonicUs();
    return { nodes: [{ id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1, columnNumber: -1 }, children: [] }], startTime: now, endTime: now, samples: [], timeDeltas: [] };
  }
  const nodes: CpuProfile['nodes'] = [];
  const childByKey = new Map<string, number>();
  const samples: number[] = [];
  const timeDeltas: number[] = [];
  // The previous segment's last sample, on V8's clock: the next segment's first delta counts from it.
  let previousSample: number | undefined;
  for (const segment of segments) {
    const byId = new Map(segment.nodes.map((node) => [node.id, node]));
    const mapped = new Map<number, number>();
    const hasParent = new Set(segment.nodes.flatMap((node) => node.children ?? []));
    // Walk from each root, depth first, giving each call path one merged id.
    const stack: Array<{ id: number; parent: number | undefined }> = segment.nodes.filter((n) => !hasParent.has(n.id)).map((n) => ({ id: n.id, parent: undefined }));
    while (stack.length > 0) {
      const { id, parent } = stack.pop()!;
      const node = byId.get(id);
      if (node === undefined) continue;
      const key = `${parent ?? 0}\0${frameKey(node.callFrame)}`;
      let merged = childByKey.get(key);
      if (merged === undefined) {
        merged = nodes.length + 1;
        childByKey.set(key, merged);
        nodes.push({ id: merged, callFrame: node.callFrame, children: [], hitCount: 0 });
        if (parent !== undefined) nodes[parent - 1]!.children!.push(merged);
      }
      mapped.set(id, merged);
      for (const child of node.children ?? []) stack.push({ id: child, parent: merged });
    }
    const deltas = segment.timeDeltas ?? [];
    let at = segment.startTime;
    (segment.samples ?? []).forEach((id, i) => {
      const merged = mapped.get(id) ?? 1;
      samples.push(merged);
      nodes[merged - 1]!.hitCount! += 1;
      at += deltas[i]!;
      timeDeltas.push(previousSample !== undefined && i === 0 ? at - previousSample : deltas[i]!);
    });
    if ((segment.samples ?? []).length > 0) previousSample = at;
  }
  return { nodes, startTime: segments[0]!.startTime, endTime: segments[segments.length - 1]!.endTime, samples, timeDeltas };
}

class CpuSampler {
  #engine: ProfilerEngine | undefined;
  // Engines are compared by name: each mount loads its own engine object.
  #intervalUs = 0;
  #sampling = false;
  readonly #windows = new Set<CpuWindow>();
  // Starts and stops run one after another, in the order asked.
  #ops: Promise<unknown> = Promise.resolve();
  readonly #segmentReaders: Array<(profile: CpuProfile, intervalUs: number) => void> = [];

  /** Whether any CPU profile is being taken now (any mount). */
  get running(): boolean {
    return this.#windows.size > 0;
  }

  /** Called with every stretch of samples the sampler hands out (the block profile reads them). */
  readSegments(reader: (profile: CpuProfile, intervalUs: number) => void): void {
    this.#segmentReaders.push(reader);
  }

  #serially<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#ops.then(op, op);
    this.#ops = run.catch(() => undefined);
    return run;
  }

  /** Stops the sampler and hands its samples to every open window. */
  async #cut(): Promise<void> {
    if (!this.#sampling) return;
    this.#sampling = false;
    const profile = await this.#engine!.stopCpu();
    for (const window of this.#windows) window.segments.push(clipped(profile, window.fromUs));
    for (const read of this.#segmentReaders) {
      try {
        read(profile, this.#intervalUs);
      } catch {
        // A reader's fault costs its own figures only.
      }
    }
  }

  async #start(): Promise<void> {
    await this.#engine!.startCpu(this.#intervalUs);
    this.#sampling = true;
  }

  /**
   * Opens a window on the sampler (starting it when idle). Refused with 429
   * when maxWindows are open, or when another engine holds the sampler.
   */
  join(engine: ProfilerEngine, intervalUs: number, seconds: number): Promise<CpuWindow> {
    const busy = (message: string): ProfileError => {
      const firstEnd = Math.min(...[...this.#windows].map((w) => w.untilMs));
      return new ProfileError(429, message, { 'Retry-After': String(Math.max(1, Math.ceil((firstEnd - Date.now()) / 1000))) });
    };
    if (this.#windows.size >= maxWindows) return Promise.reject(busy(MSG_CPU_BUSY));
    if (this.#windows.size > 0 && this.#engine?.name !== engine.name) return Promise.reject(busy(MSG_CPU_ENGINE_BUSY));
    if (this.#windows.size === 0) {
      this.#engine = engine;
      this.#intervalUs = intervalUs;
    }
    const window: CpuWindow = { fromUs: monotonicUs(), untilMs: Date.now() + seconds * 1000, intervalUs: this.#intervalUs, segments: [] };
    this.#windows.add(window);
    return this.#serially(async () => {
      if (!this.#sampling) {
        try {
          await this.#start();
        } catch (error) {
          this.#windows.delete(window);
          throw error;
        }
      }
      return window;
    });
  }

  /** Closes a window: its samples as one profile. The sampler stops when no window is left. */
  leave(window: CpuWindow): Promise<CpuProfile> {
    return this.#serially(async () => {
      try {
        await this.#cut();
      } finally {
        this.#windows.delete(window);
        if (this.#windows.size > 0) {
          // The others' sampler could not start again: they fail, rather than end short without saying so.
          await this.#start().catch((error: unknown) => {
            for (const open of this.#windows) open.failure = error;
          });
        }
      }
      if (window.failure !== undefined) throw window.failure;
      const profile = mergeCpuProfiles(window.segments);
      return profile.samples === undefined ? { ...profile, samples: [], timeDeltas: [] } : profile;
    });
  }
}

/** The process's one sampler, whatever mount or engine asks. */
export const cpuSampler = new CpuSampler();
