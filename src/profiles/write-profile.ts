// writeProfile: a profile written to a stream from code, Go's
// pprof.Lookup(name).WriteTo. Used by the public API and the signal dump.
import type { Writable } from 'node:stream';
import { Readable } from 'node:stream';
import { once } from 'node:events';
import { tracker } from '../tracker/tracker.js';
import { ownWork, runWithLabels } from '../labels/labels.js';
import { createTasksProfile } from './tasks.js';

export interface WriteProfileOptions {
  /** 0: gzipped pprof, 1: grouped text, 2: every task. Default 0. */
  debug?: 0 | 1 | 2;
  /** JSON instead of text (debug 1 and 2; with 0 it gives the debug=1 JSON). */
  json?: boolean;
}

/**
 * Writes a profile to `writable` without ending it (Go's
 * pprof.Lookup(name).WriteTo). The only profile so far is `tasks`.
 */
export function writeProfile(name: 'tasks', writable: Writable, options: WriteProfileOptions = {}): Promise<void> {
  // taskprof's own work: its promises are not the app's tasks.
  return runWithLabels(ownWork, () => writeTasks(name, writable, options));
}

async function writeTasks(name: 'tasks', writable: Writable, options: WriteProfileOptions): Promise<void> {
  if (name !== 'tasks') throw new TypeError(`writeProfile: unknown profile ${JSON.stringify(name)}; known: tasks`);
  const debug = options.debug ?? 0;
  if (debug !== 0 && debug !== 1 && debug !== 2) throw new TypeError('writeProfile: debug must be 0, 1 or 2');
  const output = await createTasksProfile(tracker).write({
    debug,
    format: options.json === true ? 'json' : undefined,
    json: options.json === true,
    params: new URLSearchParams(),
    signal: new AbortController().signal,
    deltaSeconds: undefined,
    head: false,
    gated: async (work) => work(),
  });
  const chunks = output.body instanceof Readable ? output.body : [output.body ?? ''];
  for await (const chunk of chunks) {
    if (!writable.write(chunk)) await once(writable, 'drain');
  }
}
