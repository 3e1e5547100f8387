// The task tracker: exact counts of pending asynchronous work (promises,
// timers, sockets, servers, requests...) and records of the tasks whose
// creation stack it captured, with their labels and creators. One session
// per configure(); the mechanisms per mode are in docs/design.md.
import { ownWork, runWithLabels, type LabelSet } from '../labels/labels.js';
import { RouteTally, type RouteCount } from '../labels/route-tally.js';
import type { StackEntry } from '../stacks/stack.js';
import { resourceHookSeesPromises } from './probes.js';
import { trackPromises, type PromiseTracking } from './promises.js';
import { trackTimers, TIMEOUT_TYPE, type TimerTracking } from './timers.js';
import { trackHandles, type HandleTracking } from './handles.js';
import { trackResources, type ResourceTracking } from './resource-hook.js';
import { Session, TypeCounts, type TrackedTask } from './session.js';
import type { CaptureWindow, StackBudgetStats } from './stack-budget.js';
import { PROMISE_TYPE, defaultTrackerSettings, type AbandonedSite, type TaskRecord, type TrackerSettings, type TrackingMode, type TypeCount } from './types.js';

// Creation sites of abandoned tasks kept at once; more are only counted.
const maxAbandonedSites = 500;
// How often promises still pending are handed to the FinalizationRegistry,
// and the stack budget refilled (every tenth time).
const maintenanceMs = 100;

/** Counts summed over earlier sessions, so that the cumulative counters never go down. */
interface Totals {
  created: number;
  completed: number;
  abandoned: number;
}

/** One consistent read of the counts, with the oldest record of each type: what a scrape reads. */
export interface TaskSnapshot {
  counts: TypeCount[];
  oldest: Map<string, number>;
  /** Live tasks by route (when asked for). */
  routes: RouteCount[];
  /** Records held: see recordCount. */
  records: number;
}

export class Tracker {
  #settings: TrackerSettings = { ...defaultTrackerSettings, mode: 'off' };
  #session: Session | undefined;
  #promises: PromiseTracking | undefined;
  #timers: TimerTracking | undefined;
  #handles: HandleTracking | undefined;
  #resources: ResourceTracking | undefined;
  #maintenance: NodeJS.Timeout | undefined;
  #nextId = 1;
  #totals = new Map<string, Totals>();
  #abandonedSites = new Map<string, AbandonedSite>();
  #abandonedUnsited = 0;
  #installProblem: string | undefined;
  /** Live tasks by HTTP route, kept as promises and handles come and go (timers are added when read). */
  readonly routes = new RouteTally();

  get settings(): Readonly<TrackerSettings> {
    return this.#settings;
  }

  get mode(): TrackingMode {
    return this.#settings.mode;
  }

  /** Whether labels are recorded (adapters skip entering a label scope otherwise). */
  get labelsEnabled(): boolean {
    return this.#session?.labelsOn ?? false;
  }

  /** Tasks not recorded because maxTasks records were held (this session). */
  get dropped(): number {
    return this.#session?.dropped ?? 0;
  }

  /** When the current mode took effect (Date.now()). */
  get startedAt(): number {
    return this.#session?.startedAt ?? 0;
  }

  /** Why part of the tracking could not be installed (another tool's accessor on Node's timers, say). */
  get installProblem(): string | undefined {
    return this.#installProblem;
  }

  /** Applies new settings; a change starts a fresh session (records and live counts). */
  configure(settings: TrackerSettings): void {
    const previous = this.#settings;
    this.#settings = { ...settings };
    if (previous.mode === settings.mode && previous.stackBudget === settings.stackBudget && this.#session?.settings.maxTasks === settings.maxTasks) return;
    this.#stop();
    if (settings.mode === 'off') return;
    runWithLabels(ownWork, () => this.#start(settings));
  }

  #start(settings: TrackerSettings): void {
    const session = new Session(settings, this.routes, () => this.#nextId++);
    this.#session = session;
    const full = settings.mode === 'full';
    this.#installProblem = undefined;
    this.#promises = trackPromises(session, {
      eagerFinalization: full,
      // Where `full`'s resource hook sees every promise (Node 20 and 22), its
      // before/after already carry labels into promise continuations.
      carryLabels: !(full && resourceHookSeesPromises()),
      onRecordEnd: (record, abandoned) => this.#endPromiseRecord(session, record, abandoned),
    });
    if (full) {
      this.#resources = trackResources(session, { carryLabels: true });
    } else {
      // Node's prototypes frozen (a hardened runtime), say: what cannot be
      // installed is left out whole, and said once; never a throw into the app.
      const problems: string[] = [];
      try {
        const timers = trackTimers(session);
        if (typeof timers === 'string') problems.push(`timers are not tracked: ${timers}`);
        else this.#timers = timers;
      } catch (error) {
        problems.push(`timers are not tracked: Node's Timeout prototype refused an accessor (${(error as Error).message})`);
      }
      const handles = trackHandles(session);
      if (handles.skipped.length > 0) problems.push(`not tracked, their prototype methods being read-only: ${handles.skipped.join(', ')}`);
      this.#handles = handles;
      if (problems.length > 0) {
        this.#installProblem = problems.join('; ');
        warnOnce(this.#installProblem);
      }
    }
    let ticks = 0;
    this.#maintenance = setInterval(() => {
      try {
        this.#promises?.tick();
        if (++ticks % 10 === 0) {
          session.budget.refill();
          if (session.stacks.wantsPrune) this.#pruneStacks(session);
        }
      } catch {
        // Never throw into the app's event loop.
      }
    }, maintenanceMs);
    this.#maintenance.unref();
  }

  #stop(): void {
    const session = this.#session;
    if (session === undefined) return;
    session.live = false;
    this.#promises?.stop();
    this.#timers?.stop();
    this.#handles?.stop();
    this.#resources?.stop();
    this.#promises = this.#timers = this.#handles = this.#resources = undefined;
    clearInterval(this.#maintenance);
    this.#maintenance = undefined;
    // What the session counted stays in the cumulative counters.
    for (const [type, counts] of this.#readCounts(session)) {
      const totals = this.#totalsOf(type);
      totals.created += counts.created;
      totals.completed += counts.completed;
      totals.abandoned += counts.abandoned;
    }
    this.#session = undefined;
    this.routes.clear();
  }

  #totalsOf(type: string): Totals {
    let totals = this.#totals.get(type);
    if (totals === undefined) {
      totals = { created: 0, completed: 0, abandoned: 0 };
      this.#totals.set(type, totals);
    }
    return totals;
  }

  #endPromiseRecord(session: Session, record: TrackedTask, abandoned: boolean): void {
    session.endRecord(record);
    if (abandoned) this.#noteAbandoned(record);
  }

  #noteAbandoned(record: TrackedTask): void {
    const key = `${record.type}\0${record.stack?.key ?? ''}\0${record.labels?.key ?? ''}`;
    let site = this.#abandonedSites.get(key);
    if (site === undefined) {
      if (this.#abandonedSites.size >= maxAbandonedSites) {
        this.#abandonedUnsited++;
        return;
      }
      site = { type: record.type, stack: record.stack, labels: record.labels, count: 0, lastAt: 0 };
      this.#abandonedSites.set(key, site);
    }
    site.count++;
    site.lastAt = Date.now();
  }

  // Live counts of the session by type: promises from their counters,
  // walked timers from Node's lists, the rest from their start/end events.
  #readCounts(session: Session, visitTimer?: (record: TrackedTask) => void): Map<string, TypeCounts & { withoutStack: number }> {
    this.#resources?.sweep();
    const out = new Map<string, TypeCounts & { withoutStack: number }>();
    for (const [type, counts] of session.counts) {
      const read = Object.assign(new TypeCounts(), counts, { withoutStack: 0 });
      if (type === PROMISE_TYPE) {
        read.live = counts.created - counts.completed - counts.abandoned;
      } else if (type === TIMEOUT_TYPE && this.#timers !== undefined && session === this.#session) {
        let stacked = 0;
        read.live = this.#timers.walk((record) => {
          if (record.stack !== undefined) stacked++;
          visitTimer?.(record);
        });
        // A timer ends without an event: what left Node's lists completed.
        // (A fired timer re-armed with refresh() comes back: a new task.)
        const completed = counts.created - read.live;
        if (completed >= counts.completed) counts.completed = completed;
        else counts.created += counts.completed - completed;
        read.created = counts.created;
        read.completed = counts.completed;
        read.withoutStack = read.live - stacked;
        out.set(type, read);
        continue;
      }
      read.withoutStack = Math.max(0, read.live - session.stackedRecordsOf(type));
      out.set(type, read);
    }
    return out;
  }

  /** Live, created, completed and abandoned tasks by type, exact now (timers are walked: O(live timers)). */
  typeCounts(): TypeCount[] {
    return this.snapshot().counts;
  }

  /**
   * The counts and each type's oldest record, and with `routes` the live
   * tasks by route: in one read, with one walk of the timers.
   */
  snapshot(routes = false): TaskSnapshot {
    const session = this.#session;
    const oldest = new Map<string, number>();
    const byType = new Map<string, TypeCount>();
    const timersByLabels = new Map<LabelSet, number>();
    let timerRecords = 0;
    if (session !== undefined) {
      for (const [type, records] of session.records) {
        for (const record of records.values()) {
          oldest.set(type, record.createdAt);
          break;
        }
      }
      const counts = this.#readCounts(session, (record) => {
        timerRecords++;
        const seen = oldest.get(record.type);
        if (seen === undefined || record.createdAt < seen) oldest.set(record.type, record.createdAt);
        if (routes && record.labels !== undefined) timersByLabels.set(record.labels, (timersByLabels.get(record.labels) ?? 0) + 1);
      });
      for (const [type, read] of counts) byType.set(type, { type, live: read.live, created: read.created, completed: read.completed, abandoned: read.abandoned, withoutStack: read.withoutStack });
    }
    for (const [type, totals] of this.#totals) {
      const count = byType.get(type) ?? { type, live: 0, created: 0, completed: 0, abandoned: 0, withoutStack: 0 };
      count.created += totals.created;
      count.completed += totals.completed;
      count.abandoned += totals.abandoned;
      byType.set(type, count);
    }
    const counts = [...byType.values()].filter((c) => c.live > 0 || c.created > 0).sort((a, b) => b.live - a.live || a.type.localeCompare(b.type));
    return { counts, oldest, routes: routes ? this.routes.counts(timersByLabels) : [], records: (session?.recordCount ?? 0) + timerRecords };
  }

  /** Live tasks in all, exact. */
  total(): number {
    let total = 0;
    for (const count of this.typeCounts()) total += count.live;
    return total;
  }

  /** Calls `fn` for every live record: promises and handles with a record, and every live timer. */
  forEachLive(fn: (record: TaskRecord) => void): void {
    const session = this.#session;
    if (session === undefined) return;
    this.#resources?.sweep();
    for (const records of session.records.values()) for (const record of records.values()) if (record.live) fn(record);
    this.#timers?.walk(fn);
  }

  /** Whether promises are linked into flows now: wherever stacks are captured (`full`, `sampled`). */
  get linksFlows(): boolean {
    return this.#session?.captureStacks ?? false;
  }

  /** Live promise records only (flows' counts need no others). */
  forEachLivePromise(fn: (record: TaskRecord) => void): void {
    const records = this.#session?.records.get(PROMISE_TYPE);
    if (records !== undefined) for (const record of records.values()) if (record.live) fn(record);
  }

  /** Live records, oldest first. */
  records(): TaskRecord[] {
    const all: TaskRecord[] = [];
    this.forEachLive((record) => all.push(record));
    return all.sort((a, b) => a.id - b.id);
  }

  /** Records held now: promises with a stack and handles (at most maxTasks), and live timers (held by the timers themselves). */
  get recordCount(): number {
    return this.snapshot().records;
  }

  /** Stack budget windows (class and second) whose live promises include some without a record (see tasks/groups.ts). */
  unrecordedBySample(): Iterable<CaptureWindow> {
    return this.#session?.budget.unrecordedWindows() ?? [];
  }

  /** What the stack budget has captured and refused; undefined when no stacks are captured (counts, off). */
  stackBudgetStats(): StackBudgetStats | undefined {
    const session = this.#session;
    return session?.captureStacks ? session.budget.stats() : undefined;
  }

  /** Id of the newest record; every task recorded later has a larger one. */
  get lastTaskId(): number {
    return this.#nextId - 1;
  }

  /** Abandoned promises (collected without ever settling) are counted in every mode that counts. */
  get abandonedCounted(): boolean {
    return this.#settings.mode !== 'off';
  }

  /** Abandoned tasks by creation site, most first; and how many were counted without a site (no stack, or too many sites). */
  abandonedSites(): { sites: AbandonedSite[]; unsited: number } {
    let abandoned = 0;
    for (const count of this.typeCounts()) abandoned += count.abandoned;
    const sites = [...this.#abandonedSites.values()].sort((a, b) => b.count - a.count);
    const sited = sites.reduce((n, s) => n + s.count, 0);
    return { sites, unsited: Math.max(this.#abandonedUnsited, abandoned - sited) };
  }

  #pruneStacks(session: Session): void {
    const used = new Set<StackEntry>();
    const mark = (record: TaskRecord): void => {
      if (record.stack !== undefined) used.add(record.stack);
      if (record.parentStack !== undefined) used.add(record.parentStack);
    };
    this.forEachLive(mark);
    for (const site of this.#abandonedSites.values()) if (site.stack !== undefined) used.add(site.stack);
    session.stacks.prune(used);
  }
}

const warned = new Set<string>();
function warnOnce(problem: string): void {
  if (warned.has(problem)) return;
  warned.add(problem);
  process.emitWarning(`taskprof: ${problem}. Everything else is tracked.`, { type: 'TaskprofWarning' });
}

/** The process-wide tracker: hooks are global, so there is one. */
export const tracker = new Tracker();
