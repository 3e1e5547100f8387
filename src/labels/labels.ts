// Labels: key/value pairs attached to the tasks created inside a scope, like
// Go's pprof.Do. The current set is one variable: scopes set it synchronously,
// and the tracker's hooks carry it into promise continuations (and, in full
// mode, into every async callback). AsyncLocalStorage would do the same at
// several times the cost on Node 20 and 22 (docs/design.md).

import type { RouteSlot } from './route-tally.js';

export type Labels = Readonly<Record<string, string>>;

const emptyLabels: Labels = Object.freeze({});

/**
 * A set of labels shared by all the tasks created in one scope. It may be
 * completed later (the route of an Express request is known only after
 * routing), so records keep the set and read it when a listing is made.
 */
export class LabelSet {
  #values: Labels;
  #late: (() => Labels | undefined) | undefined;
  #key: string | undefined;
  /** Where the route tally counts this set's tasks (kept here: one read per task). */
  routeSlot: RouteSlot | undefined;
  /** The stack budget's capture class of this set's promises, once the route is known. */
  promiseCaptureClass: object | undefined;
  /** The stack budget's capture class of this set's latest timer duration. */
  timerCaptureClass: object | undefined;

  constructor(values: Labels, late?: () => Labels | undefined) {
    this.#values = values;
    this.#late = late;
  }

  /** Tries the late labels once more; called when a task is recorded and when a listing reads them. */
  resolve(): void {
    const late = this.#late;
    if (late === undefined) return;
    let extra: Labels | undefined;
    try {
      extra = late();
    } catch {
      extra = undefined;
    }
    if (extra !== undefined) {
      this.#values = { ...this.#values, ...extra };
      this.#late = undefined;
      this.#key = undefined;
    }
  }

  /** True while late labels may still come. */
  get pending(): boolean {
    return this.#late !== undefined;
  }

  get values(): Labels {
    this.resolve();
    return this.#values;
  }

  /** A canonical string for grouping: sorted keys. */
  get key(): string {
    const values = this.values;
    if (this.#key === undefined) this.#key = formatLabels(values);
    return this.#key;
  }
}

/** `{method="GET", route="/users/:id"}`, keys sorted; empty string for no labels. */
export function formatLabels(values: Labels): string {
  const keys = Object.keys(values).sort();
  if (keys.length === 0) return '';
  return '{' + keys.map((k) => `${k}=${JSON.stringify(values[k])}`).join(', ') + '}';
}

/**
 * The scope of taskprof's own work (serving a debug request): the tracker
 * skips tasks made in it before capturing a stack, which would cost more than
 * the work itself under full tracking.
 */
export const ownWork = new LabelSet({});

/** The label set in force now; read and written by the tracker's hooks. */
export const labelContext: { current: LabelSet | undefined } = { current: undefined };

/** Runs `fn` with `set` as the current labels, restoring the previous ones after. */
export function runWithLabels<T>(set: LabelSet | undefined, fn: () => T): T {
  const saved = labelContext.current;
  labelContext.current = set;
  try {
    return fn();
  } finally {
    labelContext.current = saved;
  }
}

/** The labels in force here merged with `labels`, as a new set. */
export function extendLabels(labels: Labels): LabelSet {
  const outer = labelContext.current;
  return new LabelSet(outer === undefined ? { ...labels } : { ...outer.values, ...labels });
}

export { emptyLabels };
