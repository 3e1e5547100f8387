// Live tasks by HTTP route, kept up to date as records come and go, so that a
// scrape reads a few numbers instead of walking every task. Express learns a
// request's route only after routing: label sets still waiting for theirs
// are held apart and moved to their route's count when it is known.
import type { LabelSet } from './labels.js';

export interface RouteCount {
  readonly method: string;
  readonly route: string;
  /** Live tasks (an estimate when tracking samples). */
  live: number;
}

/** The route every route past the limit is counted under. */
export const OVERFLOW_ROUTE = 'other';
export const defaultMaxRoutes = 100;

interface Slot {
  /** undefined while the route is not known yet. */
  count: RouteCount | undefined;
  /** Weight counted while the route was not known. */
  pending: number;
}

export class RouteTally {
  /** Distinct (method, route) pairs counted on their own; the rest go to route="other". */
  limit = defaultMaxRoutes;
  #counts = new Map<string, RouteCount>();
  #slots = new WeakMap<LabelSet, Slot | null>();
  #pending = new Set<LabelSet>();

  add(labels: LabelSet, weight: number): void {
    let slot = this.#slots.get(labels);
    if (slot === undefined) {
      slot = this.#slotFor(labels);
      this.#slots.set(labels, slot);
    }
    if (slot === null) return;
    if (slot.count !== undefined) slot.count.live += weight;
    else {
      slot.pending += weight;
      this.#pending.add(labels);
    }
  }

  remove(labels: LabelSet, weight: number): void {
    const slot = this.#slots.get(labels);
    if (slot === undefined || slot === null) return;
    if (slot.count !== undefined) slot.count.live -= weight;
    else {
      slot.pending -= weight;
      if (slot.pending <= 0) this.#pending.delete(labels);
    }
  }

  /** Counts by route; label sets whose route became known since are moved first. */
  counts(): RouteCount[] {
    for (const labels of this.#pending) {
      const slot = this.#slots.get(labels);
      if (slot === undefined || slot === null || slot.count !== undefined) {
        this.#pending.delete(labels);
        continue;
      }
      const resolved = this.#slotFor(labels);
      if (resolved === null) {
        // Never routed (a 404, say): not counted by route.
        this.#slots.set(labels, null);
        this.#pending.delete(labels);
      } else if (resolved.count !== undefined) {
        resolved.count.live += slot.pending;
        slot.count = resolved.count;
        slot.pending = 0;
        this.#pending.delete(labels);
      }
    }
    return [...this.#counts.values()];
  }

  clear(): void {
    this.#counts.clear();
    this.#slots = new WeakMap();
    this.#pending.clear();
  }

  // null: this set has no route and never will.
  #slotFor(labels: LabelSet): Slot | null {
    const values = labels.values;
    const route = values.route;
    if (route === undefined) return labels.pending ? { count: undefined, pending: 0 } : null;
    return { count: this.#countFor(values.method ?? '', route), pending: 0 };
  }

  #countFor(method: string, route: string): RouteCount {
    const key = method + '\0' + route;
    let count = this.#counts.get(key);
    if (count !== undefined) return count;
    if (this.#counts.size >= this.limit) {
      const overflowKey = method + '\0' + OVERFLOW_ROUTE + '\0';
      count = this.#counts.get(overflowKey);
      if (count === undefined) {
        count = { method, route: OVERFLOW_ROUTE, live: 0 };
        this.#counts.set(overflowKey, count);
      }
      return count;
    }
    count = { method, route, live: 0 };
    this.#counts.set(key, count);
    return count;
  }
}
