// `taskprof ps`: Node processes on this host, those with taskprof mounted
// marked, with the URLs of their debug endpoints. A mounted taskprof writes
// a discovery file (lifecycle/discovery.ts); its ports come from /proc, and
// each candidate URL is asked for the index page to confirm it.
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { discoveryDirs, type DiscoveryEntry } from '../lifecycle/discovery.js';
import { listeningSockets, nodePids, processInfo } from './procfs.js';
import { get } from './target.js';

export interface PsRow {
  pid: number;
  uid: number;
  command: string;
  /** Whether a discovery file says taskprof is mounted. */
  taskprof: boolean;
  urls: string[];
  /** A token or authorize guards the endpoints. */
  guarded: boolean;
}

function isEntry(value: unknown): value is DiscoveryEntry {
  const entry = value as DiscoveryEntry;
  return typeof entry === 'object' && entry !== null && Number.isSafeInteger(entry.pid) && Array.isArray(entry.prefixes) && entry.prefixes.every((p) => typeof p === 'string' && p.startsWith('/'));
}

/** Both places an app may have written to: with and without XDG_RUNTIME_DIR (a service has none, a login shell has one). */
function discoveryEntries(): Map<number, DiscoveryEntry> {
  const entries = new Map<number, DiscoveryEntry>();
  for (const dir of discoveryDirs()) {
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      if (!/^\d+\.json$/.test(name)) continue;
      const file = path.join(dir, name);
      try {
        const entry: unknown = JSON.parse(readFileSync(file, 'utf8'));
        if (!isEntry(entry)) continue;
        // A process that died without unmounting leaves its file: remove it.
        if (processInfo(entry.pid) === undefined) rmSync(file, { force: true });
        else entries.set(entry.pid, entry);
      } catch {
        // Half-written or foreign: skip.
      }
    }
  }
  return entries;
}

/** The status the index page answers with under that prefix URL (0: nothing, or not HTTP). */
function probe(base: string): Promise<number> {
  return get({ base, token: undefined }, '/pprof/', 1000).then(
    (res) => res.status,
    () => 0,
  );
}

export async function listProcesses(): Promise<PsRow[]> {
  const entries = discoveryEntries();
  const rows: PsRow[] = [];
  for (const pid of nodePids()) {
    if (pid === process.pid) continue;
    const info = processInfo(pid);
    if (info === undefined) continue;
    const entry = entries.get(pid);
    const urls: string[] = [];
    if (entry !== undefined) {
      // Ports reachable on 127.0.0.1 only; each candidate asked at once.
      const ports = [...new Set(listeningSockets(pid).filter((s) => s.loopback || s.wildcard).map((s) => s.port))];
      const candidates = ports.flatMap((port) => entry.prefixes.map((prefix) => `http://127.0.0.1:${port}${prefix}`));
      const statuses = await Promise.all(candidates.map(probe));
      // 200 (open), or 401/403 (a token guards it): taskprof is there. Another server answers 404.
      candidates.forEach((base, i) => {
        if (statuses[i] === 200 || statuses[i] === 401 || statuses[i] === 403) urls.push(base);
      });
    }
    rows.push({ pid, uid: info.uid, command: info.argv.join(' '), taskprof: entry !== undefined, urls, guarded: entry?.guarded ?? false });
  }
  return rows;
}

/** The table; lines are cut to `width` (the terminal's, when there is one). */
export function psText(rows: readonly PsRow[], width = process.stdout.isTTY ? process.stdout.columns : Infinity): string {
  let out = `${'PID'.padStart(7)}  ${'TASKPROF'.padEnd(9)} ${'URL'.padEnd(38)} COMMAND\n`;
  for (const row of rows) {
    const mark = row.taskprof ? (row.guarded ? 'yes+token' : 'yes') : '-';
    const urls = row.urls.length > 0 ? row.urls : [row.taskprof ? '(no listening port found)' : ''];
    out += `${String(row.pid).padStart(7)}  ${mark.padEnd(9)} ${urls[0]!.padEnd(38)} ${row.command}`.slice(0, width) + '\n';
    for (const more of urls.slice(1)) out += `${''.padStart(7)}  ${''.padEnd(9)} ${more}\n`;
  }
  return out;
}
