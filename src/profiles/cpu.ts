// GET <prefix>/pprof/profile?seconds=N: a CPU profile from V8's sampling
// profiler, as pprof (go tool pprof) or .cpuprofile (Chrome DevTools).
import { setTimeout as sleep } from 'node:timers/promises';
import type { ProfilerEngine } from '../v8/engine.js';
import { encodePprof, type PprofSample } from '../format/pprof.js';
import { fromCallFrame, type StackFrame } from '../stacks/stack.js';
import { ProfileError, msgCouldNot } from '../errors.js';
import { UnmountedError, parseSeconds, type ProfileDefinition, type ProfileOutput, type ProfileQuery } from './profile.js';
import { cpuSampler, type CpuProfile } from './cpu-sampler.js';

export type { CpuProfile } from './cpu-sampler.js';

const defaultSeconds = 30;


/** .cpuprofile to pprof samples: one per distinct stack, with sample count and CPU time. */
export function cpuProfileToPprof(profile: CpuProfile, intervalUs: number, startedAtMs: number, comments: readonly string[] = []): Uint8Array {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const totals = new Map<number, { count: number; nanos: number }>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i]!;
    // A sample's time is the gap to the next sample (V8 records the gap before it).
    const nextDelta = deltas[i + 1] ?? intervalUs;
    const total = totals.get(id) ?? { count: 0, nanos: 0 };
    total.count++;
    total.nanos += Math.max(0, nextDelta) * 1000;
    totals.set(id, total);
  }
  const pprofSamples: PprofSample[] = [];
  for (const [id, total] of totals) {
    const frames: StackFrame[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      const node = byId.get(at);
      if (node === undefined || node.callFrame.functionName === '(root)') break;
      frames.push(fromCallFrame(node.callFrame));
    }
    pprofSamples.push({ values: [total.count, Math.round(total.nanos)], frames, labels: {} });
  }
  return encodePprof({
    sampleTypes: [
      { type: 'samples', unit: 'count' },
      { type: 'cpu', unit: 'nanoseconds' },
    ],
    periodType: { type: 'cpu', unit: 'nanoseconds' },
    period: intervalUs * 1000,
    samples: pprofSamples,
    // V8's startTime is on a monotonic clock, not the wall clock pprof wants.
    timeNanos: BigInt(Math.round(startedAtMs)) * 1_000_000n,
    durationNanos: Math.round((profile.endTime - profile.startTime) * 1000),
    comments,
  });
}

/** Whether a CPU profile is being taken now (any mount). */
export function cpuProfileRunning(): boolean {
  return cpuSampler.running;
}

export function createCpuProfile(engine: ProfilerEngine, maxSeconds: number, hz: number, intervalUs: number): ProfileDefinition {
  return {
    name: 'profile',
    aliases: [],
    link: 'profile?seconds=30',
    seconds: 'duration',
    description: `CPU profile at ${hz} Hz. You can specify the duration in the seconds GET parameter (default 30, at most ${maxSeconds}); format=cpuprofile gives Chrome DevTools' .cpuprofile. Profiles asked for at once share one sampler`,
    debugLevels: [0],
    formats: ['cpuprofile'],
    async write(query: ProfileQuery): Promise<ProfileOutput> {
      const seconds = parseSeconds(query.params, maxSeconds, defaultSeconds);
      const startedAt = Date.now();
      let profile: CpuProfile;
      let ranAtUs = intervalUs;
      try {
        const window = await cpuSampler.join(engine, intervalUs, seconds);
        // Another window may have set the rate: the profile says the one it ran at.
        ranAtUs = window.intervalUs;
        try {
          // A client that goes away ends its window early.
          await sleep(seconds * 1000, undefined, { signal: query.signal }).catch(() => undefined);
        } finally {
          profile = await cpuSampler.leave(window);
        }
      } catch (error) {
        if (error instanceof ProfileError) throw error;
        throw new ProfileError(500, msgCouldNot('take a CPU profile', error));
      }
      // Cut short by an unmount (the app closing): the client is still there,
      // and must not take the profile for one of the length it asked for.
      let headers: Record<string, string> | undefined;
      const comments: string[] = [];
      if (query.signal.aborted && query.signal.reason instanceof UnmountedError) {
        const took = ((Date.now() - startedAt) / 1000).toFixed(1);
        const note = `cut short after ${took} s of the ${seconds} s asked for: taskprof was unmounted (its middleware or server closed)`;
        headers = { 'X-Taskprof-Cut-Short': note };
        comments.push(note);
      }
      if (query.format === 'cpuprofile') {
        return { contentType: 'application/json', body: JSON.stringify(profile), filename: `cpu-${process.pid}-${Date.now()}.cpuprofile`, headers };
      }
      return { contentType: 'application/octet-stream', body: cpuProfileToPprof(profile, ranAtUs, startedAt, comments), filename: 'profile', headers };
    },
  };
}
