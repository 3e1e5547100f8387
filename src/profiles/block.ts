// GET <prefix>/pprof/block and /mutex, the paths every Go-configured scraper
// asks for. Go's block profile is where goroutines waited; a Node process
// waits when its one event loop is held by long synchronous work, so block
// lists those stretches, read from the CPU profiles the process takes (the
// continuous scrapers keep one running 14 s of every 15). JavaScript has no
// mutex to contend on: mutex is a valid, empty profile that says why.
import { PPROF, encodePprof, type PprofSample } from '../format/pprof.js';
import { formatPosition } from '../format/text.js';
import { fromCallFrame, type StackFrame } from '../stacks/stack.js';
import { ProfileError, msgCouldNot } from '../errors.js';
import { defaultBlockThresholdMs } from '../defaults.js';
import type { ProfilerEngine } from '../v8/engine.js';
import { cpuSampler, type CpuProfile } from './cpu-sampler.js';
import { waitDelta, type ProfileDefinition, type ProfileOutput, type ProfileQuery } from './profile.js';

/** A stretch of samples with no idle sample between, under one outermost function. */
export interface LongRun {
  /** The run's most sampled stack, leaf first. */
  frames: StackFrame[];
  durationUs: number;
}

const idle = '(idle)';
// Samples outside JavaScript: they continue the run they fall in.
const native = new Set(['(program)', '(garbage collector)']);

/**
 * Runs of at least `thresholdUs` in a CPU profile. Each sample stands for the
 * time to the next one (as V8 records the gap before a sample). A run ends at
 * an idle sample, or where the outermost JavaScript function changes (the loop
 * moved to another callback without going idle: under load, callbacks run back
 * to back, and are not one blocking task).
 */
export function longRuns(profile: CpuProfile, intervalUs: number, thresholdUs: number): LongRun[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const outermost = new Map<number, number>();
  const outermostOf = (id: number): number => {
    let found = outermost.get(id);
    if (found !== undefined) return found;
    let at = id;
    for (let up = parentOf.get(at); up !== undefined && parentOf.has(up); up = parentOf.get(at)) at = up;
    found = at;
    outermost.set(id, found);
    return found;
  };
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const runs: LongRun[] = [];
  let outer: number | undefined;
  let durationUs = 0;
  let leafCounts = new Map<number, number>();
  const close = (): void => {
    if (durationUs >= thresholdUs && leafCounts.size > 0) {
      let culprit = 0;
      let most = -1;
      for (const [leaf, count] of leafCounts) if (count > most) [culprit, most] = [leaf, count];
      const frames: StackFrame[] = [];
      for (let at: number | undefined = culprit; at !== undefined; at = parentOf.get(at)) {
        const node = byId.get(at);
        if (node === undefined || node.callFrame.functionName === '(root)') break;
        frames.push(fromCallFrame(node.callFrame));
      }
      runs.push({ frames, durationUs });
    }
    outer = undefined;
    durationUs = 0;
    leafCounts = new Map();
  };
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i]!;
    const name = byId.get(id)?.callFrame.functionName ?? idle;
    if (name === idle) {
      close();
      continue;
    }
    const covers = Math.max(0, deltas[i + 1] ?? intervalUs);
    if (!native.has(name)) {
      const top = outermostOf(id);
      if (outer !== undefined && top !== outer) close();
      outer = top;
      leafCounts.set(id, (leafCounts.get(id) ?? 0) + 1);
    }
    durationUs += covers;
  }
  close();
  return runs;
}

// Distinct stacks the cumulative profile keeps; further ones add to one "(other stacks)" sample.
const maxStacks = 2000;
const otherStacks: StackFrame = { functionName: '(other stacks)', file: '', line: 0, column: 0 };

interface BlockSite {
  frames: StackFrame[];
  contentions: number;
  delayNanos: number;
}

/** Long runs by stack, summed over time (cumulative since tracking started, as Go's block profile). */
class BlockTally {
  readonly sites = new Map<string, BlockSite>();
  sampledUs = 0;

  add(runs: readonly LongRun[]): void {
    for (const run of runs) {
      let key = run.frames.map((f) => `${f.functionName}\t${f.file}\t${f.line}\t${f.column}`).join('\n');
      let frames = run.frames;
      if (!this.sites.has(key) && this.sites.size >= maxStacks) {
        key = '(other stacks)';
        frames = [otherStacks];
      }
      let site = this.sites.get(key);
      if (site === undefined) {
        site = { frames, contentions: 0, delayNanos: 0 };
        this.sites.set(key, site);
      }
      site.contentions++;
      site.delayNanos += run.durationUs * 1000;
    }
  }
}

// The cumulative tally is the process's: the last mount's blockThresholdMs applies to it.
const tally = new BlockTally();
let thresholdUs = defaultBlockThresholdMs * 1000;

cpuSampler.readSegments((profile, intervalUs) => {
  tally.sampledUs += Math.max(0, profile.endTime - profile.startTime);
  tally.add(longRuns(profile, intervalUs, thresholdUs));
});

function blockComment(sampledUs: number, window: boolean, runThresholdUs: number): string {
  const threshold = `${runThresholdUs / 1000} ms`;
  const what =
    `Where the event loop was held by synchronous work for at least ${threshold} (option blockThresholdMs): ` +
    'runs of CPU samples with no idle sample between them and one outermost function, each counted once (contentions) ' +
    'at its most sampled stack, with the run\'s length as its delay. Estimates at the CPU sampling rate: a run\'s length is known to one sample interval';
  if (sampledUs === 0) {
    return window
      ? `${what}. Nothing was sampled in the window.`
      : `${what}. No CPU profile has been taken yet, so nothing was sampled: block reads the CPU profiles the process takes ` +
          '(profile?seconds=N, as a continuous profiler asks for), or samples for itself with block?seconds=N.';
  }
  const source = window ? 'the window' : 'every CPU profile taken since taskprof started';
  return `${what}. Read from ${source}: ${(sampledUs / 1e6).toFixed(1)} s sampled.`;
}

function blockPprof(sites: readonly BlockSite[], comment: string, durationNanos: number): Uint8Array {
  const samples: PprofSample[] = sites.map((s) => ({ values: [s.contentions, Math.round(s.delayNanos)], frames: s.frames, labels: {} }));
  return encodePprof({
    sampleTypes: [
      { type: 'contentions', unit: 'count' },
      { type: 'delay', unit: 'nanoseconds' },
    ],
    periodType: { type: 'contentions', unit: 'count' },
    period: 1,
    samples,
    durationNanos,
    comments: [comment],
  });
}

function blockText(name: string, sites: readonly BlockSite[], comment: string): string {
  const sorted = [...sites].sort((a, b) => b.delayNanos - a.delayNanos);
  let out = `--- ${name} profile: ${sorted.reduce((n, s) => n + s.contentions, 0)} long runs, ${Math.round(sorted.reduce((n, s) => n + s.delayNanos, 0) / 1e6)} ms\n# ${comment}\n\n`;
  for (const site of sorted.slice(0, 100)) {
    out += `${site.contentions} @ ${Math.round(site.delayNanos / 1e6)} ms\n`;
    for (const frame of site.frames) out += `#\t${frame.functionName}\t${formatPosition(frame)}\n`;
    out += '\n';
  }
  return out;
}

export const mutexComment =
  'Node runs JavaScript on one thread per isolate, with no mutex to contend on, so this profile is always empty ' +
  '(a valid one, so that scrapers configured for Go succeed); a callback that holds the thread shows in block.';

export function createBlockProfiles(engine: ProfilerEngine, intervalUs: number, blockThresholdMs: number): ProfileDefinition[] {
  const mountThresholdUs = blockThresholdMs * 1000;
  thresholdUs = mountThresholdUs;
  const block: ProfileDefinition = {
    name: 'block',
    aliases: [],
    seconds: 'delta',
    description: `Where the event loop was held by synchronous work for at least ${blockThresholdMs} ms, from the CPU profiles taken (cumulative); seconds=N samples for N seconds`,
    debugLevels: [0, 1],
    formats: [],
    async write(query: ProfileQuery): Promise<ProfileOutput> {
      let sites: BlockSite[];
      let comment: string;
      let durationNanos = 0;
      if (query.deltaSeconds === undefined) {
        sites = [...tally.sites.values()];
        comment = blockComment(tally.sampledUs, false, thresholdUs);
      } else {
        // A window of its own on the shared sampler, for that many seconds.
        const window = await cpuSampler.join(engine, intervalUs, query.deltaSeconds).catch((error: unknown) => {
          throw error instanceof ProfileError ? error : new ProfileError(500, msgCouldNot('start the CPU profiler', error));
        });
        let profile: CpuProfile;
        const ranAtUs = window.intervalUs;
        try {
          // A client that leaves, or an unmount, ends the wait with its 503 (after the window closes).
          await waitDelta(query.deltaSeconds, query.signal);
        } finally {
          profile = await cpuSampler.leave(window);
        }
        const own = new BlockTally();
        own.add(longRuns(profile, ranAtUs, mountThresholdUs));
        sites = [...own.sites.values()];
        durationNanos = (profile.endTime - profile.startTime) * 1000;
        comment = blockComment(profile.endTime - profile.startTime, true, mountThresholdUs);
      }
      if (query.debug === 1) return { contentType: 'text/plain; charset=utf-8', body: blockText('block', sites, comment) };
      return { contentType: PPROF, filename: query.deltaSeconds === undefined ? 'block' : 'block-delta', body: blockPprof(sites, comment, durationNanos) };
    },
  };
  const mutex: ProfileDefinition = {
    name: 'mutex',
    aliases: [],
    seconds: 'delta',
    description: 'Always empty: JavaScript has no mutex to contend on (a valid profile for scrapers configured for Go; see block)',
    debugLevels: [0, 1],
    formats: [],
    async write(query: ProfileQuery): Promise<ProfileOutput> {
      if (query.deltaSeconds !== undefined) await waitDelta(query.deltaSeconds, query.signal);
      if (query.debug === 1) return { contentType: 'text/plain; charset=utf-8', body: blockText('mutex', [], mutexComment) };
      return { contentType: PPROF, filename: query.deltaSeconds === undefined ? 'mutex' : 'mutex-delta', body: blockPprof([], mutexComment, (query.deltaSeconds ?? 0) * 1e9) };
    },
  };
  return [block, mutex];
}
