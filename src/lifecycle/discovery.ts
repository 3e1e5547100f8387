// The discovery file `taskprof ps` reads, as gops's agent writes one: while
// taskprof is mounted, <runtime dir>/<pid>.json says which prefixes this
// process serves. One per process, rewritten as mounts come and go, removed
// when the last one closes (a crashed process leaves a file whose pid is
// gone, which ps ignores and removes). Opt out with `discovery: false`.
import { lstatSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** The per-user directory: $XDG_RUNTIME_DIR/taskprof, else <tmpdir>/taskprof-<uid>. */
export function discoveryDir(): string {
  return discoveryDirs()[0]!;
}

/** Where files may be, the writer's choice first: `taskprof ps` reads both (a service has no XDG_RUNTIME_DIR, a login shell has). */
export function discoveryDirs(): string[] {
  const fallback = path.join(tmpdir(), `taskprof-${process.getuid?.() ?? 'user'}`);
  const runtime = process.env.XDG_RUNTIME_DIR;
  return runtime !== undefined && runtime !== '' ? [path.join(runtime, 'taskprof'), fallback] : [fallback];
}

/** The directory, made if missing, when it is ours alone: a real directory, our uid, mode 0700 (a shared /tmp holds names anyone may take first). */
function ownDirectory(dir: string): boolean {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stat = lstatSync(dir);
  const uid = process.getuid?.();
  return stat.isDirectory() && (uid === undefined || stat.uid === uid) && (stat.mode & 0o077) === 0;
}

export interface DiscoveryEntry {
  pid: number;
  /** The mount prefixes, one per mount (`/debug`). */
  prefixes: string[];
  /** Whether a token or authorize guards the endpoints (a client then needs the token). */
  guarded: boolean;
  node: string;
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
    if (!ownDirectory(path.dirname(file))) return;
    const entry: DiscoveryEntry = {
      pid: process.pid,
      prefixes: [...new Set(mounts.map((m) => m.prefix))],
      guarded: mounts.some((m) => m.guarded),
      node: process.version,
      startedAt: new Date(Date.now() - process.uptime() * 1000).toISOString(),
    };
    // A new file (never through a link planted there), then renamed over the old one.
    const temporary = `${file}.${Math.random().toString(36).slice(2)}.tmp`;
    writeFileSync(temporary, JSON.stringify(entry) + '\n', { mode: 0o600, flag: 'wx' });
    renameSync(temporary, file);
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
