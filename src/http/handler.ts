// The one request handler behind every adapter: takes a plain request,
// resolves to { status, headers, body }, never writes to a socket and never
// rejects.
import { Readable } from 'node:stream';
import { checkAccess } from './access.js';
import { cooldownMaxMs, enterDeltaWait, enterWorkGate, leaveDeltaWait, runInWorkGate } from './work-gate.js';
import type { DebugRequestInfo, ResolvedOptions } from '../options.js';
import { parseSeconds, type ProfileDefinition, type ResponseBody } from '../profiles/profile.js';
import {
  MSG_DEBUG_BUSY,
  MSG_DELTA_BUSY,
  MSG_INTERNAL,
  MSG_METHOD,
  MSG_SECONDS_DEBUG,
  MSG_SECONDS_UNSUPPORTED,
  MSG_UNKNOWN_PROFILE,
  ProfileError,
  commonHeaders,
  msgBadPath,
  serveError,
  msgInvalidValue,
  msgRepeatedParameter,
} from '../errors.js';
import { createRegistry, type ProfileRegistry } from '../profiles/registry.js';
import { loadEngine, type ProfilerEngine } from '../v8/engine.js';
import { runtimeVars } from '../metrics/runtime-stats.js';
import { indexPage } from './index-page.js';
import { ensureTaskMetrics, ownRegistriesFor, wantsOpenMetrics } from '../metrics/metrics.js';

export interface DebugRequest extends DebugRequestInfo {
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal;
}

export interface DebugResponse {
  status: number;
  headers: Record<string, string>;
  body: ResponseBody;
}

function invalidParameter(name: string, allowed: string): DebugResponse {
  return serveError(400, msgInvalidValue(name, allowed));
}

function ok(contentType: string, body: ResponseBody, filename?: string, extraHeaders?: Record<string, string>): DebugResponse {
  const headers: Record<string, string> = { ...commonHeaders, 'Content-Type': contentType, ...extraHeaders };
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

/**
 * Why a path is not canonical, if it is not. taskprof's paths never need
 * encoding or dot segments, so any spelling that a decoder or a normaliser
 * could turn into another path is refused rather than interpreted.
 */
export function nonCanonicalPath(path: string): string | undefined {
  if (path.includes('%')) return 'percent-encoded characters are not accepted in the path';
  if (path.includes('\\')) return 'backslashes are not accepted in the path';
  const segments = path.split('/').slice(1);
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment === '.' || segment === '..') return 'dot segments ("." and "..") are not accepted in the path';
    // An empty segment: "//", or a trailing slash other than the index's.
    if (segment === '' && i < segments.length - 1) return 'empty segments ("//") are not accepted in the path';
  }
  return undefined;
}

/** The first query parameter given more than once, in one pass over the query. */
function repeatedParameter(params: URLSearchParams): string | undefined {
  const seen = new Set<string>();
  for (const key of params.keys()) {
    if (seen.has(key)) return key;
    seen.add(key);
  }
  return undefined;
}

export function createDebugHandler(options: ResolvedOptions, engine: ProfilerEngine = loadEngine('inspector')): DebugHandler {
  const registry = createRegistry(options, engine);
  const pprofRoot = options.prefix + '/pprof';
  const varsPath = options.prefix + '/vars';
  const metricsPath = options.prefix + '/metrics';
  const metricsRegistries = ownRegistriesFor(options.metricsPrefix);
  if (options.register !== undefined) ensureTaskMetrics(options.register, options.metricsPrefix);
  let loggedInternalError = false;

  /** What a canonical path serves: an endpoint name, or undefined (404). */
  function endpointOf(path: string): { endpoint: string | undefined; profile?: ProfileDefinition; asked?: string } {
    if (path === varsPath) return { endpoint: 'vars' };
    if (path === metricsPath) return { endpoint: 'metrics' };
    if (path === pprofRoot || path === pprofRoot + '/') return { endpoint: 'index' };
    const name = path.startsWith(pprofRoot + '/') ? path.slice(pprofRoot.length + 1) : undefined;
    if (name === 'cmdline') return { endpoint: 'cmdline' };
    const profile = name === undefined ? undefined : registry.lookup(name);
    return profile === undefined ? { endpoint: undefined } : { endpoint: profile.name, profile, asked: name };
  }

  async function serve(request: DebugRequest): Promise<DebugResponse> {
    // The endpoint is decided from the path as sent, and only a canonical
    // path is served: what authorize is asked about is what is served.
    const path = pathOf(request.url);
    const problem = nonCanonicalPath(path);
    if (problem !== undefined) return serveError(400, msgBadPath(problem, `${pprofRoot}/tasks`));
    const { endpoint, profile, asked } = endpointOf(path);
    const access = await checkAccess({ ...request, endpoint, path }, options);
    if (!access.allowed) return serveError(access.status, access.body, access.headers);
    if (request.method !== 'GET' && request.method !== 'HEAD') return serveError(405, MSG_METHOD, { Allow: 'GET, HEAD' });

    if (path === pprofRoot) return { status: 301, headers: { ...commonHeaders, Location: 'pprof/' }, body: undefined };
    const params = new URL(request.url, 'http://taskprof.invalid').searchParams;
    const repeated = repeatedParameter(params);
    if (repeated !== undefined) return serveError(400, msgRepeatedParameter(repeated));
    switch (endpoint) {
      case 'vars':
        return ok('application/json; charset=utf-8', JSON.stringify(runtimeVars(), null, 2) + '\n');
      case 'metrics': {
        const registry = wantsOpenMetrics(request.headers.accept) ? metricsRegistries.openMetrics : metricsRegistries.text;
        return ok(registry.contentType, await registry.metrics());
      }
      case 'index':
        return ok('text/html; charset=utf-8', indexPage(registry, options.prefix));
      case 'cmdline':
        return ok('text/plain; charset=utf-8', process.argv.join('\x00'));
    }
    if (profile === undefined) return serveError(404, MSG_UNKNOWN_PROFILE);
    return serveProfile(profile, asked ?? profile.name, request, params);
  }

  async function serveProfile(profile: ProfileDefinition, asked: string, request: DebugRequest, params: URLSearchParams): Promise<DebugResponse> {
    // A switched-off profile says so first: no retry (429) can help it.
    const off = profile.unavailable?.();
    if (off !== undefined) return serveError(off.status, off.body, off.headers);
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
          if (error instanceof ProfileError) return serveError(error.status, error.body, error.headers);
          throw error;
        }
        if (!enterDeltaWait()) return serveError(429, MSG_DELTA_BUSY, { 'Retry-After': String(Math.min(deltaSeconds, 60)) });
      }
    }
    // CPU profiles and snapshots have their own one-at-a-time rule; a delta
    // takes each of its two reads through the gate (gated below).
    let endHeavyWork: (() => void) | undefined;
    if (profile.seconds !== 'duration' && deltaSeconds === undefined && profile.name !== 'heapsnapshot') {
      endHeavyWork = await enterWorkGate(request.signal);
      if (endHeavyWork === undefined) return serveError(429, MSG_DEBUG_BUSY, { 'Retry-After': '1' });
    }
    const gated = async <T>(work: () => T | Promise<T>): Promise<T> => {
      if (deltaSeconds === undefined) return work();
      const done = await runInWorkGate(request.signal, work);
      if (done === undefined) throw new ProfileError(429, MSG_DEBUG_BUSY, { 'Retry-After': '1' });
      return done.value;
    };
    try {
      const output = await profile.write({ debug, format, json: format === 'json', params, signal: request.signal, deltaSeconds, head: request.method === 'HEAD', gated });
      // A streamed listing computes as it is sent: the gate is held until the
      // stream closes, but no longer than cooldownMaxMs, so that a
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
        const timer = setTimeout(endOnce, cooldownMaxMs);
        timer.unref();
        output.body.once('close', endOnce);
        endHeavyWork = undefined;
      }
      // Named as asked, as Go names it: goroutine, goroutine-delta.
      const filename = asked !== profile.name && output.filename?.startsWith(profile.name) ? asked + output.filename.slice(profile.name.length) : output.filename;
      return ok(output.contentType, output.body, filename, output.headers);
    } catch (error) {
      if (error instanceof ProfileError) return serveError(error.status, error.body, error.headers);
      throw error;
    } finally {
      if (deltaSeconds !== undefined) leaveDeltaWait();
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
