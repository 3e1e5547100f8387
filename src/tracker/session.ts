// One tracking session: from a configure() to the next. It owns the exact
// counters per type, the records (tasks with a stack or a resource to
// describe), the stack budget and the interned stacks. Hooks hold the
// session they were installed for, so that tasks of an earlier session
// never touch a later one's counts.
import type { LabelSet } from '../labels/labels.js';
import { capturePromiseSite, captureStackKey, OWN_TASK, StackTable, type PromiseSite, type StackEntry } from '../stacks/stack.js';
import type { RootLinks } from './flow-links.js';
import type { RouteTally } from '../labels/route-tally.js';
import { StackBudget, type CaptureWindow } from './stack-budget.js';
import type { TaskRecord, TrackerSettings } from './types.js';

/** Exact counts of one type in one session. */
export class TypeCounts {
  created = 0;
  completed = 0;
  abandoned = 0;
  /** Kept as tasks start and end, for the types whose end is an event (not promises and walked timers). */
  live = 0;
}

export class TrackedTask implements TaskRecord {
  readonly id: number;
  readonly type: string;
  readonly createdAt: number;
  readonly parentId: number;
  readonly parentType: string;
  readonly parentStack: StackEntry | undefined;
  readonly stack: StackEntry | undefined;
  readonly labels: LabelSet | undefined;
  /** How many tasks this record stands for: 1, or more when the stack budget sampled its class (see StackBudget.admit). */
  readonly weight: number;
  /** The stack budget window it was sampled in, for the estimate; undefined under `full` and for timers and handles. */
  sampledIn: CaptureWindow | undefined;
  live = true;
  /** A promise's links into flows (what it awaits, what awaits it), when its stack says what it is. */
  links: RootLinks | undefined;
  // The timer, socket or server: held strongly where the task's end is an
  // event (released then), weakly where the end may be its collection
  // (async_hooks resources under `full`); none for promises.
  #resource: object | WeakRef<object> | undefined;
  #weak: boolean;

  constructor(
    id: number,
    type: string,
    stack: StackEntry | undefined,
    labels: LabelSet | undefined,
    weight: number,
    resource: object | undefined,
    parent: TrackedTask | undefined,
    weak: boolean,
  ) {
    this.id = id;
    this.type = type;
    this.createdAt = Date.now();
    this.stack = stack;
    this.labels = labels;
    this.weight = weight;
    this.#weak = weak;
    this.#resource = resource === undefined ? undefined : weak ? new WeakRef(resource) : resource;
    this.parentId = parent?.id ?? 0;
    this.parentType = parent?.type ?? '';
    this.parentStack = parent?.stack;
  }

  /** The task's own object (timer, socket, server...) while it is live and reachable; undefined for promises. */
  get resource(): object | undefined {
    const held = this.#resource;
    return this.#weak ? (held as WeakRef<object> | undefined)?.deref() : (held as object | undefined);
  }

  /** Lets go of the resource (the task ended). */
  release(): void {
    this.#resource = undefined;
  }
}

export class Session {
  readonly settings: Readonly<TrackerSettings>;
  readonly startedAt = Date.now();
  readonly budget: StackBudget;
  readonly stacks = new StackTable();
  readonly counts = new Map<string, TypeCounts>();
  /** Live records by type, oldest first: promises with a stack, and every tracked handle. Timers are found by walking Node's lists. */
  readonly records = new Map<string, Map<number, TrackedTask>>();
  /** Whether creation stacks are captured (not in `counts`). */
  readonly captureStacks: boolean;
  /** Whether labels are carried and recorded (not in `counts`). */
  readonly labelsOn: boolean;
  readonly routes: RouteTally;
  recordCount = 0;
  /** Tasks that got no record because maxTasks records were held. */
  dropped = 0;
  #nextId: () => number;
  /** Records of this session have ids from here on. */
  readonly firstId: number;
  /** False once a later configure() replaced this session. */
  live = true;

  constructor(settings: TrackerSettings, routes: RouteTally, nextId: () => number) {
    this.settings = { ...settings };
    this.captureStacks = settings.mode === 'full' || settings.mode === 'sampled';
    this.labelsOn = this.captureStacks;
    this.budget = new StackBudget(settings.stackBudget, settings.mode === 'full');
    this.routes = routes;
    this.#nextId = nextId;
    this.firstId = nextId();
  }

  /**
   * The creation stack of a task being made now, charged to the stack
   * budget; `null` when taskprof's own code made it. `above` is the hook or
   * wrapper the capture starts under.
   */
  captureStack(above: Function, depth: number): StackEntry | null {
    // Charged for the capture and its interning: what a stack costs here.
    const startedAt = performance.now();
    const key = captureStackKey(above, depth);
    const stack = key === OWN_TASK ? null : this.stacks.intern(key);
    this.budget.charge(performance.now() - startedAt);
    return stack;
  }

  /** A promise's creation stack and what its first frame says, charged like captureStack; `null` for taskprof's own. */
  capturePromise(above: Function, depth: number): { stack: StackEntry; site: PromiseSite } | null {
    const startedAt = performance.now();
    const site = capturePromiseSite(above, depth);
    const stack = site.key === OWN_TASK ? null : this.stacks.intern(site.key);
    this.budget.charge(performance.now() - startedAt);
    return stack === null ? null : { stack, site };
  }

  countsOf(type: string): TypeCounts {
    let counts = this.counts.get(type);
    if (counts === undefined) {
      counts = new TypeCounts();
      this.counts.set(type, counts);
    }
    return counts;
  }

  /**
   * A new record. It is kept in `records` (listed, counted against maxTasks)
   * unless `listed` is false (timers, found by walking Node's lists) or
   * maxTasks records are held (then counted as dropped).
   */
  newRecord(
    type: string,
    stack: StackEntry | undefined,
    labels: LabelSet | undefined,
    weight: number,
    resource: object | undefined,
    parent: TrackedTask | undefined,
    listed = true,
    weak = false,
  ): TrackedTask {
    const record = new TrackedTask(this.#nextId(), type, stack, labels, weight, resource, parent, weak);
    if (!listed || !this.roomForRecord()) return record;
    let byId = this.records.get(type);
    if (byId === undefined) {
      byId = new Map();
      this.records.set(type, byId);
    }
    byId.set(record.id, record);
    this.recordCount++;
    return record;
  }

  /** Ends a kept record: it leaves the listings and lets go of its resource. */
  endRecord(record: TrackedTask): void {
    if (!record.live) return;
    record.live = false;
    record.release();
    if (this.records.get(record.type)?.delete(record.id) === true) this.recordCount--;
  }

  /** Whether another record may be listed; counts the task as dropped when not. */
  roomForRecord(): boolean {
    if (this.recordCount < this.settings.maxTasks) return true;
    this.dropped++;
    return false;
  }

  recordsOf(type: string): number {
    return this.records.get(type)?.size ?? 0;
  }

  /** Listed records of a type that have a stack (promise records always do). */
  stackedRecordsOf(type: string): number {
    const records = this.records.get(type);
    if (records === undefined) return 0;
    if (type === 'Promise') return records.size;
    let stacked = 0;
    for (const record of records.values()) if (record.stack !== undefined) stacked++;
    return stacked;
  }
}
