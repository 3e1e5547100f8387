// One task as debug=2 and the leak check show it.
import type { TaskRecord } from '../tracker/types.js';
import { framesOf, type StackFrame } from '../stacks/stack.js';
import { emptyLabels, type Labels } from '../labels/labels.js';
import { describeTask } from './describe.js';
import type { FlowView } from './flows.js';

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
  /** Undefined when the stack was not captured (the stack budget). */
  stack: StackFrame[] | undefined;
  /** A promise that heads a flow: where it is parked, where it started, what it waits for. */
  flow: FlowView | undefined;
}

export function taskEntry(record: TaskRecord, flow?: FlowView): TaskEntry {
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
    flow,
  };
}
