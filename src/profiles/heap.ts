// GET <prefix>/pprof/heap: what is live now, from V8's sampling heap
// profiler, which taskprof starts when it is mounted (a profile started per
// request would only see that request's allocations).
import type { ProfilerEngine } from '../v8/engine.js';
import { encodePprof, type PprofSample } from '../format/pprof.js';
import { formatPosition } from '../format/text.js';
import { fromCallFrame, type StackFrame } from '../stacks/stack.js';
import { MSG_ALLOCS_EMPTY, MSG_ALLOCS_INUSE, MSG_HEAP_OFF, MSG_HEAP_SINCE_LAST_READ, MSG_SAMPLING_OFF, ProfileError, msgCouldNot, msgInvalidValue } from '../errors.js';
import { waitDelta, type ProfileDefinition, type ProfileOutput, type ProfileQuery } from './profile.js';

interface SamplingHeapProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  /** Bytes, already scaled by V8. */
  selfSize: number;
  /** Absent in v8-profiler-next's export. */
  id?: number;
  children: SamplingHeapProfileNode[];
}

export interface SamplingHeapProfile {
  head: SamplingHeapProfileNode;
  /** Each sampled allocation; absent in v8-profiler-next's export, which has only bytes per node. */
  samples?: Array<{ size: number; nodeId: number; ordinal: number }>;
}


/** The continuous sampler: one per process, shared by every mount. */
export const heapSampler = {
  engine: undefined as ProfilerEngine | undefined,
  intervalBytes: 0,
  includeCollected: false,
  starting: undefined as Promise<void> | undefined,
  // A stop under way: a start made meanwhile (a new mount while the last one
  // closes) waits for it, so that the stop does not undo the start.
  stopping: undefined as Promise<void> | undefined,
  /** Starts sampling, or returns the start under way; a failure is kept for the next read to report. */
  start(engine: ProfilerEngine, intervalBytes: number, includeCollected: boolean): Promise<void> {
    if (this.starting !== undefined && this.engine === engine && this.intervalBytes === intervalBytes && this.includeCollected === includeCollected) {
      return this.starting;
    }
    const previous = this.engine;
    this.engine = engine;
    this.intervalBytes = intervalBytes;
    this.includeCollected = includeCollected;
    const stopping = this.stopping;
    this.starting = (async () => {
      await stopping;
      if (previous !== undefined && previous !== engine) await previous.stopHeapSampling();
      await engine.startHeapSampling(intervalBytes, includeCollected);
    })();
    this.starting.catch(() => {
      this.starting = undefined;
    });
    return this.starting;
  },
  /** Stops sampling (the last mount closing). */
  stop(): Promise<void> {
    const { engine, starting } = this;
    this.engine = undefined;
    this.starting = undefined;
    if (engine === undefined) return Promise.resolve();
    const stopping = (async () => {
      await starting?.catch(() => undefined);
      await engine.stopHeapSampling();
    })();
    const done: Promise<void> = stopping
      .catch(() => undefined)
      .finally(() => {
        if (this.stopping === done) this.stopping = undefined;
      });
    this.stopping = done;
    return stopping;
  },
};

interface Site {
  frames: StackFrame[];
  /** NaN when the engine reports bytes only. */
  objects: number;
  bytes: number;
}

/**
 * Allocation sites with live estimates. V8 samples one allocation per
 * `interval` bytes on average, so a sampled allocation of `size` bytes stands
 * for 1 / (1 - exp(-size / interval)) allocations (the scaling Go and pprof use).
 */
export function heapSites(profile: SamplingHeapProfile, intervalBytes: number): Site[] {
  const framesOf = new Map<number, StackFrame[]>();
  const bytesOnly: Site[] = [];
  const walk = (node: SamplingHeapProfileNode, parent: StackFrame[]): void => {
    const frames = node.callFrame.functionName === '(root)' ? parent : [fromCallFrame(node.callFrame), ...parent];
    if (node.id !== undefined) framesOf.set(node.id, frames);
    if (node.selfSize > 0) bytesOnly.push({ frames, objects: NaN, bytes: node.selfSize });
    for (const child of node.children) walk(child, frames);
  };
  walk(profile.head, []);
  if (profile.samples === undefined) return bytesOnly.sort((a, b) => b.bytes - a.bytes);
  const sites = new Map<number, Site>();
  for (const sample of profile.samples) {
    const scale = 1 / (1 - Math.exp(-sample.size / intervalBytes));
    let site = sites.get(sample.nodeId);
    if (site === undefined) {
      site = { frames: framesOf.get(sample.nodeId) ?? [], objects: 0, bytes: 0 };
      sites.set(sample.nodeId, site);
    }
    site.objects += scale;
    site.bytes += sample.size * scale;
  }
  return [...sites.values()].sort((a, b) => b.bytes - a.bytes);
}

function siteKey(site: Site): string {
  return site.frames.map((f) => `${f.functionName}\t${f.file}\t${f.line}\t${f.column}`).join('\n');
}

/** Sites whose objects or bytes changed between two reads (after minus before), largest growth first. */
export function heapDelta(before: Site[], after: Site[]): Site[] {
  const previous = new Map(before.map((site) => [siteKey(site), site]));
  const changed: Site[] = [];
  for (const site of after) {
    const key = siteKey(site);
    const old = previous.get(key);
    previous.delete(key);
    const delta = { frames: site.frames, objects: site.objects - (old?.objects ?? 0), bytes: site.bytes - (old?.bytes ?? 0) };
    if (Math.round(delta.bytes) !== 0) changed.push(delta);
  }
  for (const gone of previous.values()) changed.push({ frames: gone.frames, objects: -gone.objects, bytes: -gone.bytes });
  return changed.sort((a, b) => b.bytes - a.bytes);
}

function heapText(sites: Site[], kind: 'inuse' | 'allocs', deltaSeconds: number | undefined): string {
  const totalBytes = sites.reduce((n, s) => n + s.bytes, 0);
  const totalObjects = sites.reduce((n, s) => n + s.objects, 0);
  const objects = (n: number) => (Number.isNaN(n) ? '?' : String(Math.round(n)));
  const what = kind === 'inuse' ? 'in use' : 'allocated';
  const over = deltaSeconds === undefined ? '' : `, change over ${deltaSeconds}s`;
  let out = `${kind === 'inuse' ? 'heap' : 'allocs'} profile: ${objects(totalObjects)} objects, ${Math.round(totalBytes)} bytes ${what} (sampled, estimates${over})\n`;
  for (const site of sites.slice(0, 100)) {
    out += `${objects(site.objects)}: ${Math.round(site.bytes)} bytes\n`;
    for (const frame of site.frames) out += `#\t${frame.functionName}\t${formatPosition(frame)}\n`;
    out += '\n';
  }
  return out;
}


function heapPprof(sites: readonly Site[], held: 'inuse' | 'allocs', withObjects: boolean, intervalBytes: number, deltaSeconds: number | undefined, comments: readonly string[]): Uint8Array {
  const prefix = held === 'inuse' ? 'inuse' : 'alloc';
  const samples: PprofSample[] = sites.map((site) => ({
    values: withObjects ? [Math.round(site.objects), Math.round(site.bytes)] : [Math.round(site.bytes)],
    frames: site.frames.length > 0 ? site.frames : [{ functionName: '(V8)', file: '', line: 0, column: 0 }],
    labels: {},
  }));
  return encodePprof({
    sampleTypes: withObjects
      ? [
          { type: `${prefix}_objects`, unit: 'count' },
          { type: `${prefix}_space`, unit: 'bytes' },
        ]
      : [{ type: `${prefix}_space`, unit: 'bytes' }],
    periodType: { type: 'space', unit: 'bytes' },
    period: intervalBytes,
    durationNanos: deltaSeconds === undefined ? 0 : deltaSeconds * 1e9,
    samples,
    comments,
  });
}

/**
 * `heap` and `allocs` read the same sampler; the heapSampling option decides
 * what it samples. allocs always answers (it is on every Go scraper's list),
 * saying what it holds; heap answers 404 when the sampler cannot tell what is live.
 */
export function createHeapProfiles(engine: ProfilerEngine, intervalBytes: number, sampling: 'inuse' | 'allocs' | 'off'): ProfileDefinition[] {
  const includeCollected = sampling === 'allocs';
  const profile = (kind: 'inuse' | 'allocs'): ProfileDefinition => ({
    name: kind === 'inuse' ? 'heap' : 'allocs',
    aliases: [],
    description:
      kind === 'inuse'
        ? 'A sampling of memory allocations of live objects. You can specify the gc GET parameter to run a full garbage collection before taking the heap sample' +
          (engine.heapSinceLastRead ? ` (engine ${engine.name}: objects allocated since the previous heap request only)` : '') +
          (sampling === 'inuse' ? '' : ` (off: heapSampling is "${sampling}")`)
        : sampling === 'allocs'
          ? 'A sampling of all past memory allocations, freed ones included'
          : `What a scraper configured for Go reads as memory: ${sampling === 'inuse' ? 'the in-use sampling of heap (inuse_objects, inuse_space; V8 has one sampler, and it samples live objects unless heapSampling is "allocs")' : 'empty (heapSampling is "off")'}` +
            (engine.heapSinceLastRead && sampling === 'inuse' ? ` (engine ${engine.name}: objects allocated since the previous heap or allocs request only)` : ''),
    seconds: 'delta',
    debugLevels: [0, 1],
    formats: [],
    // allocs is on every Go scraper's default list: it always answers.
    unavailable(): ProfileError | undefined {
      if (kind === 'allocs') return undefined;
      if (sampling === 'off') return new ProfileError(404, MSG_SAMPLING_OFF);
      if (kind !== sampling) return new ProfileError(404, MSG_HEAP_OFF);
      return undefined;
    },
    async write(query: ProfileQuery): Promise<ProfileOutput> {
      const off = this.unavailable?.();
      if (off !== undefined) throw off;
      // What the sampler holds: allocs under the default sampler serves its in-use figures, named so.
      const held: 'inuse' | 'allocs' = kind === 'allocs' && sampling === 'allocs' ? 'allocs' : 'inuse';
      const comments = kind === 'allocs' && sampling !== 'allocs' ? [sampling === 'off' ? MSG_ALLOCS_EMPTY : MSG_ALLOCS_INUSE] : [];
      if (engine.heapSinceLastRead && sampling !== 'off') comments.push(MSG_HEAP_SINCE_LAST_READ);
      const filename = kind === 'inuse' ? 'heap' : 'allocs';
      const gc = query.params.get('gc');
      if (gc !== null && gc !== '0' && gc !== '1') throw new ProfileError(400, msgInvalidValue('gc', '0 or 1'));
      const read = async (): Promise<SamplingHeapProfile> => {
        try {
          await heapSampler.start(engine, intervalBytes, includeCollected);
          if (gc === '1') await engine.collectGarbage();
          return await engine.heapProfile();
        } catch (error) {
          throw new ProfileError(500, msgCouldNot('read the heap profile', error));
        }
      };
      if (sampling === 'off') {
        if (query.deltaSeconds !== undefined) await waitDelta(query.deltaSeconds, query.signal);
        if (query.debug === 1) return { contentType: 'text/plain; charset=utf-8', body: heapText([], held, query.deltaSeconds) + `# ${comments[0]}\n` };
        return { contentType: 'application/octet-stream', filename: filename + (query.deltaSeconds === undefined ? '' : '-delta'), body: heapPprof([], held, true, intervalBytes, query.deltaSeconds, comments) };
      }
      let profile = await query.gated(read);
      let sites = heapSites(profile, intervalBytes);
      const deltaSeconds = query.deltaSeconds;
      if (deltaSeconds !== undefined) {
        await waitDelta(deltaSeconds, query.signal);
        profile = await query.gated(read);
        // An engine whose read covers only the time since the previous read already gives the change.
        sites = engine.heapSinceLastRead ? heapSites(profile, intervalBytes) : heapDelta(sites, heapSites(profile, intervalBytes));
      }
      if (query.debug === 1) return { contentType: 'text/plain; charset=utf-8', body: heapText(sites, held, deltaSeconds) + comments.map((c) => `# ${c}\n`).join('') };
      // Engines that report bytes only give no object counts: the profile then has the space type alone.
      return {
        contentType: 'application/octet-stream',
        filename: filename + (deltaSeconds === undefined ? '' : '-delta'),
        body: heapPprof(sites, held, profile.samples !== undefined, intervalBytes, deltaSeconds, comments),
      };
    },
  });
  return [profile('inuse'), profile('allocs')];
}
