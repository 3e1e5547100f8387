// What the tracker records and reports, and its settings.
import type { LabelSet } from '../labels/labels.js';
import type { StackEntry } from '../stacks/stack.js';
import type { CaptureWindow } from './stack-budget.js';

export type TrackingMode = 'full' | 'sampled' | 'counts' | 'off';
export const trackingModes: readonly TrackingMode[] = ['full', 'sampled', 'counts', 'off'];

export const PROMISE_TYPE = 'Promise';

export interface TrackerSettings {
  mode: TrackingMode;
  /**
   * `sampled`: the share of the process's CPU time that capturing creation
   * stacks may take (0.01 = 1%). Below it every task gets its stack; above
   * it, stacks are sampled (see StackBudget).
   */
  stackBudget: number;
  /** Most task records (with their stacks) kept at once; counts are never capped. */
  maxTasks: number;
}

export const defaultTrackerSettings: TrackerSettings = {
  mode: 'sampled',
  stackBudget: 0.01,
  maxTasks: 200_000,
};

/** A live task taskprof holds a record of: its type, creation stack, labels and creator. */
export interface TaskRecord {
  readonly id: number;
  readonly type: string;
  /** Date.now() at creation. */
  readonly createdAt: number;
  /** Id of the task whose callback was running at creation; 0 when unknown. */
  readonly parentId: number;
  /** Type of that parent, kept so a listing can name it after it ended. */
  readonly parentType: string;
  /** Where that parent was created, when known. */
  readonly parentStack: StackEntry | undefined;
  /** Where the task was created; undefined when its stack was not captured (see StackBudget). */
  readonly stack: StackEntry | undefined;
  readonly labels: LabelSet | undefined;
  /**
   * How many live tasks this record stands for in grouped listings: 1, or
   * more when its stack was captured while the stack budget sampled its class.
   */
  readonly weight: number;
  /** The stack budget window (class and second) its stack was captured in, for estimates; undefined under `full` and for timers and handles. */
  readonly sampledIn: CaptureWindow | undefined;
  readonly live: boolean;
  /** The task's own object (timer, socket, server...) while it is live; undefined for promises. */
  readonly resource: object | undefined;
}

export interface TypeCount {
  type: string;
  /** Live tasks now, exact: created since tracking started, not yet completed or abandoned. */
  live: number;
  created: number;
  completed: number;
  /** Never settled, and collected by the garbage collector (promises). */
  abandoned: number;
  /** Live tasks of this type without a stack: not captured (over the stack budget, or tracking `counts`), or maxTasks records held. */
  withoutStack: number;
}

/** Tasks that were garbage collected without ever settling, by where they were made. */
export interface AbandonedSite {
  type: string;
  stack: StackEntry | undefined;
  labels: LabelSet | undefined;
  count: number;
  /** Date.now() when the last one was found collected. */
  lastAt: number;
}
