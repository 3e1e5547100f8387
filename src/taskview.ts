// The data behind every tasks listing: groups by (type, detail, stack,
// labels) and single tasks, independent of the output format.
import { describeTask, type TaskRecord, type Tracker } from './tracker.js';
import { framesOf, type StackFrame } from './stack.js';
import { emptyLabels, type Labels } from './labels.js';

export interface TaskGroup {
  /** Identifies the group across listings (type, detail, stack and labels). */
  key: string;
  /** Tasks in the group (an estimate when the tracker samples). */
  count: number;
  type: string;
  detail: string;
  labels: Labels;
  oldestCreatedAt: number;
  stack: StackFrame[];
}

export interface TaskEntry {
  id: number;
  type: string;
  detail: string;
  createdAt: number;
  labels: Labels;
  parentId: number;
  parentType: string;
  /** Where the creating task was made, when known. */
  parentStack: StackFrame[] | undefined;
  stack: StackFrame[] | undefined;
}

/** Live tasks grouped, largest group first. */
export function groupTasks(tracker: Tracker): TaskGroup[] {
  if (tracker.mode === 'counts') {
    return tracker
      .typeCounts()
      .filter((c) => c.live > 0)
      .map((c) => ({
        key: c.type,
        count: c.live,
        type: c.type,
        detail: '',
        labels: emptyLabels,
        oldestCreatedAt: tracker.oldest(c.type)?.createdAt ?? tracker.startedAt,
        stack: [],
      }));
  }
  const groups = new Map<string, TaskGroup>();
  for (const record of tracker.records()) {
    // In sampled mode only records with a stack represent their kind; the
    // rest are already in the totals.
    if (record.stack === undefined) continue;
    const detail = describeTask(record, false);
    // Keyed by the interned stack's id (short); the group's own key, compared
    // across listings by deltas, uses the stack's text, which outlives the id.
    const id = `${record.type}\0${detail}\0${record.stack.id}\0${record.labels?.key ?? ''}`;
    let group = groups.get(id);
    if (group === undefined) {
      group = {
        key: `${record.type}\0${detail}\0${record.stack.key}\0${record.labels?.key ?? ''}`,
        count: 0,
        type: record.type,
        detail,
        labels: record.labels?.values ?? emptyLabels,
        oldestCreatedAt: record.createdAt,
        stack: framesOf(record.stack),
      };
      groups.set(id, group);
    }
    group.count += record.weight;
  }
  return [...groups.values()].sort((a, b) => b.count - a.count || a.oldestCreatedAt - b.oldestCreatedAt);
}

export function taskEntry(record: TaskRecord): TaskEntry {
  return {
    id: record.id,
    type: record.type,
    detail: describeTask(record, true),
    createdAt: record.createdAt,
    labels: record.labels?.values ?? emptyLabels,
    parentId: record.parentId,
    parentType: record.parentType,
    parentStack: record.parentStack === undefined ? undefined : framesOf(record.parentStack),
    stack: record.stack === undefined ? undefined : framesOf(record.stack),
  };
}
