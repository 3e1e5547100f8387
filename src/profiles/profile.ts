// The shape every built-in profile has; the index page, the counts and the
// routes all come from the registry of these.
import type { Readable } from 'node:stream';
import { MSG_DELTA_CLIENT_LEFT, MSG_DELTA_UNMOUNTED, ProfileError, msgInvalidSeconds } from '../errors.js';

export type ResponseBody = string | Uint8Array | Readable | undefined;

export interface ProfileQuery {
  /** The `debug` parameter, already checked against `debugLevels`. */
  debug: number;
  /** The `format` parameter, already checked against `formats`; `json` also from `Accept: application/json`. */
  format: string | undefined;
  /** format === 'json'. */
  json: boolean;
  params: URLSearchParams;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
  /** `seconds` on a profile that supports deltas: answer with the change over that many seconds. */
  deltaSeconds: number | undefined;
  /** A HEAD request: the headers a GET would get; a profile whose body is costly may skip making it. */
  head: boolean;
  /**
   * Runs a read that holds the event loop (a listing) through the
   * process-wide work gate; a delta profile takes each of its reads
   * through it (other writes already hold the gate: it runs them at once).
   */
  gated<T>(work: () => T | Promise<T>): Promise<T>;
}

export interface ProfileOutput {
  contentType: string;
  body: ResponseBody;
  /** For `Content-Disposition: attachment`. */
  filename?: string;
  /** Further headers (a profile cut short says so in one). */
  headers?: Record<string, string>;
}

export interface ProfileDefinition {
  readonly name: string;
  /** Other names it answers to (Go's names, for scrapers configured for Go). */
  readonly aliases: readonly string[];
  /** One line for the index page. */
  readonly description: string;
  /** What the index page links (relative to the pprof root); default `<name>?debug=1`, or `<name>` without text form. */
  readonly link?: string;
  /** Accepted values of `debug`; the first is the default. */
  readonly debugLevels: readonly number[];
  /** Accepted values of `format` besides the default (pprof or text). */
  readonly formats: readonly string[];
  /**
   * What `seconds` means: `duration` (the profile runs that long, CPU), `delta`
   * (the difference between now and N seconds later, as Go's delta profiles),
   * or absent (not accepted).
   */
  readonly seconds?: 'duration' | 'delta';
  /** Shown in the index table; profiles without a count (CPU) are only described. */
  count?(): number;
  /** Why it cannot be served at all (switched off), checked before anything waits; none when it can. */
  unavailable?(): ProfileError | undefined;
  /** May throw a ProfileError for a bad parameter or a busy profiler. */
  write(query: ProfileQuery): ProfileOutput | Promise<ProfileOutput>;
}


/** Parses `seconds` (1 to max); `fallback` when absent. */
export function parseSeconds(params: URLSearchParams, max: number, fallback: number): number {
  const raw = params.get('seconds');
  if (raw === null) return Math.min(fallback, max);
  const seconds = /^[0-9]{1,6}$/.test(raw) ? Number(raw) : NaN;
  if (!(seconds >= 1 && seconds <= max)) {
    throw new ProfileError(400, msgInvalidSeconds(max));
  }
  return seconds;
}

/** The abort reason of a request cut short because its mount was closed (not because its client left). */
export class UnmountedError extends Error {
  constructor() {
    super('taskprof was unmounted (its middleware or server closed)');
  }
}


// Delta profiles between their two reads now, in the process.
let inWait = 0;

/** How many delta profiles are between their two reads now (any mount). */
export function deltasInWait(): number {
  return inWait;
}

/** Waits between the two reads of a delta profile; ends early (rejecting) when the client goes away or the mount closes. */
export function waitDelta(seconds: number, signal: AbortSignal): Promise<void> {
  inWait++;
  return new Promise<void>((resolve, reject) => {
    const aborted = () => {
      clearTimeout(timer);
      reject(signal.reason instanceof UnmountedError ? new ProfileError(503, MSG_DELTA_UNMOUNTED) : new ProfileError(503, MSG_DELTA_CLIENT_LEFT));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', aborted);
      resolve();
    }, seconds * 1000);
    if (signal.aborted) aborted();
    else signal.addEventListener('abort', aborted, { once: true });
  }).finally(() => {
    inWait--;
  });
}
