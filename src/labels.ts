// Labels: key/value pairs attached to the tasks created inside a scope, like
// Go's pprof.Do. Carried by AsyncLocalStorage so that they follow callbacks,
// timers and promise continuations.
import { AsyncLocalStorage } from 'node:async_hooks';

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

  constructor(values: Labels, late?: () => Labels | undefined) {
    this.#values = values;
    this.#late = late;
  }

  /** Reads late labels once more and keeps them; called when the request ends. */
  settle(): void {
    this.#resolveLate();
    this.#late = undefined;
  }

  #resolveLate(): void {
    if (this.#late === undefined) return;
    let extra: Labels | undefined;
    try {
      extra = this.#late();
    } catch {
      extra = undefined;
    }
    if (extra !== undefined) {
      this.#values = { ...this.#values, ...extra };
      this.#late = undefined;
      this.#key = undefined;
    }
  }

  get values(): Labels {
    this.#resolveLate();
    return this.#values;
  }

  /** A canonical string for grouping: sorted keys. */
  get key(): string {
    const values = this.values;
    if (this.#key === undefined || this.#late !== undefined) {
      this.#key = formatLabels(values);
    }
    return this.#key;
  }
}

/** `{method="GET", route="/users/:id"}`, keys sorted; empty string for no labels. */
export function formatLabels(values: Labels): string {
  const keys = Object.keys(values).sort();
  if (keys.length === 0) return '';
  return '{' + keys.map((k) => `${k}=${JSON.stringify(values[k])}`).join(', ') + '}';
}

export const labelStorage = new AsyncLocalStorage<LabelSet>();

export function currentLabels(): LabelSet | undefined {
  return labelStorage.getStore();
}

/** The labels in force here merged with `labels`, as a new set. */
export function extendLabels(labels: Labels): LabelSet {
  const outer = labelStorage.getStore();
  return new LabelSet(outer === undefined ? { ...labels } : { ...outer.values, ...labels });
}

export { emptyLabels };
