// GET <prefix>/pprof/heapsnapshot: a full V8 heap snapshot for Chrome
// DevTools' Memory tab. It holds every secret in memory, so it is off unless
// the app sets heapSnapshot: true.
import { createReadStream, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir, freemem } from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { MSG_SNAPSHOT_BUSY, MSG_SNAPSHOT_OFF, ProfileError, msgCouldNot, msgSnapshotMemoryUnknown, msgSnapshotTooBig } from '../errors.js';
import { type ProfileDefinition, type ProfileOutput, type ProfileQuery } from './profile.js';


/** Bytes free for a snapshot: the container's limit where one applies, else free system memory. */
export function defaultAvailableMemory(): number {
  const constrained = typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : 0;
  if (constrained !== undefined && constrained > 0 && constrained < Number.MAX_SAFE_INTEGER) {
    return Math.max(0, constrained - process.memoryUsage.rss());
  }
  return freemem();
}

/** A snapshot is refused (507) when less than this many times the used heap is available (V8 needed 10.7 × in bench/heapsnapshot.mjs). */
export const snapshotMemoryFactor = 10;
// A client that reads nothing for this long is cut off: the snapshot lock
// (one at a time) must not be held by a connection that stalls.
export const stalledReaderMs = 30_000;

/** The memory figure from the app's callback, or why it cannot be used. */
function readAvailableMemory(availableMemory: () => number): number | string {
  let available: unknown;
  try {
    available = availableMemory();
  } catch (error) {
    return `the availableMemory option threw (${(error as Error)?.message ?? String(error)})`;
  }
  if (typeof available !== 'number' || !Number.isFinite(available) || available < 0) {
    return `the availableMemory option returned ${typeof available === 'number' ? String(available) : typeof available}, not a number of bytes`;
  }
  return available;
}

const mib = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MiB`;

// One snapshot at a time in the process, whatever mount asks: each needs
// about ten times the used heap while V8 takes it.
let busy = false;

/** Whether a heap snapshot is being taken or streamed now (any mount). */
export function snapshotRunning(): boolean {
  return busy;
}

export function createHeapSnapshotProfile(enabled: boolean, availableMemory: () => number): ProfileDefinition {
  return {
    name: 'heapsnapshot',
    aliases: [],
    description: enabled
      ? 'A full V8 heap snapshot for the Memory tab of Chrome DevTools; blocks the process while it is taken and needs about ten times the used heap'
      : 'A full V8 heap snapshot. Opt-in, and off here: set the heapSnapshot option (a snapshot contains every secret in memory)',
    debugLevels: [0],
    formats: [],
    unavailable(): ProfileError | undefined {
      return enabled ? undefined : new ProfileError(403, MSG_SNAPSHOT_OFF);
    },
    write(query: ProfileQuery): ProfileOutput {
      const off = this.unavailable?.();
      if (off !== undefined) throw off;
      const filename = `heap-${process.pid}-${Date.now()}.heapsnapshot`;
      // The headers a GET would get, without the snapshot (seconds of a held process).
      if (query.head) return { contentType: 'application/json', body: undefined, filename };
      if (busy) throw new ProfileError(429, MSG_SNAPSHOT_BUSY, { 'Retry-After': '10' });
      // V8's snapshot generator needs far more than the heap it describes:
      // bench/heapsnapshot.mjs measured peak RSS rising by 7 to 10.5 times
      // the used heap (more for many small objects).
      const required = snapshotMemoryFactor * v8.getHeapStatistics().used_heap_size;
      const available = readAvailableMemory(availableMemory);
      if (typeof available === 'string') {
        throw new ProfileError(507, msgSnapshotMemoryUnknown(mib(required), snapshotMemoryFactor, available));
      }
      if (required > available) {
        throw new ProfileError(507, msgSnapshotTooBig(mib(required), snapshotMemoryFactor, mib(available)));
      }
      busy = true;
      // V8 writes the snapshot to a file as it serializes it; the response
      // streams that file, so the serialized form is never in memory whole.
      let dir: string | undefined;
      const removeDir = (): void => {
        if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
      };
      let body;
      try {
        dir = mkdtempSync(path.join(tmpdir(), 'taskprof-'));
        const fd = openSync(v8.writeHeapSnapshot(path.join(dir, 'heap.heapsnapshot')), 'r');
        body = createReadStream('', { fd });
      } catch (error) {
        busy = false;
        removeDir();
        throw new ProfileError(500, msgCouldNot('take a heap snapshot', error));
      }
      // Removed now, read through the open descriptor: nothing is left in the
      // temporary directory even if the process ends mid-download. (Where an
      // open file cannot be removed, it goes when the stream closes.)
      let removed = false;
      try {
        removeDir();
        removed = true;
      } catch {
        // Removed on close below.
      }
      // The file is read only as the client takes it (back-pressure): no
      // progress for stalledReaderMs means a stalled client, cut off.
      let lastRead = -1;
      let stalledSince = performance.now();
      const watch = setInterval(() => {
        if (body.bytesRead !== lastRead) {
          lastRead = body.bytesRead;
          stalledSince = performance.now();
        } else if (performance.now() - stalledSince >= stalledReaderMs) {
          body.destroy(new Error(`the client read nothing for ${stalledReaderMs / 1000} s`));
        }
      }, stalledReaderMs / 10);
      watch.unref();
      body.once('close', () => {
        clearInterval(watch);
        busy = false;
        if (!removed) removeDir();
      });
      return { contentType: 'application/json', body, filename };
    },
  };
}
