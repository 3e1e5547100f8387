// The shape every built-in profile has; the index page, the counts and the
// routes all come from the registry of these.
import type { Readable } from 'node:stream';

export type ResponseBody = string | Uint8Array | Readable | undefined;

export interface ProfileQuery {
  /** The `debug` parameter, already checked against `debugLevels`. */
  debug: number;
  /** `format=json` or `Accept: application/json`. */
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
  /** Whether `format=json` is available. */
  readonly json: boolean;
  /** Shown in the index table; undefined for profiles that have no count. */
  count(): number | undefined;
  write(query: ProfileQuery): ProfileOutput | Promise<ProfileOutput>;
}
