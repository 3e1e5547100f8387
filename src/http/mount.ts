// Mounting: what every adapter shares. Resolves the options, holds the
// process-wide shared state while mounted (lifecycle/shared.ts), turns
// node's request into a DebugRequest and hands the answer to the writer,
// and runs each app request in its label scope.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { resolveOptions, type ResolvedOptions, type TaskprofOptions } from '../options.js';
import { createDebugHandler, type DebugHandler } from './handler.js';
import { MSG_INTERNAL, MSG_NOT_FOUND, serveError } from '../errors.js';
import { LabelSet, ownWork, runWithLabels, type Labels } from '../labels/labels.js';
import { tracker } from '../tracker/tracker.js';
import { writeResponse } from './writer.js';
import { loadEngine } from '../v8/engine.js';
import { UnmountedError } from '../profiles/profile.js';
import { acquireShared, releaseShared } from '../lifecycle/shared.js';
import { announceMount } from '../lifecycle/discovery.js';

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
  /** Answers 404 (a path that is not taskprof's, where the adapter has nothing to hand it to). */
  notFound(res: ServerResponse): void;
  /** Aborts the debug requests in flight (a CPU profile stops at once); for the host's close hook. */
  abortInFlight(): void;
  /**
   * Aborts this mount's requests in flight and waits for them; the last mount
   * to close also stops what mounts share (lifecycle/shared.ts). Idempotent.
   */
  unmount(): Promise<void>;
}

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

export function mount(options?: TaskprofOptions): MountedTaskprof {
  const resolved = resolveOptions(options);
  const engine = loadEngine(resolved.engine);
  acquireShared(resolved, engine);
  const unannounce = resolved.discovery ? announceMount(resolved.prefix, resolved.token !== undefined || resolved.authorize !== undefined) : () => undefined;
  const handler = createDebugHandler(resolved, engine);
  const inFlight = new Set<AbortController>();
  const handling = new Set<Promise<void>>();
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
        unannounce();
        await Promise.allSettled(handling);
        await releaseShared();
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
            if (!res.headersSent) writeResponse(res, serveError(500, MSG_INTERNAL), false);
            else res.destroy();
          })
          .finally(() => handling.delete(done)),
      );
      handling.add(done);
    },
    notFound: (res) => writeResponse(res, serveError(404, MSG_NOT_FOUND), false),
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
