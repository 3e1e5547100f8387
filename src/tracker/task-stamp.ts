// The invisible slots taskprof keeps on the app's objects: a promise's task
// state (or just the labels a derived promise carries), and a timer's,
// socket's or other resource's record (or the labels a callback object
// carries). Two slot kinds, not one: each slot's code then sees one family
// of hidden classes, and V8 keeps its property accesses fast (one shared
// slot went megamorphic and cost more than the rest of the tracking).
import { LabelSet } from '../labels/labels.js';
import { createStamp } from './stamp.js';
import { TrackedTask } from './session.js';
import type { CaptureWindow } from './stack-budget.js';
import { PromiseWait } from './flow-links.js';

/** A root promise's state: live until it settles or is collected. */
export class PromiseTask {
  live = true;
  /** Held by the FinalizationRegistry once registered (see promises.ts). */
  tomb: Tombstone | undefined;
  constructor(
    readonly counts: { completed: number; abandoned: number },
    readonly labels: LabelSet | undefined,
    /** The record, when its stack was captured. */
    readonly record: TrackedTask | undefined,
    /** The flush period it was made in (see promises.ts). */
    readonly period: number,
    /** The stack budget window it is counted in as a task without a record, if it is one. */
    readonly unrecordedIn: CaptureWindow | undefined,
  ) {}
}

/**
 * What the FinalizationRegistry keeps to account for a promise once it is
 * collected: a copy, never the PromiseTask itself (the registry's target,
 * which the held value must not keep alive).
 */
export class Tombstone {
  live = true;
  constructor(
    readonly counts: { abandoned: number },
    readonly labels: LabelSet | undefined,
    readonly record: TrackedTask | undefined,
    readonly unrecordedIn: CaptureWindow | undefined,
  ) {}
}

export type Stamped = PromiseTask | PromiseWait | TrackedTask | LabelSet;

/** On promises: their state (root promises), their link into a flow (derived ones that wait on a tracked one), or the labels they carry (other derived ones). */
export const promiseStamp = createStamp<PromiseTask | PromiseWait | LabelSet>();
/** On timers, sockets and other resources: their record, or taskprof's own mark (ownWork). */
export const resourceStamp = createStamp<TrackedTask | LabelSet>();

export function labelsOf(value: Stamped | undefined): LabelSet | undefined {
  if (value === undefined || value instanceof LabelSet) return value;
  return value.labels;
}

export function recordOf(value: Stamped | undefined): TrackedTask | undefined {
  if (value instanceof TrackedTask) return value;
  if (value instanceof PromiseTask) return value.record;
  return undefined;
}
