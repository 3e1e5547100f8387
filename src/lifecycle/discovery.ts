// The discovery file `taskprof ps` reads, as gops's agent writes one: while
// taskprof is mounted, <runtime dir>/<pid>.json says which prefixes this
// process serves. One per process, rewritten as mounts come and go, removed
// when the last one closes (a crashed process leaves a file whose pid is
// gone, which ps ignores and removes). Opt out with `discovery: false`.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** The per-user directory: $XDG_RUNTIME_DIR/taskprof, else <tmpdir>/taskprof-<uid>. */
export function discoveryDir(): string {
  const runtime = process.env.XDG_RUNTIME_DIR;
  if (runtime !== undefined && runtime !== '') return path.join(runtime, 'taskprof');
  return path.join(tmpdir(), `taskprof-${process.getuid?.() ?? 'user'}`);
}

export interface DiscoveryEntry {
  pid: number;
  /** The mount prefixes, one per mount (`/debug`). */
  prefixes: string[];
  /** Whether a token or authorize guards the endpoints (a client then needs the token). */
  guarded: boolean;
  node: string;
  argv: string[];
  startedAt: string;
}

const mounts: Array<{ prefix: string; guarded: boolean }> = [];

function write(): void {
  const file = path.join(discoveryDir(), `${process.pid}.json`);
  try {
    if (mounts.length === 0) {
      rmSync(file, { force: true });
      return;
    }
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const entry: DiscoveryEntry = {
      pid: process.pid,
      prefixes: [...new Set(mounts.map((m) => m.prefix))],
      guarded: mounts.some((m) => m.guarded),
      node: process.version,
      argv: process.argv,
      startedAt: new Date(Date.now() - process.uptime() * 1000).toISOString(),
    };
    writeFileSync(file, JSON.stringify(entry) + '\n', { mode: 0o600 });
  } catch {
    // A read-only or missing runtime directory costs ps its listing, never the app.
  }
}

/** Lists a mount in the discovery file; the function returned takes it out. */
export function announceMount(prefix: string, guarded: boolean): () => void {
  const mount = { prefix, guarded };
  mounts.push(mount);
  write();
  let done = false;
  return () => {
    if (done) return;
    done = true;
    mounts.splice(mounts.indexOf(mount), 1);
    write();
  };
}
