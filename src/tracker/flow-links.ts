// Flows: which async function is suspended on which promise. V8's promise
// hooks name a derived promise's parent (what an `await` or `then` waits
// on) but not the async function that awaits; the frame under the hook
// does (docs/design.md, "Flows"): an await's first frame is the awaiting
// function at its await line, so the await belongs to that function's own
// promise: the one whose continuation is running now (resumed after an
// earlier await), or else the newest of that function's promises that has
// not suspended yet (its first run).
import type { LabelSet } from '../labels/labels.js';
import type { PromiseSite, PromiseSiteKind, StackEntry } from '../stacks/stack.js';
import type { TrackedTask } from './session.js';

/** A root promise's place in flows, kept on its record. */
export class RootLinks {
  /** The await its async function is suspended at, while that is live. */
  parkedAt: PromiseWait | undefined;
  /** Live awaits of this promise and thens on it. */
  waits: Set<PromiseWait> | undefined;
  /** How many waits were linked to it with their stacks, ever (see WAITS_ALWAYS_LINKED). */
  linkedWaits = 0;
  /** A combinator's live waits on its elements, in order, and how many it made. */
  members: Set<PromiseWait> | undefined;
  memberCount = 0;
  /** An async function's promise before its first tracked await. */
  running = false;
  /** An async generator's next() request: the generator body's function, once an await in it is linked here. */
  bodyFn: string | undefined;
  /** What was running when it was made: an async function's record, or a then whose callback ran. The one that returns it adopts it, most likely. */
  madeIn: TrackedTask | PromiseWait | undefined;
  /** `new Promise`: where it was constructed (PromiseSite.constructedAt). */
  constructedAt = '';
  constructor(
    readonly kind: PromiseSiteKind,
    /** The function of its first frame (see PromiseSite.fn). */
    readonly fn: string,
    readonly origin: string,
  ) {}
}

/** A derived promise on a tracked pending one: an `await`, a `then`, a combinator's then on an element, or V8's `then` for a promise that adopts it. */
export class PromiseWait {
  live = true;
  /** Live awaits and thens on this one (`await p.then(f)`). */
  waits: Set<PromiseWait> | undefined;
  /** A then whose callback returned a pending promise: V8's adopt then on that promise. */
  adopted: PromiseWait | undefined;
  /** An adopt made for a then (the promise was made in its callback): that then. */
  adopter: PromiseWait | undefined;
  readonly createdAt = Date.now();
  constructor(
    /** `unlinked`: a derived promise the stack budget gave no stack (see WAITS_ALWAYS_LINKED), most likely an await. */
    readonly kind: 'await' | 'then' | 'element' | 'adopt' | 'unlinked',
    /** What it waits on. */
    readonly on: TrackedTask | PromiseWait,
    /** The awaiting async function's record (await), the combinator's (element), or the adopting async function's (adopt). */
    public owner: TrackedTask | undefined,
    /** Where it was made: the await line, or the `.then` call; none for `unlinked`. */
    readonly site: StackEntry | undefined,
    /** The labels its reactions run with. */
    readonly labels: LabelSet | undefined,
  ) {}
}

export type FlowNode = TrackedTask | PromiseWait;

/**
 * A recorded promise's first waits always get their stacks (charged to the
 * stack budget, never refused), so a sampled promise's links say whether it
 * heads a flow; later ones are admitted by the budget like any capture,
 * which bounds what one long-lived promise awaited by every request costs.
 */
export const WAITS_ALWAYS_LINKED = 4;

function waitsOf(node: FlowNode): Set<PromiseWait> {
  if (node instanceof PromiseWait) return (node.waits ??= new Set());
  return (node.links!.waits ??= new Set());
}

/** A wait the budget refused a stack: it still holds what it waits on in a flow. */
export function unlinkedWait(on: FlowNode, labels: LabelSet | undefined): PromiseWait {
  const wait = new PromiseWait('unlinked', on, undefined, undefined, labels);
  waitsOf(on).add(wait);
  return wait;
}

// Async functions' records that have not suspended at a tracked await yet,
// newest last; stopped ones are dropped lazily (from the end, or when they
// are most of the list), so that starting and stopping stay O(1).
class RunningList {
  readonly list: TrackedTask[] = [];
  count = 0;

  add(record: TrackedTask): void {
    this.list.push(record);
    this.count++;
  }

  stopped(): void {
    this.count--;
    if (this.list.length > 32 && this.list.length > 2 * this.count) {
      // In place: a spread of a long list would overflow the call's arguments.
      let kept = 0;
      for (const record of this.list) if (record.live && record.links!.running) this.list[kept++] = record;
      this.list.length = kept;
    }
  }

  newest(): TrackedTask | undefined {
    const list = this.list;
    while (list.length > 0) {
      const record = list[list.length - 1]!;
      if (record.live && record.links!.running) return record;
      list.pop();
    }
    return undefined;
  }
}

// Whether a stack key captured shallower is the start of a deeper one's: made in the same call.
function sameCall(deeper: string, shallower: string): boolean {
  return deeper === shallower || deeper.startsWith(shallower + '\n');
}

/** One session's linking state. */
export class FlowLinker {
  // Async functions' records not yet suspended at a tracked await, by function.
  #running = new Map<string, RunningList>();
  // Async functions' records resumed from a tracked await and not parked
  // again since, by function, oldest first: one resumed and then suspended at
  // an await taskprof did not link (of a settled promise, say) runs on later
  // with no continuation of its own to tell it by.
  #unparked = new Map<string, Set<TrackedTask>>();
  // The newest combinator's promise, and the one it was made inside:
  // Promise.all([p, 1]) wraps the 1 in a promise whose first frame is
  // Promise.all too, and which settles at once.
  #combinator: TrackedTask | undefined;
  #outerCombinator: TrackedTask | undefined;
  // The newest async generator next() request: a body that runs inside next() awaits for it.
  #lastNext: TrackedTask | undefined;
  // The newest `new Promise`s: one whose executor runs `other.then(resolve, reject)` waits on other.
  #recentNew: TrackedTask[] = [];
  // The waits whose reactions are running (before/after), innermost last: an
  // await's continuation, a then's callback; undefined for one not linked.
  // Beside each, the newest record id when it began: a promise made since
  // is one that continuation made.
  #resumed: (PromiseWait | undefined)[] = [];
  #resumedMark: number[] = [];
  #newestId = 0;

  /** The async function whose continuation runs now, when an await of it is tracked. */
  get resumedOwner(): TrackedTask | undefined {
    const wait = this.#resumed[this.#resumed.length - 1];
    return wait?.kind === 'await' ? wait.owner : undefined;
  }

  // What runs now: a resumed async function, a then's callback, or (first
  // run) the newest running promise of the function under the new one's frame.
  #runningNow(callerFn: string): TrackedTask | PromiseWait | undefined {
    const wait = this.#resumed[this.#resumed.length - 1];
    if (wait !== undefined && wait.kind !== 'unlinked') return wait.kind === 'await' ? wait.owner : wait;
    return callerFn === '' ? undefined : this.#newestRunning(callerFn);
  }

  rootMade(record: TrackedTask, site: PromiseSite): void {
    const links = new RootLinks(site.kind, site.fn, site.origin);
    links.madeIn = this.#runningNow(site.callerFn);
    record.links = links;
    this.#newestId = record.id;
    if (site.kind === 'function') {
      links.running = true;
      let list = this.#running.get(site.fn);
      if (list === undefined) this.#running.set(site.fn, (list = new RunningList()));
      list.add(record);
    } else if (site.kind === 'combinator') {
      this.#outerCombinator = this.#combinator?.live === true ? this.#combinator : undefined;
      this.#combinator = record;
    } else if (site.kind === 'next') {
      this.#lastNext = record;
    } else if (site.kind === 'new' || site.kind === 'species') {
      links.constructedAt = site.constructedAt;
      this.#recentNew.push(record);
      if (this.#recentNew.length > 4) this.#recentNew.shift();
    }
  }

  /** A root settled, or (abandoned) was collected: then nothing waits on it any more either. */
  rootEnded(record: TrackedTask, abandoned: boolean): void {
    const links = record.links;
    if (links === undefined) return;
    if (links.running) this.#stopRunning(record, links);
    const parkedAt = links.parkedAt;
    links.parkedAt = undefined;
    // Nothing to keep: a live record made in this one must not hold a chain of
    // ended ones, nor a long-lived promise's waits this one's record
    // (`Promise.race([work, shutdown])`: the race ends, its then on shutdown lives on).
    links.madeIn = undefined;
    for (const wait of links.members ?? []) this.#endOwned(wait);
    links.members = undefined;
    if (parkedAt !== undefined) this.#endOwned(parkedAt);
    if (abandoned) for (const wait of links.waits ?? []) this.waitSettled(wait);
    this.#parked(record);
    if (this.#combinator === record) {
      this.#combinator = this.#outerCombinator;
      this.#outerCombinator = undefined;
    }
    if (this.#lastNext === record) this.#lastNext = undefined;
  }

  // A wait whose owner ended first: no longer part of a flow, and no longer holding the owner's record.
  #endOwned(wait: PromiseWait): void {
    this.waitSettled(wait);
    wait.owner = undefined;
  }

  #stopRunning(record: TrackedTask, links: RootLinks): void {
    links.running = false;
    const list = this.#running.get(links.fn);
    if (list === undefined) return;
    list.stopped();
    if (list.count === 0) this.#running.delete(links.fn);
  }

  // An async function's promise is suspended at `wait` now.
  #park(owner: TrackedTask, wait: PromiseWait): void {
    const links = owner.links!;
    links.parkedAt = wait;
    if (links.running) this.#stopRunning(owner, links);
    this.#parked(owner);
  }

  #parked(record: TrackedTask): void {
    const fn = record.links!.fn;
    const unparked = this.#unparked.get(fn);
    if (unparked?.delete(record) === true && unparked.size === 0) this.#unparked.delete(fn);
  }

  /** The owner an await in function `fn` belongs to. */
  #ownerOf(fn: string, labels: LabelSet | undefined): TrackedTask | undefined {
    const running = this.#newestRunning(fn);
    // One the running continuation made (a recursive call's first run) comes before the continuation itself.
    if (running !== undefined && running.id > (this.#resumedMark[this.#resumedMark.length - 1] ?? -1)) return running;
    const resumed = this.resumedOwner;
    if (resumed !== undefined && resumed.live && (resumed.links!.fn === fn || resumed.links!.bodyFn === fn)) return resumed;
    if (running !== undefined) return running;
    // The one resumed longest ago, of the same labels (its request's) if there is one.
    let first: TrackedTask | undefined;
    for (const record of this.#unparked.get(fn) ?? []) {
      if (record.labels === labels) return record;
      first ??= record;
    }
    return first;
  }

  #newestRunning(fn: string): TrackedTask | undefined {
    return this.#running.get(fn)?.newest();
  }

  // The newest `new Promise` (not `on`, not parked yet) whose executor is running: constructed where the then's callback's caller was.
  #executorOf(on: FlowNode, constructedAt: string): TrackedTask | undefined {
    if (constructedAt === '') return undefined;
    for (let i = this.#recentNew.length - 1; i >= 0; i--) {
      const record = this.#recentNew[i]!;
      if (record === on || !record.live || record.links!.parkedAt?.live === true) continue;
      if (record.links!.constructedAt === constructedAt) return record;
    }
    return undefined;
  }

  /** Links a derived promise on `on`, made at `site`; undefined when it is not a wait of a flow. */
  waitMade(on: FlowNode, site: PromiseSite, stack: StackEntry, labels: LabelSet | undefined): PromiseWait | undefined {
    let wait: PromiseWait;
    if (site.kind === 'function') {
      let owner = this.#ownerOf(site.fn, labels);
      // An async generator's body has no promise of its own: run by next()
      // (which made its request promise just before), it awaits for that
      // request, and so do its later awaits, resumed as that request's.
      if (owner === undefined && site.inGeneratorNext && this.#lastNext?.live === true) {
        owner = this.#lastNext;
        owner.links!.bodyFn = site.fn;
      }
      // `await v` of a value that is not a promise: V8 wraps it in a promise
      // made on the awaiting function's own: that function's, not a wait.
      if (owner === on) return undefined;
      wait = new PromiseWait('await', on, owner, stack, labels);
      if (owner !== undefined) this.#park(owner, wait);
    } else if (site.kind === 'element') {
      // Made inside the combinator's own call (the same stack), or its combinator has no record.
      const combinator = this.#combinator;
      const owner = combinator?.live === true && sameCall(combinator.stack!.key, stack.key) ? combinator : undefined;
      wait = new PromiseWait('element', on, owner, stack, labels);
      if (owner !== undefined) {
        (owner.links!.members ??= new Set()).add(wait);
        owner.links!.memberCount++;
      }
    } else if (site.kind === 'adopt') {
      // Adopted by what it was made in, most likely: `return g()` in an
      // async function, `.then(() => g())`; not by a function parked at an
      // await of its own (a promise made there and adopted elsewhere).
      const madeIn = on instanceof PromiseWait ? undefined : on.links!.madeIn;
      const owner = madeIn instanceof PromiseWait || madeIn?.live !== true || madeIn.links!.parkedAt?.live === true ? undefined : madeIn;
      wait = new PromiseWait('adopt', on, owner, stack, labels);
      if (owner !== undefined) {
        this.#park(owner, wait);
      } else if (madeIn instanceof PromiseWait && madeIn.live) {
        wait.adopter = madeIn;
        madeIn.adopted = wait;
      }
    } else if (site.kind === 'then') {
      // Made in a `new Promise` executor (`new Promise((resolve, reject) => other.then(resolve, reject))`): that promise waits on it.
      const owner = this.#executorOf(on, site.constructedAt);
      wait = new PromiseWait('then', on, owner, stack, labels);
      if (owner !== undefined) this.#park(owner, wait);
    } else {
      return undefined;
    }
    waitsOf(on).add(wait);
    return wait;
  }

  waitSettled(wait: PromiseWait): void {
    if (!wait.live) return;
    wait.live = false;
    (wait.on instanceof PromiseWait ? wait.on.waits : wait.on.links?.waits)?.delete(wait);
    const owner = wait.owner;
    const links = owner?.links;
    if (links !== undefined) {
      if (links.parkedAt === wait) {
        links.parkedAt = undefined;
        if (wait.kind === 'await' && owner!.live) {
          let unparked = this.#unparked.get(links.fn);
          if (unparked === undefined) this.#unparked.set(links.fn, (unparked = new Set()));
          unparked.add(owner!);
        }
      }
      links.members?.delete(wait);
    }
    if (wait.adopter?.adopted === wait) wait.adopter.adopted = undefined;
  }

  before(stamp: unknown): void {
    this.#resumed.push(stamp instanceof PromiseWait ? stamp : undefined);
    this.#resumedMark.push(this.#newestId);
  }

  after(): void {
    this.#resumed.pop();
    this.#resumedMark.pop();
  }

  stop(): void {
    this.#running.clear();
    this.#unparked.clear();
    this.#resumed.length = 0;
    this.#resumedMark.length = 0;
    this.#combinator = undefined;
    this.#outerCombinator = undefined;
    this.#lastNext = undefined;
    this.#recentNew.length = 0;
  }
}
