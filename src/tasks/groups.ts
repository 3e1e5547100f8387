// The data behind every tasks listing: live tasks grouped by (type, detail,
// stack, labels), with counts that add up to each type's exact total. A
// group is exact when every task in it has a record; where the stack budget
// sampled a class, its records stand for the tasks of that class that got
// no stack, and the groups they are in are estimated (marked so); tasks no
// estimate can place form one "no record" group per type.
import type { Tracker } from '../tracker/tracker.js';
import type { TaskRecord, TypeCount } from '../tracker/types.js';
import { framesOf, type StackEntry, type StackFrame } from '../stack.js';
import { emptyLabels, type Labels } from '../labels.js';
import { describeTask } from './describe.js';

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
}

export interface TaskListing {
  /** Live tasks in all, exact. */
  total: number;
  counts: TypeCount[];
  groups: TaskGroup[];
  /** Live tasks without a stack: in groups of their own, by type (and detail where they have a record). */
  withoutStack: number;
  /** Groups whose count is an estimate. */
  estimatedGroups: number;
}

interface Accumulator extends TaskGroup {
  /** Expected tasks without a stack that the group's sampled records stand for. */
  extra: number;
}

export interface GroupOptions {
  /** Include the state detail (interval period, address) in the grouping; the growth detector does not. */
  detail: boolean;
}

/** Live tasks grouped, largest group first; counts add up to the exact totals. */
export function listTasks(tracker: Tracker, options: GroupOptions = { detail: true }): TaskListing {
  const snapshot = tracker.snapshot();
  const groups = new Map<string, Accumulator>();
  const counts = new Map(snapshot.counts.map((c) => [c.type, c]));
  tracker.forEachLive((record: TaskRecord) => {
    const detail = options.detail ? describeTask(record, false) : '';
    const labelsKey = record.labels?.key ?? '';
    const stack = record.stack;
    // Keyed by the interned stack's id (short); the group's own key, compared
    // across listings by deltas, uses the stack's text.
    const id = `${record.type}\0${detail}\0${stack?.id ?? 0}\0${labelsKey}`;
    let group = groups.get(id);
    if (group === undefined) {
      group = {
        key: `${record.type}\0${detail}\0${stack?.key ?? ''}\0${labelsKey}`,
        count: 0,
        recorded: 0,
        estimated: false,
        type: record.type,
        detail,
        labels: record.labels?.values ?? emptyLabels,
        oldestCreatedAt: record.createdAt,
        stack: stack === undefined ? [] : framesOf(stack),
        entry: stack,
        unrecorded: false,
        extra: 0,
      };
      groups.set(id, group);
    }
    group.recorded++;
    group.extra += record.weight - 1;
    if (record.createdAt < group.oldestCreatedAt) group.oldestCreatedAt = record.createdAt;
  });
  const byType = new Map<string, Accumulator[]>();
  for (const group of groups.values()) {
    group.count = group.recorded;
    let list = byType.get(group.type);
    if (list === undefined) byType.set(group.type, (list = []));
    list.push(group);
  }
  let estimatedGroups = 0;
  const result: TaskGroup[] = [];
  for (const count of counts.values()) {
    const list = byType.get(count.type) ?? [];
    const recorded = list.reduce((n, g) => n + g.recorded, 0);
    let unrecorded = Math.max(0, count.live - recorded);
    const extra = list.reduce((n, g) => n + g.extra, 0);
    const placed = Math.min(unrecorded, Math.round(extra));
    if (placed > 0) {
      estimatedGroups += distribute(list, placed, extra);
      unrecorded -= placed;
    }
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
      });
    }
    for (const group of list) {
      const { extra: _extra, ...plain } = group;
      result.push(plain);
    }
  }
  result.sort((a, b) => b.count - a.count || a.oldestCreatedAt - b.oldestCreatedAt);
  const withoutStack = result.reduce((n, g) => n + (g.entry === undefined ? g.count : 0), 0);
  return { total: snapshot.counts.reduce((n, c) => n + c.live, 0), counts: snapshot.counts, groups: result, withoutStack, estimatedGroups };
}

// Gives `placed` tasks to the groups in proportion to their extra weight
// (largest remainders first, so the parts add up); returns how many groups
// became estimates.
function distribute(groups: Accumulator[], placed: number, extra: number): number {
  const shares = groups.map((g) => (placed * g.extra) / extra);
  let given = 0;
  groups.forEach((g, i) => {
    const whole = Math.floor(shares[i]!);
    g.count += whole;
    given += whole;
  });
  const byRemainder = groups.map((g, i) => ({ g, r: shares[i]! - Math.floor(shares[i]!) })).sort((a, b) => b.r - a.r);
  for (let i = 0; given < placed && i < byRemainder.length; i++, given++) byRemainder[i]!.g.count++;
  let estimated = 0;
  for (const g of groups) {
    if (g.extra > 0) {
      g.estimated = true;
      estimated++;
    }
  }
  return estimated;
}
