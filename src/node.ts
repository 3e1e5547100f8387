// What every adapter shares: turning node's request into a DebugRequest,
// writing a DebugResponse to node's response (streams with back-pressure,
// stop on client abort, a 500 only while headers are unsent), and the label
// scope each app request runs in.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { resolveOptions, type ResolvedOptions, type TaskprofOptions } from './options.js';
import { createDebugHandler, MSG_INTERNAL, type DebugHandler, type DebugResponse } from './handler.js';
import { LabelSet, ownWork, runWithLabels, type Labels } from './labels.js';
import { tracker } from './tracker/tracker.js';
import { defaultTrackerSettings, type TrackerSettings } from './tracker/types.js';
import { loadEngine } from './engine.js';
import { heapSampler } from './profiles/heap.js';
import { UnmountedError } from './profiles/profile.js';
import { startRuntimeStats, stopRuntimeStats } from './vars.js';
import { defaultLeakDetection, growthDetector } from './growth.js';
import { installDumpOnSignal, uninstallDumpOnSignal } from './dump.js';
import { disconnectInspector } from './inspector.js';

/** Starts the growth detector from mount options: the first mount starts it, a mount with settings restarts it. */
function applyLeakDetection(options: ResolvedOptions): void {
  if (options.leakDetection === false) return;
  if (options.leakDetection === undefined && growthDetector.running) return;
  growthDetector.start(options.leakDetection ?? defaultLeakDetection);
}

export function writeResponse(res: ServerResponse, response: DebugResponse, head: boolean): void {
  if (res.headersSent || res.destroyed) {
    if (response.body instanceof Readable) response.body.destroy();
    return;
  }
  const body = response.body;
  const sendHead = (): void => {
    res.statusCode = response.status;
    for (const [name, value] of Object.entries(response.headers)) res.setHeader(name, value);
  };
  if (body instanceof Readable) {
    if (head) {
      body.destroy();
      sendHead();
      res.end();
      return;
    }
    void streamBody(res, body, sendHead);
    return;
  }
  sendHead();
  if (body !== undefined) res.setHeader('Content-Length', typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
  if (head || body === undefined) res.end();
  else res.end(body);
}

/**
 * Streams a body with back-pressure. The status and headers go out with
 * the first chunk, so that a body failing before it gets a plain 500 (no
 * success headers, no Content-Disposition); one failing later cuts the
 * connection, the only way left to say the body is incomplete.
 */
async function streamBody(res: ServerResponse, body: Readable, sendHead: () => void): Promise<void> {
  const stop = (): void => {
    body.destroy();
  };
  res.once('close', stop);
  // As body.pipe(res) would: what watches the response for 'pipe' sees the body.
  res.emit('pipe', body);
  try {
    for await (const chunk of body) {
      if (res.destroyed) return;
      if (!res.headersSent) sendHead();
      if (!res.write(chunk)) await drained(res, body);
    }
    if (res.destroyed) return;
    if (!res.headersSent) sendHead();
    res.end();
  } catch {
    if (res.destroyed) return;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.statusCode = 500;
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Go-Pprof', '1');
    res.end(MSG_INTERNAL);
  } finally {
    res.off('close', stop);
  }
}

/** Resolves once `res` can take more, or either end closed (a body cut off by its own watchdog, say). */
function drained(res: ServerResponse, body: Readable): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      body.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
    body.on('close', done);
  });
}

let trackingConfigured = false;

/**
 * While a leak check holds tracking at `full`, what mounts and the API ask
 * for is kept here and applied when the check ends (see src/testing.ts).
 */
export const trackingHold: { active: boolean; deferred: TrackerSettings | undefined } = { active: false, deferred: undefined };

/** Applies tracker settings now, or after the leak check that holds tracking. */
export function configureTracking(settings: TrackerSettings): void {
  trackingConfigured = true;
  if (trackingHold.active) trackingHold.deferred = { ...settings };
  else tracker.configure(settings);
}

/** Starts (or reconfigures) the process-wide tracker from mount options. */
function applyTracking(options: ResolvedOptions): void {
  if (options.tracking === undefined && (trackingConfigured || trackingHold.deferred !== undefined)) return;
  configureTracking({
    mode: options.tracking ?? defaultTrackerSettings.mode,
    stackBudget: options.stackBudget,
    maxTasks: options.maxTasks,
  });
}

export interface MountedTaskprof {
  readonly options: ResolvedOptions;
  readonly handler: DebugHandler;
  /** Serves a debug request; `url` is relative to where the adapter is mounted. */
  serve(req: IncomingMessage, res: ServerResponse, native: unknown, url?: string): void;
  /** Whether the tracker records labels now (adapters skip building them otherwise). */
  labelsEnabled(): boolean;
  /** Runs `next` with `labels` on every task it creates, when the tracker records labels. */
  runLabelled<T>(labels: Labels, next: () => T, late?: () => Labels | undefined): T;
  /**
   * The same for a request whose method and route are known up front: one
   * label set per (method, route) is reused, with what it caches (its route
   * count, its stack budget class), instead of one per request.
   */
  runRouted<T>(method: string, route: string | undefined, next: () => T): T;
  /** Aborts the debug requests in flight (a CPU profile stops at once); for the host's close hook. */
  abortInFlight(): void;
  /**
   * Aborts this mount's requests in flight and waits for them; the last mount
   * to close also stops what mounts share (see releaseShared). Idempotent.
   */
  unmount(): Promise<void>;
}

// Mounts not yet closed: what they share is stopped when the last one closes.
let openMounts = 0;

// Label sets of (method, route) pairs, shared by their requests; bounded
// (past the bound each request gets its own, which only costs an allocation).
const routeLabelSets = new Map<string, LabelSet>();
const maxRouteLabelSets = 1000;

function routeLabels(method: string, route: string | undefined): LabelSet {
  const key = route === undefined ? method : method + ' ' + route;
  let labels = routeLabelSets.get(key);
  if (labels === undefined) {
    labels = new LabelSet(route === undefined ? { method } : { method, route });
    if (routeLabelSets.size < maxRouteLabelSets) routeLabelSets.set(key, labels);
  }
  return labels;
}

// Tracking, the growth detector, the event-loop histogram, the heap sampler,
// the signal listener and the inspector session: every task taskprof keeps.
async function releaseShared(): Promise<void> {
  growthDetector.stop();
  stopRuntimeStats();
  uninstallDumpOnSignal();
  configureTracking({ ...tracker.settings, mode: 'off' });
  trackingConfigured = false;
  try {
    await heapSampler.stop();
  } finally {
    // A mount opened meanwhile uses the session (its sampler started after the stop).
    if (openMounts === 0) disconnectInspector();
  }
}

export function mount(options?: TaskprofOptions): MountedTaskprof {
  const resolved = resolveOptions(options);
  const engine = loadEngine(resolved.engine);
  applyTracking(resolved);
  tracker.routes.limit = resolved.maxRoutes;
  // taskprof's own timers, histogram and profiler session are not the app's tasks.
  runWithLabels(ownWork, () => {
    applyLeakDetection(resolved);
    if (resolved.dumpOnSignal !== undefined) installDumpOnSignal(resolved.dumpOnSignal, resolved.dumpPath);
    startRuntimeStats();
    // The heap profile shows what is live now only if sampling began before.
    if (resolved.heapSampling !== 'off') {
      heapSampler.start(engine, resolved.heapSamplingInterval, resolved.heapSampling === 'allocs').catch((error: unknown) => {
        console.error('taskprof: could not start the sampling heap profiler; /pprof/heap will say why:', (error as Error).message);
      });
    }
  });
  const handler = createDebugHandler(resolved, engine);
  const inFlight = new Set<AbortController>();
  const handling = new Set<Promise<void>>();
  openMounts++;
  let closing: Promise<void> | undefined;
  const abortInFlight = (): void => {
    for (const controller of inFlight) controller.abort(new UnmountedError());
  };
  return {
    options: resolved,
    handler,
    abortInFlight,
    unmount() {
      closing ??= runWithLabels(ownWork, async () => {
        abortInFlight();
        await Promise.allSettled(handling);
        if (--openMounts === 0) await releaseShared();
      });
      return closing;
    },
    serve(req, res, native, url = req.url ?? '/') {
      const controller = new AbortController();
      inFlight.add(controller);
      res.once('close', () => {
        inFlight.delete(controller);
        if (!res.writableFinished) controller.abort();
      });
      // The client may have left before the host handed the request on (an
      // async middleware ahead of taskprof): 'close' has fired already.
      // (Not req.destroyed: a request whose body was read is destroyed while
      // its client still waits.)
      if (res.closed || res.destroyed || req.socket?.destroyed === true) {
        inFlight.delete(controller);
        controller.abort();
      }
      const method = req.method ?? 'GET';
      const done = runWithLabels(ownWork, () =>
        handler
          .handle({ method, url, headers: req.headers, remoteAddress: req.socket?.remoteAddress, native, signal: controller.signal })
          .then((response) => writeResponse(res, response, method === 'HEAD'))
          .catch(() => {
            if (!res.headersSent) {
              res.statusCode = 500;
              res.end(MSG_INTERNAL);
            } else res.destroy();
          })
          .finally(() => handling.delete(done)),
      );
      handling.add(done);
    },
    labelsEnabled: () => tracker.labelsEnabled,
    runLabelled(labels, next, late) {
      if (!tracker.labelsEnabled) return next();
      return runWithLabels(new LabelSet(labels, late), next);
    },
    runRouted(method, route, next) {
      if (!tracker.labelsEnabled) return next();
      return runWithLabels(routeLabels(method, route), next);
    },
  };
}
