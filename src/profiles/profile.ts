// The shape every built-in profile has; the index page, the counts and the
// routes all come from the registry of these.
import type { Readable } from 'node:stream';

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
}

export interface ProfileOutput {
  contentType: string;
  body: ResponseBody;
  /** For `Content-Disposition: attachment`. */
  filename?: string;
}

export interface ProfileDefinition {
  readonly name: string;
  /** Other names it answers to (Go's names, for scrapers configured for Go). */
  readonly aliases: readonly string[];
  /** One line for the index page. */
  readonly description: string;
  /** Accepted values of `debug`; the first is the default. */
  readonly debugLevels: readonly number[];
  /** Accepted values of `format` besides the default (pprof or text). */
  readonly formats: readonly string[];
  /** Shown in the index table; profiles without a count (CPU) are only described. */
  count?(): number;
  /** May throw a ProfileError for a bad parameter or a busy profiler. */
  write(query: ProfileQuery): ProfileOutput | Promise<ProfileOutput>;
}

/** A refusal with its status and message, answered through the handler's serveError. */
export class ProfileError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}
