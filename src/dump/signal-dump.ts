// dumpOnSignal: the debug=2 listing written to stderr or a file on a signal,
// like Go's goroutine dump on SIGQUIT, for processes that cannot be reached
// over HTTP.
import { createWriteStream, renameSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { writeProfile } from '../profiles/write-profile.js';
import { ownWork, runWithLabels } from '../labels/labels.js';

const installed = new Map<NodeJS.Signals, { path: string | undefined; listener: () => void }>();

async function dump(signal: NodeJS.Signals, path: string | undefined): Promise<void> {
  const header = `taskprof: task dump on ${signal} at ${new Date().toISOString()}, pid ${process.pid}\n`;
  if (path === undefined) {
    process.stderr.write(header);
    await writeProfile('tasks', process.stderr, { debug: 2 });
    process.stderr.write('\n');
    return;
  }
  // Written beside the target and renamed over it: a reader never sees half a dump.
  const partial = `${path}.${process.pid}.partial`;
  const file = createWriteStream(partial);
  try {
    file.write(header);
    await writeProfile('tasks', file, { debug: 2 });
    file.end();
    await once(file, 'close');
    renameSync(partial, path);
  } catch (error) {
    file.destroy();
    rmSync(partial, { force: true });
    throw error;
  }
}

/** Installs (once per signal) the listener; a later call changes where it writes. */
export function installDumpOnSignal(signal: NodeJS.Signals, path: string | undefined): void {
  const existing = installed.get(signal);
  if (existing !== undefined) {
    existing.path = path;
    return;
  }
  let running = false;
  const listener = (): void => {
    if (running) return; // a second signal while the first dump is written adds nothing
    running = true;
    runWithLabels(ownWork, () => dump(signal, target.path))
      .catch((error: unknown) => {
        process.stderr.write(`taskprof: could not write the task dump on ${signal}: ${(error as Error).message}\n`);
      })
      .finally(() => {
        running = false;
      });
  };
  const target = { path, listener };
  installed.set(signal, target);
  process.on(signal, listener);
}

/** Removes every listener installDumpOnSignal added (the last mount closing). */
export function uninstallDumpOnSignal(): void {
  for (const [signal, { listener }] of installed) process.off(signal, listener);
  installed.clear();
}
