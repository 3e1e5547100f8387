// Live tasks by HTTP route, kept up to date as tasks come and go, so that a
// scrape reads a few numbers instead of walking every task. Express learns a
// request's route only after routing: label sets still waiting for theirs
// are held apart and moved to their route's count when it is known. Each
// label set keeps its slot itself (one property read per task, no lookup).
import type { LabelSet } from './labels.js';

export interface RouteCount {
  readonly method: string;
  readonly route: string;
  live: number;
}

/** The route every route past the limit is counted under. */
export const OVERFLOW_ROUTE = 'other';
import { defaultMaxRoutes } from '../defaults.js';

/** Where a label set's tasks are counted; `count` undefined while its route is not known yet. */
export interface RouteSlot {
  readonly tally: RouteTally;
  readonly generation: number;
  count: RouteCount | undefined;
  /** Tasks counted while the route was not known. */
  pending: number;
  /** This set has no route and never will (a 404, say): not counted by route. */
  none: boolean;
}

export class RouteTally {
  /** Distinct (method, route) pairs counted on their own; the rest go to route="other". */
  limit = defaultMaxRoutes;
  #counts = new Map<string, RouteCount>();
  #pending = new Set<LabelSet>();
  #generation = 0;

  #slotOf(labels: LabelSet): RouteSlot {
    const slot = labels.routeSlot;
    if (slot !== undefined && slot.tally === this && slot.generation === this.#generation) return slot;
    const fresh: RouteSlot = { tally: this, generation: this.#generation, count: undefined, pending: 0, none: false };
    this.#place(labels, fresh);
    labels.routeSlot = fresh;
    return fresh;
  }

  add(labels: LabelSet, n: number): void {
    const slot = this.#slotOf(labels);
    if (slot.none) return;
    if (slot.count !== undefined) slot.count.live += n;
    else {
      slot.pending += n;
      this.#pending.add(labels);
    }
  }

  remove(labels: LabelSet, n: number): void {
    const slot = labels.routeSlot;
    if (slot === undefined || slot.tally !== this || slot.generation !== this.#generation || slot.none) return;
    if (slot.count !== undefined) slot.count.live -= n;
    else {
      slot.pending -= n;
      if (slot.pending <= 0) this.#pending.delete(labels);
    }
  }

  /**
   * Counts by route; label sets whose route became known since are moved
   * first. `extra` adds tasks counted elsewhere (walked timers), by label set.
   */
  counts(extra?: ReadonlyMap<LabelSet, number>): RouteCount[] {
    for (const labels of this.#pending) {
      const slot = labels.routeSlot;
      if (slot === undefined || slot.tally !== this || slot.generation !== this.#generation || slot.count !== undefined || slot.none) {
        this.#pending.delete(labels);
        continue;
      }
      this.#place(labels, slot);
      const placed = slot.count as RouteCount | undefined;
      if (slot.none || placed !== undefined) {
        if (placed !== undefined) placed.live += slot.pending;
        slot.pending = 0;
        this.#pending.delete(labels);
      }
    }
    const result = [...this.#counts.values()].map((c) => ({ ...c }));
    if (extra !== undefined && extra.size > 0) {
      const byKey = new Map(result.map((c) => [c.method + '\0' + c.route, c]));
      for (const [labels, n] of extra) {
        const slot = this.#slotOf(labels);
        if (slot.count === undefined) continue;
        const key = slot.count.method + '\0' + slot.count.route;
        const entry = byKey.get(key) ?? { method: slot.count.method, route: slot.count.route, live: 0 };
        entry.live += n;
        if (!byKey.has(key)) {
          byKey.set(key, entry);
          result.push(entry);
        }
      }
    }
    return result;
  }

  clear(): void {
    this.#counts.clear();
    this.#pending.clear();
    this.#generation++;
  }

  // Finds the slot's route count, or marks it as having none.
  #place(labels: LabelSet, slot: RouteSlot): void {
    const values = labels.values;
    const route = values.route;
    if (route === undefined) {
      if (!labels.pending) slot.none = true;
      return;
    }
    slot.count = this.#countFor(values.method ?? '', route);
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
