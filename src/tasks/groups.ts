// The data behind every tasks listing: live tasks grouped by (type, detail,
// stack, labels), with counts that add up to each type's exact total. A
// group is exact when every task in it has its stack; where the stack budget
// sampled a class, its records stand for tasks of the same type (and detail,
// where that is known) that got no stack, and the groups they are placed in
// are estimated (marked so). Tasks no estimate can place are listed by type
// (and detail) as having no stack.
import type { Tracker } from '../tracker/tracker.js';
import { PROMISE_TYPE, type TaskRecord, type TypeCount } from '../tracker/types.js';
import { framesOf, type StackEntry, type StackFrame } from '../stacks/stack.js';
import { emptyLabels, type Labels } from '../labels/labels.js';
import { describeTask } from './describe.js';
import { FlowIndex } from './flows.js';
import type { CaptureClass, CaptureWindow } from '../tracker/stack-budget.js';

export interface TaskGroup {
  /** Identifies the group across listings (type, detail, stack and labels). */
  key: string;
  /** Live tasks in the group: exact unless `estimated`. */
  count: number;
  /** Tasks of the group that have a record. */
  recorded: number;
  /** The count includes tasks without a stack, attributed from sampled records. */
  estimated: boolean;
  type: string;
  detail: string;
  labels: Labels;
  oldestCreatedAt: number;
  stack: StackFrame[];
  /** The interned stack, for callers that follow groups over time; undefined without one. */
  entry: StackEntry | undefined;
  /** This group stands for tasks of its type that have no record at all. */
  unrecorded: boolean;
  /** A group of flows: how many of `stack`'s frames are where they are parked (the rest: where they started). */
  parkedFrames: number;
  /** A group of flows: what they wait for. */
  waitsFor: string;
  /** A group of flows: Date.now() when its longest-waiting flow parked. */
  waitingSince: number | undefined;
}

export interface TaskListing {
  /** Live tasks in all (a flow of promises is one), exact unless stack-budget estimates fold promises into flows. */
  total: number;
  /** Pending promises (exact), and the flows they make up: exact, unless `estimated` (the stack budget sampled promises, so links too). */
  promises: { pending: number; flows: number; estimated: boolean };
  counts: TypeCount[];
  groups: TaskGroup[];
  /** Live tasks whose stack was not captured: placed in estimated groups, or listed as "no stack". */
  withoutStack: number;
  /** Groups whose count is an estimate. */
  estimatedGroups: number;
}

interface Accumulator extends TaskGroup {
  labelsKey: string;
  /** Expected tasks without a stack that the group's sampled records stand for. */
  extra: number;
  /** The same, by the stack budget window (class and second) the records were sampled in. */
  extraIn: Map<CaptureWindow, number>;
  /** Tasks the group's records stand for in all (their weights), by the class they were sampled in. */
  weightIn: Map<CaptureClass, number>;
}

export interface GroupOptions {
  /** Include the state detail (interval period, address) in the grouping; the growth detector does not. */
  detail: boolean;
}

/**
 * Promise records a flow folds in (headed elsewhere), and what the sampled
 * ones stood for (their weights) by class, beside the heads': that share of
 * a class's promises without a record is folded too.
 */
interface FoldShares {
  innerRecorded: number;
  innerWeightIn: Map<CaptureClass, number>;
  headWeightIn: Map<CaptureClass, number>;
}

function foldShares(flows: FlowIndex): FoldShares {
  const shares: FoldShares = { innerRecorded: 0, innerWeightIn: new Map(), headWeightIn: new Map() };
  for (const record of flows.promises) {
    const inner = flows.isInner(record);
    if (inner) shares.innerRecorded++;
    const cls = record.sampledIn?.captureClass;
    if (cls === undefined) continue;
    const weights = inner ? shares.innerWeightIn : shares.headWeightIn;
    weights.set(cls, (weights.get(cls) ?? 0) + record.weight);
  }
  return shares;
}

// A window's promises without a record folded into flows: its class's sampled share (an estimate, like every count placed here).
function foldedOf(window: CaptureWindow, shares: FoldShares): number {
  if (window.type !== PROMISE_TYPE) return 0;
  const inner = shares.innerWeightIn.get(window.captureClass) ?? 0;
  const sampled = inner + (shares.headWeightIn.get(window.captureClass) ?? 0);
  return sampled === 0 ? 0 : Math.round((window.unrecorded * inner) / sampled);
}

/** Pending promises a flow folds in (headed elsewhere): the records' exactly, and past the stack budget those without a record by estimate. */
export function foldedPromises(tracker: Tracker, flows: FlowIndex): number {
  const shares = foldShares(flows);
  let folded = shares.innerRecorded;
  for (const window of tracker.unrecordedBySample()) folded += foldedOf(window, shares);
  return folded;
}

/** Live flows among `pending` promises (the tracker's exact count), as listTasks counts them, without grouping anything (a metrics scrape's). */
export function countFlows(tracker: Tracker, pending: number): number {
  const records: TaskRecord[] = [];
  tracker.forEachLivePromise((record: TaskRecord) => records.push(record));
  return pending - Math.min(pending, foldedPromises(tracker, new FlowIndex(records)));
}

/** Live tasks grouped, largest group first; counts add up to the exact totals. */
export function listTasks(tracker: Tracker, options: GroupOptions = { detail: true }): TaskListing {
  const snapshot = tracker.snapshot();
  const stacked = new Map<string, Accumulator>();
  // Tasks with a record but no stack, by type, detail and labels: placed by
  // estimate where sampled stacks of the same type and detail stand for them.
  const stackless = new Map<string, Accumulator>();
  const records: TaskRecord[] = [];
  tracker.forEachLive((record: TaskRecord) => records.push(record));
  const flows = new FlowIndex(records);
  const shares = foldShares(flows);
  for (const record of records) {
    if (flows.isInner(record)) continue;
    const flow = flows.view(record);
    const detail = flow !== undefined ? (options.detail ? 'waits for ' + flow.waitsFor : '') : options.detail ? describeTask(record, false) : '';
    const labelsKey = record.labels?.key ?? '';
    const stack = record.stack;
    const frames = flow === undefined ? (stack === undefined ? [] : framesOf(stack)) : flow.frames;
    // Keyed by the interned stack's id (short); the group's own key, compared
    // across listings by deltas, uses the stack's text. A flow's by where it is parked too.
    const parkedKey = flow?.parkedKey ?? '';
    const id = `${record.type}\0${detail}\0${stack?.id ?? 0}\0${labelsKey}\0${parkedKey}`;
    const groups = stack === undefined ? stackless : stacked;
    let group = groups.get(id);
    if (group === undefined) {
      group = {
        key: `${record.type}\0${detail}\0${stack?.key ?? ''}\0${labelsKey}` + (flow === undefined ? '' : `\0${parkedKey}`),
        count: 0,
        recorded: 0,
        estimated: false,
        type: record.type,
        detail,
        labels: record.labels?.values ?? emptyLabels,
        oldestCreatedAt: record.createdAt,
        stack: frames,
        entry: stack,
        unrecorded: false,
        parkedFrames: flow?.parkedAt.length ?? 0,
        waitsFor: flow?.waitsFor ?? '',
        waitingSince: flow?.waitingSince,
        labelsKey,
        extra: 0,
        extraIn: new Map(),
        weightIn: new Map(),
      };
      groups.set(id, group);
    }
    if (flow !== undefined) {
      if (group.waitingSince === undefined || flow.waitingSince < group.waitingSince) group.waitingSince = flow.waitingSince;
    }
    group.recorded++;
    group.count++;
    group.extra += record.weight - 1;
    const window = record.sampledIn;
    if (window !== undefined) {
      if (record.weight > 1) group.extraIn.set(window, (group.extraIn.get(window) ?? 0) + record.weight - 1);
      group.weightIn.set(window.captureClass, (group.weightIn.get(window.captureClass) ?? 0) + record.weight);
    }
    if (record.createdAt < group.oldestCreatedAt) group.oldestCreatedAt = record.createdAt;
  }
  const byType = new Map<string, Accumulator[]>();
  for (const group of stacked.values()) {
    let list = byType.get(group.type);
    if (list === undefined) byType.set(group.type, (list = []));
    list.push(group);
  }
  const result: TaskGroup[] = [];
  const recordedByType = new Map<string, number>();
  for (const group of [...stacked.values(), ...stackless.values()]) recordedByType.set(group.type, (recordedByType.get(group.type) ?? 0) + group.recorded);
  // Promises without a record: each window's (a class of tasks in one
  // second) go to the groups of the records sampled in that window, whose
  // weights stand for them (a quiet route's group never takes a busy
  // route's); what those cannot stand for (no record of that second was
  // sampled) goes to the groups of the same class's records of other
  // seconds, in proportion to what they stand for.
  const placedByType = new Map<string, number>();
  let innerEstimated = 0;
  for (const sampledIn of tracker.unrecordedBySample()) {
    const { type, unrecorded } = sampledIn;
    const foldedInWindow = foldedOf(sampledIn, shares);
    innerEstimated += foldedInWindow;
    const count = unrecorded - foldedInWindow;
    const ofType = byType.get(type) ?? [];
    let placed = place(
      ofType.filter((g) => g.extraIn.has(sampledIn)),
      count,
      (g) => g.extraIn.get(sampledIn)!,
    );
    const ofClass = ofType.filter((g) => g.weightIn.has(sampledIn.captureClass));
    placed += place(ofClass, count - placed, (g) => g.weightIn.get(sampledIn.captureClass)!, false);
    placedByType.set(type, (placedByType.get(type) ?? 0) + placed);
  }
  // Timers and handles without a stack have records: theirs go to groups of
  // the same detail and labels (a timer's class is its duration on its
  // route), first as far as their sampled records' weights stand for them,
  // then in proportion to what those groups' records stand for; failing
  // those, to groups of the same detail on other labels, as far as weights go.
  for (const pool of stackless.values()) {
    const sameDetail = (byType.get(pool.type) ?? []).filter((g) => g.detail === pool.detail);
    const sameClass = sameDetail.filter((g) => g.labelsKey === pool.labelsKey);
    pool.count -= place(sameClass, pool.count, (g) => g.extra);
    // What its records stand for in all: themselves and their extra weight.
    pool.count -= place(sameClass, pool.count, (g) => g.recorded + g.extra, false);
    pool.count -= place(sameDetail, pool.count, (g) => g.extra);
    if (pool.count > 0) result.push(strip(pool));
  }
  for (const count of snapshot.counts) {
    // Tasks no estimate placed (maxTasks reached, `counts` tracking, classes sampled but gone).
    const foldedOfType = count.type === PROMISE_TYPE ? shares.innerRecorded + innerEstimated : 0;
    const unrecorded = Math.max(0, count.live - foldedOfType - (recordedByType.get(count.type) ?? 0) - (placedByType.get(count.type) ?? 0));
    if (unrecorded > 0) {
      result.push({
        key: `${count.type}\0\0\0`,
        count: unrecorded,
        recorded: 0,
        estimated: false,
        type: count.type,
        detail: '',
        labels: emptyLabels,
        oldestCreatedAt: snapshot.oldest.get(count.type) ?? tracker.startedAt,
        stack: [],
        entry: undefined,
        unrecorded: true,
        parkedFrames: 0,
        waitsFor: '',
        waitingSince: undefined,
      });
    }
  }
  let estimatedGroups = 0;
  for (const group of stacked.values()) {
    if (group.estimated) estimatedGroups++;
    result.push(strip(group));
  }
  result.sort((a, b) => b.count - a.count || a.oldestCreatedAt - b.oldestCreatedAt);
  const withoutStack = snapshot.counts.reduce((n, c) => n + c.withoutStack, 0);
  const pending = snapshot.counts.find((c) => c.type === PROMISE_TYPE)?.live ?? 0;
  const foldedPromises = Math.min(pending, shares.innerRecorded + innerEstimated);
  return {
    total: snapshot.counts.reduce((n, c) => n + c.live, 0) - foldedPromises,
    promises: { pending, flows: pending - foldedPromises, estimated: innerEstimated > 0 || result.some((g) => g.type === PROMISE_TYPE && g.estimated) },
    counts: snapshot.counts,
    groups: result,
    withoutStack,
    estimatedGroups,
  };
}

function strip(group: Accumulator): TaskGroup {
  const { labelsKey: _labelsKey, extra: _extra, extraIn: _extraIn, weightIn: _weightIn, ...plain } = group;
  return plain;
}

// Gives up to `tasks` tasks without a stack to `groups`, in proportion to
// `extraOf` (what their sampled records stand for beyond themselves), at
// most as many as that stands for unless `capped` is false, with largest
// remainders so that the parts add up; marks those groups estimated;
// returns how many were placed.
function place(groups: Accumulator[], tasks: number, extraOf: (group: Accumulator) => number, capped = true): number {
  if (tasks <= 0 || groups.length === 0) return 0;
  const extras = groups.map(extraOf);
  const extra = extras.reduce((n, e) => n + e, 0);
  if (extra <= 0) return 0;
  const placed = capped ? Math.min(tasks, Math.round(extra)) : tasks;
  if (placed <= 0) return 0;
  const shares = extras.map((e) => (placed * e) / extra);
  let given = 0;
  groups.forEach((g, i) => {
    const whole = Math.floor(shares[i]!);
    g.count += whole;
    given += whole;
    // A sampled group is an estimate even when rounding gave it none; one
    // whose records are all exact only once it is given some.
    if (capped || whole > 0) g.estimated = true;
  });
  const byRemainder = groups.map((g, i) => ({ g, r: shares[i]! - Math.floor(shares[i]!) })).sort((a, b) => b.r - a.r);
  for (let i = 0; given < placed && i < byRemainder.length; i++, given++) {
    byRemainder[i]!.g.count++;
    byRemainder[i]!.g.estimated = true;
  }
  return placed;
}
