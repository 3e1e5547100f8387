// What `taskprof top` shows, from the JSON endpoints: the totals over time
// (sparklines), the groups with their growth per minute, the suspects, the
// routes. Rendering is in top-screen.ts; this holds no terminal state.
import type { Target } from './target.js';
import { getJson } from './target.js';
import { formatAge } from '../format/text.js';

// Ages as the listings show them.
export { formatAge };

export interface FrameJson {
  functionName: string;
  file: string;
  line: number;
  column: number;
}

export interface GroupJson {
  count: number;
  estimated: boolean;
  type: string;
  detail: string;
  labels: Record<string, string>;
  oldestAgeMs: number;
  stack: FrameJson[] | null;
  flow?: { waitsFor: string; waitingMs: number; parkedAt: FrameJson[]; startedAt: FrameJson[] };
}

export interface ListingJson {
  total: number;
  byType: Record<string, number>;
  tracking: string;
  promises?: { pending: number; flows: number; estimated: boolean };
  groups: GroupJson[];
}

export interface SuspectJson {
  type: string;
  count: number;
  growthPerMinute: number;
  labels: Record<string, string>;
  stack: FrameJson[];
}

export interface TaskJson {
  id: number;
  type: string;
  detail: string;
  ageMs: number;
  labels: Record<string, string>;
  stack: FrameJson[] | null;
  flow?: { parkedAt: FrameJson[]; startedAt: FrameJson[] };
}

export type SortKey = 'count' | 'growth' | 'age';
export const sortKeys: readonly SortKey[] = ['count', 'growth', 'age'];

export interface Row {
  key: string;
  group: GroupJson;
  count: number;
  /** Tasks per minute over the last minute (or the detector's figure for a suspect); undefined until two reads span 5 s. */
  growthPerMinute: number | undefined;
  route: string;
  topFrame: string;
  suspect: boolean;
}

export function groupKey(type: string, stack: readonly FrameJson[] | null, labels: Record<string, string>): string {
  return `${type}\n${JSON.stringify(stack ?? [])}\n${JSON.stringify(labels)}`;
}

// Files under the directory top runs in are shown relative to it, as the listings show the app's.
const cwd = process.cwd() + '/';

export function frameText(frame: FrameJson | undefined): string {
  if (frame === undefined) return '(no stack: over the stack budget)';
  const file = frame.file.startsWith(cwd) ? frame.file.slice(cwd.length) : frame.file;
  return `${file === '' ? frame.functionName : `${frame.functionName} ${file}:${frame.line}:${frame.column}`}`;
}

function routeOf(labels: Record<string, string>): string {
  return labels.route === undefined ? '' : `${labels.method ?? ''} ${labels.route}`.trim();
}

const blocks = '▁▂▃▄▅▆▇█';

/** The last `width` values as a sparkline, scaled from 0 to their maximum. */
export function sparkline(values: readonly number[], width: number): string {
  const shown = values.slice(-width);
  const max = Math.max(1, ...shown);
  return shown.map((v) => blocks[Math.min(blocks.length - 1, Math.floor((v / max) * (blocks.length - 1)))]).join('');
}

interface Reading {
  at: number;
  total: number;
  byType: Record<string, number>;
}

// History kept: totals for the sparklines (10 minutes at 1 s), group counts for a minute's growth.
const maxReadings = 600;
const growthWindowMs = 60_000;
const minGrowthSpanMs = 5_000;

export class TopModel {
  readings: Reading[] = [];
  listing: ListingJson | undefined;
  suspects: SuspectJson[] = [];
  error: string | undefined;
  readonly #counts = new Map<string, Array<{ at: number; count: number }>>();

  constructor(readonly target: Target) {}

  /** One refresh: the listing and the suspects (a detector switched off gives none). */
  async refresh(now = Date.now()): Promise<void> {
    try {
      const [listing, leaks] = await Promise.all([
        getJson<ListingJson>(this.target, '/pprof/tasks?debug=1&format=json'),
        getJson<{ suspects: SuspectJson[] }>(this.target, '/pprof/leaks?format=json').catch(() => ({ suspects: [] })),
      ]);
      this.update(listing, leaks.suspects, now);
      this.error = undefined;
    } catch (error) {
      this.error = (error as Error).message;
    }
  }

  update(listing: ListingJson, suspects: SuspectJson[], now: number): void {
    if (!Array.isArray(listing?.groups) || typeof listing.byType !== 'object' || listing.byType === null || typeof listing.total !== 'number') {
      throw new Error('the listing is not taskprof\'s tasks JSON (is the URL a taskprof prefix?)');
    }
    if (!Array.isArray(suspects)) suspects = [];
    this.listing = listing;
    this.suspects = suspects;
    this.readings.push({ at: now, total: listing.total, byType: listing.byType });
    if (this.readings.length > maxReadings) this.readings.shift();
    const seen = new Set<string>();
    for (const group of listing.groups) {
      const key = groupKey(group.type, group.stack, group.labels);
      seen.add(key);
      let counts = this.#counts.get(key);
      if (counts === undefined) this.#counts.set(key, (counts = []));
      counts.push({ at: now, count: group.count });
      while (counts.length > 2 && now - counts[1]!.at >= growthWindowMs) counts.shift();
    }
    for (const key of this.#counts.keys()) if (!seen.has(key)) this.#counts.delete(key);
  }

  #growth(key: string): number | undefined {
    const counts = this.#counts.get(key);
    if (counts === undefined || counts.length < 2) return undefined;
    const first = counts[0]!;
    const last = counts[counts.length - 1]!;
    const span = last.at - first.at;
    return span < minGrowthSpanMs ? undefined : ((last.count - first.count) / span) * 60_000;
  }

  rows(sort: SortKey, filter: string): Row[] {
    const suspects = new Map(this.suspects.map((s) => [groupKey(s.type, s.stack, s.labels), s]));
    const needle = filter.toLowerCase();
    const rows = (this.listing?.groups ?? []).map((group): Row => {
      const key = groupKey(group.type, group.stack, group.labels);
      const suspect = suspects.get(key);
      const top = group.flow?.parkedAt[0] ?? group.stack?.[0];
      return {
        key,
        group,
        count: group.count,
        growthPerMinute: suspect?.growthPerMinute ?? this.#growth(key),
        route: routeOf(group.labels),
        topFrame: frameText(top),
        suspect: suspect !== undefined,
      };
    });
    const shown = needle === '' ? rows : rows.filter((r) => `${r.group.type} ${r.group.detail} ${r.route} ${JSON.stringify(r.group.stack)}`.toLowerCase().includes(needle));
    const by: Record<SortKey, (r: Row) => number> = {
      count: (r) => r.count,
      growth: (r) => r.growthPerMinute ?? -Infinity,
      age: (r) => r.group.oldestAgeMs,
    };
    return shown.sort((a, b) => by[sort](b) - by[sort](a) || b.count - a.count);
  }

  /** Live tasks by route (from the groups' route labels), largest first. */
  routes(): Array<{ route: string; count: number }> {
    const byRoute = new Map<string, number>();
    for (const group of this.listing?.groups ?? []) {
      const route = routeOf(group.labels) || '(no route)';
      byRoute.set(route, (byRoute.get(route) ?? 0) + group.count);
    }
    return [...byRoute].map(([route, count]) => ({ route, count })).sort((a, b) => b.count - a.count);
  }

  totals(): number[] {
    return this.readings.map((r) => r.total);
  }

  typeSeries(type: string): number[] {
    return this.readings.map((r) => r.byType[type] ?? 0);
  }

  /** The tasks of one group, from the debug=2 JSON (at most `limit`). */
  async tasksOf(row: Row, limit: number): Promise<TaskJson[]> {
    const dump = await getJson<{ tasks: TaskJson[] }>(this.target, '/pprof/tasks?debug=2&format=json', 60_000);
    // A flow group's stack is its parked-at then started-at frames; a group without stacks has [] where a task has null.
    const stack = JSON.stringify(row.group.stack ?? []);
    const labels = JSON.stringify(row.group.labels);
    const stackOf = (t: TaskJson): string => JSON.stringify(t.flow === undefined ? (t.stack ?? []) : [...t.flow.parkedAt, ...t.flow.startedAt]);
    return dump.tasks.filter((t) => t.type === row.group.type && stackOf(t) === stack && JSON.stringify(t.labels) === labels).slice(0, limit);
  }
}

function pad(text: string, width: number, right = false): string {
  if (text.length >= width) return text.slice(0, width);
  return right ? text.padStart(width) : text.padEnd(width);
}

export function growthText(perMinute: number | undefined): string {
  if (perMinute === undefined) return '';
  const rounded = Math.abs(perMinute) >= 10 ? perMinute.toFixed(0) : perMinute.toFixed(1);
  return perMinute > 0 ? `+${rounded}` : rounded;
}

export const columns = { count: 7, growth: 8, age: 8, type: 20, route: 22 };

/** One group as a table line (no colour). */
export function rowText(row: Row, width: number): string {
  const c = columns;
  const line =
    pad(String(row.count), c.count, true) +
    ' ' +
    pad(growthText(row.growthPerMinute), c.growth, true) +
    ' ' +
    pad(formatAge(row.group.oldestAgeMs), c.age, true) +
    '  ' +
    pad(row.group.type, c.type) +
    ' ' +
    pad(row.route, c.route) +
    ' ' +
    row.topFrame +
    (row.suspect ? '  << leak suspect' : '');
  return line.slice(0, width);
}

export function headerRow(width: number): string {
  const c = columns;
  return (pad('COUNT', c.count, true) + ' ' + pad('+/MIN', c.growth, true) + ' ' + pad('OLDEST', c.age, true) + '  ' + pad('TYPE', c.type) + ' ' + pad('ROUTE', c.route) + ' TOP FRAME').slice(0, width);
}

/** The totals line: all tasks and each type, with sparklines of what the model has seen. */
export function totalsLines(model: TopModel, width: number, sparkWidth: number): string[] {
  const listing = model.listing;
  if (listing === undefined) return [model.error === undefined ? 'waiting for the first reading...' : `error: ${model.error}`];
  const lines = [`total ${listing.total}  ${sparkline(model.totals(), sparkWidth)}` + (listing.promises === undefined ? '' : `   (${listing.promises.pending} pending promises in ${listing.promises.flows} flows${listing.promises.estimated ? ', estimated' : ''})`)];
  const types = Object.entries(listing.byType).sort((a, b) => b[1] - a[1]);
  for (const [type, count] of types) lines.push(`  ${pad(type, 22)} ${pad(String(count), 7, true)}  ${sparkline(model.typeSeries(type), sparkWidth)}`);
  return lines.map((l) => l.slice(0, width));
}

/** One plain snapshot: what `top` prints when stdout is not a colour terminal. */
export function plainSnapshot(model: TopModel, sort: SortKey, width = 160, maxRows = 40): string {
  const out = [`taskprof top ${model.target.base}  (${model.listing?.tracking ?? '?'} tracking; one snapshot: stdout is not a colour terminal)`, ...totalsLines(model, width, 20), ''];
  if (model.listing !== undefined) {
    out.push(headerRow(width));
    for (const row of model.rows(sort, '').slice(0, maxRows)) out.push(rowText(row, width));
  }
  return out.join('\n') + '\n';
}
