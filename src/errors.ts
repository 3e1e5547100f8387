// Every error body taskprof answers, in one place. Each is the exact body,
// ending in one newline (what curl and `go tool pprof` print). Fixed
// messages are constants; those that carry a value are functions. Imports
// nothing at run time: every layer may use it.
import type { DebugResponse } from './http/handler.js';

// Paths and methods
export const MSG_UNKNOWN_PROFILE = 'Unknown profile\n';
/** The plain node:http handler's answer to a path that is not taskprof's, when it has no `next`. */
export const MSG_NOT_FOUND = 'Not found\n';
export const MSG_METHOD = 'Method not allowed: use GET or HEAD\n';
export const msgBadPath = (problem: string, example: string): string => `Bad path: ${problem}; send the canonical path (such as ${example})\n`;

// Parameters
export const msgInvalidValue = (name: string, allowed: string): string => `invalid value for "${name}" - must be ${allowed}\n`;
export const msgRepeatedParameter = (name: string): string => `parameter "${name}" may be given only once\n`;
export const msgInvalidSeconds = (max: number): string => msgInvalidValue('seconds', `an integer from 1 to ${max} (maxProfileSeconds)`);
export const MSG_SECONDS_UNSUPPORTED = '"seconds" parameter is not supported for this profile type\n';
export const MSG_SECONDS_DEBUG = 'seconds and debug params are incompatible: debug=2 lists single tasks, not a difference; use debug=0 or debug=1\n';

// Access
export const MSG_NOT_LOCAL =
  'Forbidden: taskprof answers loopback requests only, and a request carrying a proxy header (Forwarded, X-Forwarded-*, X-Real-IP, Via, True-Client-IP, CF-Connecting-IP, X-Client-IP, X-Cluster-Client-IP, Fastly-Client-IP) is not local. ' +
  'To allow other clients, set the "token" option and send "Authorization: Bearer <token>", or set an "authorize" callback.\n';
export const MSG_BAD_TOKEN = 'Unauthorized: send "Authorization: Bearer <token>" with the token set in the "token" option.\n';
export const MSG_NOT_AUTHORIZED = 'Forbidden: the "authorize" callback refused this request.\n';

// Busy: one at a time, bounded queues (429)
export const MSG_DEBUG_BUSY =
  'Too many requests: too many listings and profiles are queued (taskprof computes one at a time and keeps its own work to about half of the time); try again in a second\n';
export const MSG_DELTA_BUSY = 'Too many requests: too many delta profiles are waiting; try again later\n';
export const MSG_CPU_BUSY = 'Too many requests: 8 CPU profiles are being taken at once (they share one sampler), the most taskprof serves\n';
export const MSG_CPU_ENGINE_BUSY = 'Too many requests: a CPU profile is being taken with another profiler engine (another mount\'s engine option); V8 has one sampler\n';
export const MSG_SNAPSHOT_BUSY = 'Too many requests: a heap snapshot is already being taken; one runs at a time\n';

// Switched off by an option
export const MSG_LEAKS_OFF = 'leaks is not available: the leakDetection option is false (no growth detector runs)\n';
export const MSG_SNAPSHOT_OFF =
  'Forbidden: heap snapshots contain every secret in memory and are off; set the "heapSnapshot: true" option to allow them\n';
// Comments of an allocs profile that is not an allocation sampling (no newline: pprof comments).
export const MSG_ALLOCS_INUSE =
  'in use, not allocated: V8 runs one sampling heap profiler per process, and by default it samples live objects (the heap profile), ' +
  'so allocs carries the in-use figures (inuse_objects, inuse_space, which Go\'s allocs profile also has); ' +
  'set the heapSampling: "allocs" option to sample every allocation, freed ones too (its cost: BENCHMARKS.md)';
export const MSG_HEAP_SINCE_LAST_READ =
  'engine v8-profiler-next: its sampler is read by restarting it, so this covers objects allocated since the previous heap or allocs request (any client\'s) and still live';
export const MSG_ALLOCS_EMPTY = 'empty: the heapSampling option is "off", so no sampling heap profiler runs';
export const MSG_HEAP_OFF =
  'heap is not available: the heapSampling option is "allocs", so the sampler keeps freed objects and cannot tell what is live; use allocs\n';
export const MSG_SAMPLING_OFF = 'heap is not available: the heapSampling option is "off" (no sampling heap profiler runs)\n';

// Ended early
export const MSG_DELTA_UNMOUNTED = 'Service unavailable: taskprof was unmounted (its middleware or server closed) during the wait; the delta profile is cancelled\n';
export const MSG_DELTA_CLIENT_LEFT = 'the delta profile was cancelled: the client went away during the wait\n';

// Resources and failures
export const msgSnapshotTooBig = (required: string, factor: number, available: string): string =>
  `Insufficient storage: a heap snapshot needs about ${required} (${factor} times the used heap) and ${available} is available\n`;
export const msgSnapshotMemoryUnknown = (required: string, factor: number, reason: string): string =>
  `Insufficient storage: a heap snapshot needs about ${required} (${factor} times the used heap), and ${reason}, so taskprof cannot tell that it fits\n`;
export const msgCouldNot = (what: string, error: unknown): string => `Could not ${what}: ${(error as Error | undefined)?.message ?? String(error)}\n`;
export const MSG_INTERNAL = 'Internal error in taskprof; see the server log\n';

/** A profile's refusal: its status, its exact body (one of the above), and headers such as Retry-After. */
export class ProfileError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(body.trimEnd());
  }
}

/** Headers of every answer, error or not. */
export const commonHeaders: Readonly<Record<string, string>> = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' };

/** Every error answer: the exact body as plain text, no Content-Disposition, Go's X-Go-Pprof marker so `go tool pprof` prints the message. */
export function serveError(status: number, body: string, extraHeaders: Record<string, string> = {}): DebugResponse {
  return {
    status,
    headers: { ...commonHeaders, 'Content-Type': 'text/plain; charset=utf-8', 'X-Go-Pprof': '1', ...extraHeaders },
    body,
  };
}
