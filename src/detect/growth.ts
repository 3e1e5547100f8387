// The growth detector: samples the live count of every task group (creation
// site and labels) at an interval, keeps a window of those counts in fixed
// arrays, and flags the groups that keep growing. Node's counterpart of Go's
// goroutineleak profile, found by trend instead of by reachability.
import { tracker as defaultTracker, type Tracker } from '../tracker/tracker.js';
import type { TypeCount } from '../tracker/types.js';
import { listTasks, type TaskGroup } from '../tasks/groups.js';
import type { StackFrame } from '../stacks/stack.js';
import type { Labels } from '../labels/labels.js';

export interface LeakDetectionOptions {
  /** How often group counts are sampled, in ms. Default 10000. */
  intervalMs?: number;
  /** How far back samples are kept, in ms. Default 1800000 (30 min). */
  windowMs?: number;
  /** Samples a group must keep growing for before it is flagged. Default 12 (2 minutes at the default interval). */
  minSamples?: number;
  /** Tasks a group must have grown by before it is flagged. Default 10. */
  minGrowth?: number;
  /** Groups followed at once; more are counted, not followed. Default 500. */
  maxGroups?: number;
}

export type LeakDetectionSettings = Required<LeakDetectionOptions>;


// Kendall's tau over the growth span at or above which a series counts as
// steadily growing: 1 is a series that only rises; noise around a level gives
// about 0 (standard deviation 0.2 at 12 samples, less at more).
const trendThreshold = 0.7;

/** Where a group's tasks are: its frames (a flow's: where it is parked, then where it started), undefined without a stack. */
export interface GroupPlace {
  stack: StackFrame[] | undefined;
  /** A group of flows: how many of `stack`'s frames are where they are parked; 0 otherwise. */
  parkedFrames: number;
  /** A group of flows: what they wait for; '' otherwise. */
  waitsFor: string;
}

export interface Suspect extends GroupPlace {
  type: string;
  labels: Labels;
  /** Live tasks in the group at the last sample (an estimate where the stack budget sampled its stacks). */
  count: number;
  /** Whether `count` is an estimate (the group's stacks were sampled by the stack budget). */
  estimated: boolean;
  /** Tasks added per minute since growth began. */
  growthPerMinute: number;
  /** Date.now() of the last sample at the group's low point, where growth began. */
  since: number;
  /** Age of the group's oldest task at the last sample; NaN when unknown. */
  oldestAgeMs: number;
}

export interface TypeSeries {
  type: string;
  /** Oldest first, aligned with `times`. */
  values: number[];
}

interface Group extends GroupPlace {
  type: string;
  labels: Labels;
  /** Ring of counts, aligned with the detector's ring of times. */
  values: Float32Array;
  oldestCreatedAt: number;
  /** Absolute sample number at which the count was last above zero. */
  lastNonZero: number;
  estimated: boolean;
}

interface Tally extends GroupPlace {
  type: string;
  labels: Labels;
  count: number;
  oldestCreatedAt: number;
  estimated: boolean;
}

export class GrowthDetector {
  #tracker: Tracker;
  #settings: LeakDetectionSettings | undefined;
  #timer: NodeJS.Timeout | undefined;
  #capacity = 0;
  #times = new Float64Array(0);
  #samples = 0;
  #groups = new Map<string, Group>();
  #types = new Map<string, Float32Array>();
  #typeLastNonZero = new Map<string, number>();
  #suspects: Suspect[] = [];
  #unfollowed = 0;

  constructor(tracker: Tracker = defaultTracker) {
    this.#tracker = tracker;
  }

  get settings(): Readonly<LeakDetectionSettings> | undefined {
    return this.#settings;
  }

  get running(): boolean {
    return this.#timer !== undefined;
  }

  /** Samples taken that are still in the window. */
  get sampleCount(): number {
    return Math.min(this.#samples, this.#capacity);
  }

  /** Groups seen in the last sample that could not be followed (maxGroups reached). */
  get unfollowed(): number {
    return this.#unfollowed;
  }

  /** Starts sampling; new settings start a new window. */
  start(settings: LeakDetectionSettings): void {
    const same = this.#settings !== undefined && Object.entries(settings).every(([k, v]) => this.#settings![k as keyof LeakDetectionSettings] === v);
    if (same && this.running) return;
    this.stop();
    this.#settings = { ...settings };
    this.#capacity = Math.max(2, Math.ceil(settings.windowMs / settings.intervalMs));
    this.#times = new Float64Array(this.#capacity);
    this.#samples = 0;
    this.#groups.clear();
    this.#types.clear();
    this.#typeLastNonZero.clear();
    this.#suspects = [];
    this.#timer = setInterval(() => this.sample(), settings.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** The groups flagged at the last sample, fastest growing first. */
  suspects(): readonly Suspect[] {
    return this.#suspects;
  }

  /** Sample times, oldest first. */
  times(): number[] {
    return this.#chronological(this.#times, (v) => v);
  }

  /** Live tasks by type over the window, oldest first. */
  typeSeries(): TypeSeries[] {
    return [...this.#types].map(([type, values]) => ({ type, values: this.#chronological(values, (v) => v) }));
  }

  /** Takes one sample and re-evaluates; the timer calls it, and tests may too. */
  sample(now = Date.now()): void {
    const settings = this.#settings;
    if (settings === undefined) return;
    try {
      const slot = this.#samples % this.#capacity;
      this.#times[slot] = now;
      // Exact counts; groups estimated where the stack budget sampled them.
      const listing = listTasks(this.#tracker, { detail: false });
      this.#sampleGroups(slot, settings, listing.groups);
      this.#sampleTypes(slot, listing.counts);
      this.#samples++;
      this.#suspects = this.#evaluate(now, settings);
    } catch (error) {
      // Never throw into the app's event loop; say once why detection stopped.
      this.stop();
      console.error('taskprof: the growth detector stopped after an internal error:', error);
    }
  }

  #tally(groups: readonly TaskGroup[]): Map<string, Tally> {
    const tallies = new Map<string, Tally>();
    for (const group of groups) {
      const place = { stack: group.entry === undefined ? undefined : group.stack, parkedFrames: group.parkedFrames, waitsFor: group.waitsFor };
      tallies.set(group.key, { type: group.type, labels: group.labels, ...place, count: group.count, oldestCreatedAt: group.oldestCreatedAt, estimated: group.estimated });
    }
    return tallies;
  }

  #sampleGroups(slot: number, settings: LeakDetectionSettings, groups: readonly TaskGroup[]): void {
    const tallies = this.#tally(groups);
    for (const group of this.#groups.values()) group.values[slot] = 0;
    this.#unfollowed = 0;
    for (const [key, tally] of tallies) {
      let group = this.#groups.get(key);
      if (group === undefined) {
        if (this.#groups.size >= settings.maxGroups && !this.#evictIdleGroup(tallies) && !this.#evictSmallerGroup(tallies, tally.count)) {
          this.#unfollowed++;
          continue;
        }
        group = { type: tally.type, labels: tally.labels, stack: tally.stack, parkedFrames: tally.parkedFrames, waitsFor: tally.waitsFor, values: new Float32Array(this.#capacity), oldestCreatedAt: tally.oldestCreatedAt, lastNonZero: 0, estimated: false };
        this.#groups.set(key, group);
      }
      group.values[slot] = tally.count;
      group.oldestCreatedAt = tally.oldestCreatedAt;
      group.estimated = tally.estimated;
      if (tally.count > 0) group.lastNonZero = this.#samples;
    }
    // A group at zero for a whole window is forgotten.
    for (const [key, group] of this.#groups) {
      if (this.#samples - group.lastNonZero >= this.#capacity) this.#groups.delete(key);
    }
  }

  // Makes room by forgetting the group that has been at zero longest (never
  // one with tasks in this sample, visited or not yet).
  #evictIdleGroup(tallies: Map<string, Tally>): boolean {
    let idleKey: string | undefined;
    let idleSince = Infinity;
    for (const [key, group] of this.#groups) {
      if (!tallies.has(key) && group.lastNonZero < idleSince) {
        idleSince = group.lastNonZero;
        idleKey = key;
      }
    }
    if (idleKey === undefined) return false;
    this.#groups.delete(idleKey);
    return true;
  }

  // Failing that, forgets the followed group with the fewest tasks now, if it
  // has fewer than the newcomer: a leak outgrows the small steady groups that
  // filled the limit first, and gets followed.
  #evictSmallerGroup(tallies: Map<string, Tally>, count: number): boolean {
    let smallestKey: string | undefined;
    let smallest = count;
    for (const key of this.#groups.keys()) {
      const now = tallies.get(key)?.count ?? 0;
      if (now < smallest) {
        smallest = now;
        smallestKey = key;
      }
    }
    if (smallestKey === undefined) return false;
    this.#groups.delete(smallestKey);
    return true;
  }

  #sampleTypes(slot: number, types: readonly TypeCount[]): void {
    for (const values of this.#types.values()) values[slot] = 0;
    for (const count of types) {
      let values = this.#types.get(count.type);
      if (values === undefined) {
        values = new Float32Array(this.#capacity);
        this.#types.set(count.type, values);
      }
      values[slot] = count.live;
      if (count.live > 0) this.#typeLastNonZero.set(count.type, this.#samples);
    }
    for (const [type, last] of this.#typeLastNonZero) {
      if (this.#samples - last >= this.#capacity) {
        this.#types.delete(type);
        this.#typeLastNonZero.delete(type);
      }
    }
  }

  #chronological<T>(ring: Float32Array | Float64Array, map: (v: number) => T): T[] {
    const n = Math.min(this.#samples, this.#capacity);
    const first = this.#samples - n;
    const out: T[] = [];
    for (let i = first; i < this.#samples; i++) out.push(map(ring[i % this.#capacity]!));
    return out;
  }

  #evaluate(now: number, settings: LeakDetectionSettings): Suspect[] {
    const n = Math.min(this.#samples, this.#capacity);
    if (n < settings.minSamples) return [];
    const first = this.#samples - n;
    const times = this.#chronological(this.#times, (v) => v);
    // Tasks of a leak outlive the growth they make up; short-lived ones (requests in flight) do not.
    const minAgeMs = (settings.minSamples / 2) * settings.intervalMs;
    const suspects: Suspect[] = [];
    const series = new Float64Array(n);
    for (const group of this.#groups.values()) {
      const current = group.values[(this.#samples - 1) % this.#capacity]!;
      if (current < settings.minGrowth) continue;
      for (let i = 0; i < n; i++) series[i] = group.values[(first + i) % this.#capacity]!;
      // Growth starts at the last time the count was at its lowest.
      let start = 0;
      for (let i = 1; i < n; i++) if (series[i]! <= series[start]!) start = i;
      const span = n - start;
      if (span < settings.minSamples) continue;
      const growth = current - series[start]!;
      if (growth < settings.minGrowth) continue;
      if (trendOf(series, start, n) < trendThreshold) continue;
      const oldestAgeMs = Number.isNaN(group.oldestCreatedAt) ? NaN : now - group.oldestCreatedAt;
      if (oldestAgeMs < minAgeMs) continue;
      const since = times[start]!;
      suspects.push({
        type: group.type,
        labels: group.labels,
        stack: group.stack,
        parkedFrames: group.parkedFrames,
        waitsFor: group.waitsFor,
        count: current,
        estimated: group.estimated,
        growthPerMinute: (growth * 60_000) / Math.max(1, now - since),
        since,
        oldestAgeMs,
      });
    }
    return suspects.sort((a, b) => b.growthPerMinute - a.growthPerMinute);
  }
}

// Tau is O(n²): over a longer span it is taken on every k-th sample, which
// keeps the trend and bounds the work per group.
const maxTrendPoints = 90;

function trendOf(series: Float64Array, from: number, to: number): number {
  const n = to - from;
  if (n <= maxTrendPoints) return kendallTau(series, from, to);
  const step = n / maxTrendPoints;
  const points = new Float64Array(maxTrendPoints);
  // The last sample is always kept: it is the count now.
  for (let i = 0; i < maxTrendPoints; i++) points[maxTrendPoints - 1 - i] = series[to - 1 - Math.floor(i * step)]!;
  return kendallTau(points, 0, maxTrendPoints);
}

/** Kendall's tau-a of series[from..to): concordant minus discordant pairs over all pairs (ties count as neither). */
export function kendallTau(series: ArrayLike<number>, from: number, to: number): number {
  const n = to - from;
  if (n < 2) return 0;
  let s = 0;
  for (let i = from; i < to - 1; i++) {
    const x = series[i]!;
    for (let j = i + 1; j < to; j++) s += Math.sign(series[j]! - x);
  }
  return s / ((n * (n - 1)) / 2);
}

/** Most samples a window may hold (8 hours at the default interval): bounds memory (4 bytes per sample per group) and work. */

/** The process-wide detector, started by the first mount. */
export const growthDetector = new GrowthDetector();
