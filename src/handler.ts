// The one request handler behind every adapter: takes a plain request,
// resolves to { status, headers, body }, never writes to a socket and never
// rejects.
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkAccess } from './access.js';
import type { DebugRequestInfo, ResolvedOptions } from './options.js';
import { ProfileError, parseSeconds, type ProfileDefinition, type ResponseBody } from './profiles/profile.js';
import { createRegistry, type ProfileRegistry } from './profiles/registry.js';
import { loadEngine, type ProfilerEngine } from './engine.js';
import { runtimeVars } from './vars.js';
import { indexPage } from './profiles/indexpage.js';
import { ensureTaskMetrics, ownRegistriesFor, wantsOpenMetrics } from './metrics.js';

export interface DebugRequest extends DebugRequestInfo {
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal;
}

export interface DebugResponse {
  status: number;
  headers: Record<string, string>;
  body: ResponseBody;
}

export const MSG_UNKNOWN_PROFILE = 'Unknown profile\n';
export const MSG_METHOD = 'Method not allowed: use GET or HEAD\n';
export const MSG_INTERNAL = 'Internal error in taskprof; see the server log\n';
export const MSG_SECONDS_UNSUPPORTED = '"seconds" parameter is not supported for this profile type\n';
export const MSG_SECONDS_DEBUG = 'seconds and debug params are incompatible: debug=2 lists single tasks, not a difference; use debug=0 or debug=1\n';
export const MSG_DELTA_BUSY = 'Too many requests: too many delta profiles are waiting; try again later\n';

// Delta profiles waiting at once; each holds one listing until its second read.
const maxDeltaWaits = 8;

export const MSG_DEBUG_BUSY =
  'Too many requests: too many listings and profiles are queued (taskprof computes one at a time and keeps its own work to about half of the time); try again in a second\n';

// Listings and profiles that compute on the event loop (tasks, leaks, heap)
// run one at a time in the process, and after one that held the loop for
// more than heavyWorkFreeMs the next waits as long again (at most
// heavyWorkCooldownMaxMs): the app keeps at least about half of the process
// whatever the scrapers do. Up to maxHeavyWaiting wait their turn; more get 429.
const heavyWork = { running: false, openAt: 0, waiting: 0 };
const heavyWorkFreeMs = 20;
const heavyWorkCooldownMaxMs = 1000;
const maxHeavyWaiting = 8;

async function startHeavyWork(signal: AbortSignal): Promise<(() => void) | undefined> {
  if (heavyWork.running || performance.now() < heavyWork.openAt) {
    if (heavyWork.waiting >= maxHeavyWaiting) return undefined;
    heavyWork.waiting++;
    try {
      while (heavyWork.running || performance.now() < heavyWork.openAt) {
        await sleep(Math.max(5, heavyWork.openAt - performance.now()), undefined, { signal });
      }
    } catch {
      return undefined; // the client left while waiting
    } finally {
      heavyWork.waiting--;
    }
  }
  heavyWork.running = true;
  const startedAt = performance.now();
  return () => {
    const now = performance.now();
    const took = now - startedAt;
    heavyWork.running = false;
    heavyWork.openAt = took > heavyWorkFreeMs ? now + Math.min(took, heavyWorkCooldownMaxMs) : 0;
  };
}

const commonHeaders = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' };

/** Every error answer: plain text, no Content-Disposition, Go's X-Go-Pprof marker so `go tool pprof` prints the message. */
export function serveError(status: number, message: string, extraHeaders: Record<string, string> = {}): DebugResponse {
  return {
    status,
    headers: { ...commonHeaders, 'Content-Type': 'text/plain; charset=utf-8', 'X-Go-Pprof': '1', ...extraHeaders },
    body: message,
  };
}

export function invalidParameter(name: string, allowed: string): DebugResponse {
  return serveError(400, `invalid value for "${name}" - must be ${allowed}\n`);
}

function ok(contentType: string, body: ResponseBody, filename?: string): DebugResponse {
  const headers: Record<string, string> = { ...commonHeaders, 'Content-Type': contentType };
  if (filename !== undefined) headers['Content-Disposition'] = `attachment; filename="${filename}"`;
  return { status: 200, headers, body };
}

function oneOf(values: readonly (string | number)[]): string {
  if (values.length === 1) return String(values[0]);
  return values.slice(0, -1).join(', ') + ' or ' + String(values[values.length - 1]);
}

export interface DebugHandler {
  /** True when `url` is a path taskprof serves; checked synchronously on every request. */
  matches(url: string): boolean;
  handle(request: DebugRequest): Promise<DebugResponse>;
  readonly registry: ProfileRegistry;
  /** Route patterns for routers (Fastify): the pprof tree, vars and metrics. */
  readonly routes: readonly string[];
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

export function createDebugHandler(options: ResolvedOptions, engine: ProfilerEngine = loadEngine('inspector')): DebugHandler {
  const registry = createRegistry(options, engine);
  const pprofRoot = options.prefix + '/pprof';
  const varsPath = options.prefix + '/vars';
  const metricsPath = options.prefix + '/metrics';
  const metricsRegistries = ownRegistriesFor(options.metricsPrefix);
  if (options.register !== undefined) ensureTaskMetrics(options.register, options.metricsPrefix);
  let loggedInternalError = false;
  let deltaWaits = 0;

  async function serve(request: DebugRequest): Promise<DebugResponse> {
    const access = await checkAccess(request, options);
    if (!access.allowed) return serveError(access.status, access.message, access.headers);
    if (request.method !== 'GET' && request.method !== 'HEAD') return serveError(405, MSG_METHOD, { Allow: 'GET, HEAD' });

    const url = new URL(request.url, 'http://taskprof.invalid');
    const path = url.pathname;
    if (path === varsPath) return ok('application/json; charset=utf-8', JSON.stringify(runtimeVars(), null, 2) + '\n');
    if (path === metricsPath) {
      const registry = wantsOpenMetrics(request.headers.accept) ? metricsRegistries.openMetrics : metricsRegistries.text;
      return ok(registry.contentType, await registry.metrics());
    }
    if (path === pprofRoot) return { status: 301, headers: { ...commonHeaders, Location: 'pprof/' }, body: undefined };
    let name: string;
    try {
      name = decodeURIComponent(path.slice(pprofRoot.length + 1));
    } catch {
      return serveError(404, MSG_UNKNOWN_PROFILE);
    }
    const params = url.searchParams;
    for (const key of new Set(params.keys())) {
      if (params.getAll(key).length > 1) return serveError(400, `parameter "${key}" may be given only once\n`);
    }
    if (name === '') return ok('text/html; charset=utf-8', indexPage(registry, options.prefix));
    if (name === 'cmdline') return ok('text/plain; charset=utf-8', process.argv.join('\x00'));

    const profile = registry.lookup(name);
    if (profile === undefined) return serveError(404, MSG_UNKNOWN_PROFILE);
    return serveProfile(profile, request, params);
  }

  async function serveProfile(profile: ProfileDefinition, request: DebugRequest, params: URLSearchParams): Promise<DebugResponse> {
    // A switched-off profile says so first: no retry (429) can help it.
    const off = profile.unavailable?.();
    if (off !== undefined) return serveError(off.status, off.message + '\n', off.headers);
    const debugParam = params.get('debug');
    let debug = profile.debugLevels[0]!;
    if (debugParam !== null) {
      debug = /^[0-9]{1,3}$/.test(debugParam) ? Number(debugParam) : NaN;
      if (!profile.debugLevels.includes(debug)) return invalidParameter('debug', oneOf(profile.debugLevels));
    }
    let format = params.get('format') ?? undefined;
    if (format !== undefined && !profile.formats.includes(format)) {
      return invalidParameter('format', profile.formats.length > 0 ? oneOf(profile.formats) : 'absent: this profile has one format');
    }
    if (format === undefined && profile.formats.includes('json') && /\bapplication\/json\b/i.test(String(request.headers.accept ?? ''))) {
      format = 'json';
    }
    let deltaSeconds: number | undefined;
    if (params.has('seconds')) {
      if (profile.seconds === undefined) return serveError(400, MSG_SECONDS_UNSUPPORTED);
      if (profile.seconds === 'delta') {
        if (debug === 2) return serveError(400, MSG_SECONDS_DEBUG);
        try {
          deltaSeconds = parseSeconds(params, options.maxProfileSeconds, 0);
        } catch (error) {
          return serveError(400, (error as Error).message + '\n');
        }
        if (deltaWaits >= maxDeltaWaits) return serveError(429, MSG_DELTA_BUSY, { 'Retry-After': String(Math.min(deltaSeconds, 60)) });
      }
    }
    // CPU profiles and snapshots have their own one-at-a-time rule; delta
    // waits are bounded by maxDeltaWaits.
    let endHeavyWork: (() => void) | undefined;
    if (profile.seconds !== 'duration' && deltaSeconds === undefined && profile.name !== 'heapsnapshot') {
      endHeavyWork = await startHeavyWork(request.signal);
      if (endHeavyWork === undefined) return serveError(429, MSG_DEBUG_BUSY, { 'Retry-After': '1' });
    }
    if (deltaSeconds !== undefined) deltaWaits++;
    try {
      const output = await profile.write({ debug, format, json: format === 'json', params, signal: request.signal, deltaSeconds });
      // A streamed listing computes as it is sent: the gate is held until the
      // stream closes, but no longer than heavyWorkCooldownMaxMs, so that a
      // client that stops reading cannot hold it.
      if (endHeavyWork !== undefined && output.body instanceof Readable) {
        const end = endHeavyWork;
        let ended = false;
        const endOnce = (): void => {
          if (ended) return;
          ended = true;
          clearTimeout(timer);
          end();
        };
        const timer = setTimeout(endOnce, heavyWorkCooldownMaxMs);
        timer.unref();
        output.body.once('close', endOnce);
        endHeavyWork = undefined;
      }
      return ok(output.contentType, output.body, output.filename);
    } catch (error) {
      if (error instanceof ProfileError) return serveError(error.status, error.message + '\n', error.headers);
      throw error;
    } finally {
      if (deltaSeconds !== undefined) deltaWaits--;
      endHeavyWork?.();
    }
  }

  return {
    registry,
    routes: [pprofRoot, pprofRoot + '/*', varsPath, metricsPath],
    matches(url: string): boolean {
      const path = pathOf(url);
      return path === pprofRoot || path.startsWith(pprofRoot + '/') || path === varsPath || path === metricsPath;
    },
    async handle(request: DebugRequest): Promise<DebugResponse> {
      try {
        return await serve(request);
      } catch (error) {
        if (!loggedInternalError) {
          loggedInternalError = true;
          console.error('taskprof: internal error while serving %s (logged once):', request.url, error);
        }
        return serveError(500, MSG_INTERNAL);
      }
    },
  };
}
