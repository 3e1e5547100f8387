// Flows at listing time: the pending promises linked by awaiting
// (tracker/flow-links.ts) folded into one task per flow, its head: the
// promise nobody awaits. A head is listed where the flow is parked (the
// innermost wait, then each awaiting function at its await line), where it
// started (the head's creation stack), and what it waits for.
import { TrackedTask } from '../tracker/session.js';
import { PromiseWait, type FlowNode, type RootLinks } from '../tracker/flow-links.js';
import { PROMISE_TYPE, type TaskRecord } from '../tracker/types.js';
import { framesOf, type StackEntry, type StackFrame } from '../stacks/stack.js';
import { clientRequestOf, describeTask } from './describe.js';

export interface FlowView {
  /** Innermost first: the innermost pending promise's line, then each await and then of the chain, outermost last. */
  parkedAt: StackFrame[];
  /** The head's creation stack. */
  startedAt: StackFrame[];
  /** What the innermost promise waits for, as far as taskprof can tell (the same text for every flow of a group). */
  waitsFor: string;
  /** The task it waits on, when taskprof matched one (a timer, socket or request): its id. */
  waitsOn: number | undefined;
  /** Date.now() when the flow last parked: its newest await (or its innermost promise's creation). */
  waitingSince: number;
  /** parkedAt then startedAt: a flow's stack. */
  frames: StackFrame[];
  /** parkedAt's positions as one key (what groups flows, beside the head's stack). */
  parkedKey: string;
}

/** Where a flow is and what it waits for, shared by every flow of one made at one stack. */
interface FlowPlace {
  parkedAt: StackFrame[];
  startedAt: StackFrame[];
  frames: StackFrame[];
  parkedKey: string;
}

// (Written out, not spread: every view then has one shape.)
function viewAt(place: FlowPlace, reason: { text: string; on?: TaskRecord }, waitingSince: number): FlowView {
  return { parkedAt: place.parkedAt, startedAt: place.startedAt, frames: place.frames, parkedKey: place.parkedKey, waitsFor: reason.text, waitsOn: reason.on?.id, waitingSince };
}

function placeOf(parkedAt: StackFrame[], startedAt: StackFrame[]): FlowPlace {
  return { parkedAt, startedAt, frames: [...parkedAt, ...startedAt], parkedKey: parkedAt.map(positionKey).join('|') };
}

const samePosition = (a: StackFrame, b: StackFrame): boolean => a.file === b.file && a.line === b.line && a.column === b.column;
/** A frame's place as a key: file, line and column. */
export const positionKey = (frame: StackFrame): string => `${frame.file}:${frame.line}:${frame.column}`;

function isPromiseRecord(record: TaskRecord): record is TrackedTask {
  return record.type === PROMISE_TYPE && record instanceof TrackedTask && record.links !== undefined;
}

// Whether a wait is part of a flow whose head is elsewhere: an await (its
// function is suspended on it, so that function's promise is pending, with
// a record or not, and carries the flow on), V8's then for a promise that
// adopts it (that promise carries it on; V8 does not say which one it is),
// a combinator's then on an element while the combinator is pending (or
// its combinator has no record), or a then that is itself awaited.
function directlyHeld(wait: PromiseWait): boolean | undefined {
  if (!wait.live) return false;
  if (wait.kind === 'await' || wait.kind === 'unlinked') return true;
  if (wait.kind === 'element') return wait.owner?.live ?? true;
  // A then made in a `new Promise` executor: that promise waits on it.
  if (wait.kind === 'then' && wait.owner !== undefined) return wait.owner.live;
  // An adopting then that nobody awaits (`p.then(() => g())`): the adopted promise heads the flow.
  if (wait.kind === 'adopt') return wait.owner?.live ?? (wait.adopter === undefined ? true : undefined);
  return undefined;
}

// What a wait's answer hangs on when it has none of its own: an adopt's then, a then's own waits.
function dependenciesOf(wait: PromiseWait): PromiseWait[] {
  if (wait.kind === 'adopt') return wait.adopter === undefined ? [] : [wait.adopter];
  return wait.waits === undefined ? [] : [...wait.waits];
}

// Whether `wait` holds what it waits on, followed without recursion (a
// chain `tail = tail.then(job)` may be thousands of thens long), each wait
// answered once per listing.
function held(wait: PromiseWait, memo: Map<PromiseWait, boolean>): boolean {
  const direct = directlyHeld(wait);
  if (direct !== undefined) return direct;
  const known = memo.get(wait);
  if (known !== undefined) return known;
  const stack: { wait: PromiseWait; dependencies: PromiseWait[]; at: number }[] = [{ wait, dependencies: dependenciesOf(wait), at: 0 }];
  const onPath = new Set<PromiseWait>([wait]);
  const finish = (value: boolean): void => {
    // A held dependency holds every dependant on the path too.
    do {
      const frame = stack.pop()!;
      memo.set(frame.wait, value);
      onPath.delete(frame.wait);
    } while (value && stack.length > 0);
  };
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    if (frame.at >= frame.dependencies.length) {
      finish(false);
      continue;
    }
    const next = frame.dependencies[frame.at++]!;
    const value = directlyHeld(next) ?? memo.get(next) ?? (onPath.has(next) ? false : undefined);
    if (value === true) finish(true);
    else if (value === undefined) {
      onPath.add(next);
      stack.push({ wait: next, dependencies: dependenciesOf(next), at: 0 });
    }
  }
  return memo.get(wait)!;
}

function firstHeld(node: FlowNode, memo: Map<PromiseWait, boolean>): PromiseWait | undefined {
  const waits = node instanceof PromiseWait ? node.waits : node.links?.waits;
  for (const wait of waits ?? []) if (held(wait, memo)) return wait;
  return undefined;
}

/** The flows among a listing's records: which promise records are heads, and each head's view. */
export class FlowIndex {
  #inner = new Set<TaskRecord>();
  // Live records of other types that have a stack, by the position of their
  // first and second frames (a timer or socket made in a `new Promise`
  // executor, or by the same Node call), in the order they were made.
  #byExecutor: Map<string, TaskRecord[]> | undefined;
  #resources: TaskRecord[];
  // Outbound requests, stack or not: under `full` a request's task is made later, off the app's stack, and its socket stands for it there.
  #requests: TaskRecord[];
  #requestBySocket: Map<object, TaskRecord> | undefined;
  // Nodes known to lead out to a head (not around a cycle), and what each wait was found to hold.
  #reachesHead = new Set<FlowNode>();
  #heldMemo = new Map<PromiseWait, boolean>();
  // Flows of one (a pending promise nobody awaits, parked at nothing) by their stack: most heads, in a leak of many.
  #placesOfOne = new Map<StackEntry, FlowPlace>();
  #sameCallCandidates = new Map<StackEntry, TaskRecord[]>();
  #executorCandidates = new Map<StackEntry, TaskRecord[]>();

  /** The linked promise records among those given: heads and inner ones. */
  readonly promises: TrackedTask[] = [];

  constructor(records: readonly TaskRecord[]) {
    const promises = this.promises;
    this.#resources = [];
    this.#requests = [];
    for (const record of records) {
      if (isPromiseRecord(record)) promises.push(record);
      else if (record.stack !== undefined) this.#resources.push(record);
      if (record.type === 'HTTPCLIENTREQUEST') this.#requests.push(record);
    }
    // A subclass's then's promise (Node's SafePromise plumbing) is a waiter, as a then's is: never a flow's head.
    for (const record of promises) if (firstHeld(record, this.#heldMemo) !== undefined || record.links!.kind === 'species') this.#inner.add(record);
    // A cycle of awaits (each awaiting the next) has no head: one of its promises stands for it.
    for (const record of promises) if (this.#inner.has(record) && this.#inCycle(record)) this.#inner.delete(record);
  }

  // Follows what holds a promise outwards (the awaiting function, the
  // combinator, the then that is awaited) until a head, or back to itself.
  #inCycle(record: TrackedTask): boolean {
    const seen = new Set<FlowNode>([record]);
    let node: FlowNode = record;
    let cycle = false;
    for (;;) {
      const wait = firstHeld(node, this.#heldMemo);
      // Adopted by a promise V8 does not name: not a cycle of awaits.
      if (wait === undefined || wait.kind === 'adopt') break;
      const next: FlowNode = wait.owner ?? wait.adopter ?? wait;
      if (next === record) {
        cycle = true;
        break;
      }
      // Into a cycle that does not pass through `record`: its own members find it.
      if (seen.has(next)) return false;
      if (this.#reachesHead.has(next) || (next instanceof TrackedTask && !this.#inner.has(next))) break;
      seen.add(next);
      node = next;
    }
    if (!cycle) for (const visited of seen) this.#reachesHead.add(visited);
    return cycle;
  }

  /** How many of the records are flows' inner promises. */
  get innerCount(): number {
    return this.#inner.size;
  }

  /** Whether a record is a flow's inner promise, listed in its head's flow. */
  isInner(record: TaskRecord): boolean {
    return this.#inner.has(record);
  }

  /** Records that are tasks of their own: every record but the flows' inner promises. */
  tasksOf(records: readonly TaskRecord[]): TaskRecord[] {
    return records.filter((record) => !this.#inner.has(record));
  }

  /** A head's flow; undefined for a record that is not a linked promise. */
  view(record: TaskRecord): FlowView | undefined {
    if (!isPromiseRecord(record)) return undefined;
    return this.#follow(record);
  }

  // Walks the chain from the head inwards: each await to what it waits on,
  // a then to its promise, a combinator to its first pending element.
  #follow(head: TrackedTask): FlowView {
    const links = head.links!;
    if (links.parkedAt?.live !== true && (links.members === undefined || links.members.size === 0)) {
      let place = this.#placesOfOne.get(head.stack!);
      if (place === undefined) this.#placesOfOne.set(head.stack!, (place = placeOf(this.#innermostFrames(head, head, undefined), framesOf(head.stack!))));
      return viewAt(place, this.#reasonOf(head), head.createdAt);
    }
    const waitFrames: StackFrame[] = [];
    const seen = new Set<FlowNode>();
    let node: FlowNode = head;
    let waitingSince = head.createdAt;
    let combinator = '';
    let runnable = false;
    while (!seen.has(node)) {
      seen.add(node);
      let next: PromiseWait | undefined;
      if (node instanceof PromiseWait) {
        // A then: its callback's pending promise, once it returned one; else what it waits on.
        next = node.adopted?.live === true ? node.adopted : node;
      } else {
        const links: RootLinks = node.links!;
        if (links.parkedAt?.live === true) next = links.parkedAt;
        else if (links.members !== undefined && links.members.size > 0) {
          const pending = [...links.members].filter((m: PromiseWait) => m.live && m.on.live);
          if (pending.length > 0) {
            combinator = `${functionOf(node)} on ${pending.length} of ${links.memberCount} promises`;
            next = pending[0];
          }
        }
      }
      if (next === undefined) break;
      const frame = next.site === undefined ? undefined : framesOf(next.site)[0];
      // The first element's then (made inside Promise.all) has no line of its own.
      if (frame !== undefined && next.owner?.links?.kind !== 'combinator') waitFrames.push(frame);
      if (next.createdAt > waitingSince) waitingSince = next.createdAt;
      if (!next.on.live) {
        runnable = true;
        break;
      }
      node = next.on;
    }
    const innermost = node instanceof PromiseWait ? undefined : node;
    const innermostFrames = innermost === undefined ? [] : this.#innermostFrames(innermost, head, waitFrames[waitFrames.length - 1]);
    // An await of a then on the same line, say, is one line.
    const parkedAt = [...innermostFrames, ...waitFrames.reverse()].filter((frame, i, all) => i === 0 || !samePosition(frame, all[i - 1]!));
    const reason = runnable ? { text: 'nothing: resumes on the next microtask' } : combinator ? { text: combinator } : innermost === undefined ? { text: 'a then callback' } : this.#reasonOf(innermost);
    return viewAt(placeOf(parkedAt, framesOf(head.stack!)), reason, waitingSince);
  }

  // The innermost promise's creation frames down to the line that awaits it (its caller, as a sync frame), or its first two.
  #innermostFrames(innermost: TrackedTask, head: TrackedTask, awaitedAt: StackFrame | undefined): StackFrame[] {
    const frames = framesOf(innermost.stack!);
    // A flow of one (or linked by thens only): the line that made it, and the line that called that.
    if (innermost === head || awaitedAt === undefined) return frames.slice(0, 2);
    const cut = frames.findIndex((f) => f.file === awaitedAt.file && f.line === awaitedAt.line);
    // Made on the await's own line (`await new Promise(...)`, `await once(...)`): that line says it.
    if (cut === 0) return [];
    return frames.slice(0, cut > 0 ? Math.min(cut, 4) : 1);
  }

  // What the innermost promise waits for, and the task it waits on when one was matched (named per flow, not in the group's text).
  #reasonOf(innermost: TrackedTask): { text: string; on?: TaskRecord } {
    const links = innermost.links!;
    const origin = links.origin;
    const on = this.#madeWith(innermost, origin !== '');
    const of = on === undefined ? '' : `: ${resourceText(on)}`;
    if (origin.startsWith('node:timers/promises')) return { text: 'a timer (timers/promises ' + origin.slice(origin.indexOf(' ') + 1) + ')' + of, on };
    if (origin.startsWith('node:events ')) return { text: `an event (events.${origin.slice('node:events '.length)})` };
    if (origin.includes('undici') || origin.endsWith(' fetch')) return { text: 'an outbound request (fetch)' + of, on };
    if (origin.includes('streams')) return { text: 'a stream read' + of, on };
    if (on !== undefined) return { text: resourceText(on), on };
    if (links.kind === 'new') return { text: 'its resolver, held elsewhere' };
    if (links.kind === 'next') return { text: "an async generator's next value" };
    if (links.kind === 'function') return { text: 'an await taskprof did not see (a promise made before tracking began, or over the stack budget)' };
    if (links.kind === 'combinator') return { text: `${functionOf(innermost)} on promises taskprof did not see` };
    return { text: origin === '' ? 'its resolver, held elsewhere' : `${origin.slice(origin.indexOf(' ') + 1)} (${origin.slice(0, origin.indexOf(' '))})` };
  }

  // A timer, socket or request made for the promise: in its executor
  // (`new Promise((r) => setTimeout(r, ms))`: the resource's second frame is
  // the promise's first), or by the same Node call (`timers/promises`: the
  // same frames); the first made after the promise (a request comes before
  // its socket), or for the same call the nearest.
  #madeWith(innermost: TrackedTask, sameFrames: boolean): TaskRecord | undefined {
    const frames = framesOf(innermost.stack!);
    const first = frames[0];
    if (first === undefined) return undefined;
    const offset = sameFrames ? 0 : 1;
    const candidates = this.#candidatesAt(innermost.stack!, offset);
    if (candidates.length === 0) return undefined;
    // Ids grow as records are made: the first candidate made after the promise, found by bisection.
    let low = 0;
    let high = candidates.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (candidates[middle]!.id <= innermost.id) low = middle + 1;
      else high = middle;
    }
    const matches = (resource: TaskRecord): boolean => {
      const resourceFrames = framesOf(resource.stack!);
      const n = Math.min(frames.length, resourceFrames.length - offset);
      for (let i = 1; i < n; i++) if (!samePosition(frames[i]!, resourceFrames[i + offset]!)) return false;
      return true;
    };
    let found: TaskRecord | undefined;
    for (let at = low; at < candidates.length && found === undefined; at++) if (matches(candidates[at]!)) found = candidates[at];
    // The same Node call may make its timer before the promise it returns (timers/promises with a signal): the nearer one.
    if (sameFrames) {
      for (let at = low - 1; at >= 0; at--) {
        const before = candidates[at]!;
        if (!matches(before)) continue;
        if (found === undefined || innermost.id - before.id < found.id - innermost.id) found = before;
        break;
      }
    }
    return found?.type === 'TCPWRAP' ? (this.#requestOn(found) ?? found) : found;
  }

  // The resources whose frame at `offset` is a stack's first, by stack (many flows share one).
  #candidatesAt(stack: StackEntry, offset: number): TaskRecord[] {
    const cache = offset === 0 ? this.#sameCallCandidates : this.#executorCandidates;
    let list = cache.get(stack);
    if (list === undefined) {
      const first = framesOf(stack)[0]!;
      cache.set(stack, (list = this.#executorIndex().get(`${offset}\0${positionKey(first)}`) ?? []));
    }
    return list;
  }

  #executorIndex(): Map<string, TaskRecord[]> {
    if (this.#byExecutor !== undefined) return this.#byExecutor;
    const index = new Map<string, TaskRecord[]>();
    for (const resource of this.#resources) {
      const resourceFrames = framesOf(resource.stack!);
      for (const at of [0, 1]) {
        const frame = resourceFrames[at];
        if (frame === undefined) continue;
        const key = `${at}\0${positionKey(frame)}`;
        let list = index.get(key);
        if (list === undefined) index.set(key, (list = []));
        list.push(resource);
      }
    }
    for (const list of index.values()) list.sort((a, b) => a.id - b.id);
    return (this.#byExecutor = index);
  }

  // The outbound request a socket was made for: the socket itself, or (under `full`, whose TCPWRAP is the handle) its handle.
  #requestOn(socketRecord: TaskRecord): TaskRecord | undefined {
    const socket = socketRecord.resource;
    if (socket === undefined) return undefined;
    if (this.#requestBySocket === undefined) {
      this.#requestBySocket = new Map();
      for (const record of this.#requests) {
        const request = record.resource === undefined ? undefined : clientRequestOf(record.resource);
        const on = request?.socket as (object & { _handle?: object | null }) | null | undefined;
        if (on == null) continue;
        this.#requestBySocket.set(on, record);
        if (on._handle != null) this.#requestBySocket.set(on._handle, record);
      }
    }
    return this.#requestBySocket.get(socket);
  }
}

const typeNames: Record<string, string> = {
  Timeout: 'a timer',
  TCPWRAP: 'a socket',
  HTTPCLIENTREQUEST: 'an outbound request',
  TCPSERVERWRAP: 'a server',
  PROCESSWRAP: 'a child process',
  FSREQPROMISE: 'a file operation',
};

function resourceText(resource: TaskRecord): string {
  const detail = describeTask(resource, false);
  return (typeNames[resource.type] ?? resource.type) + (detail ? ' ' + detail : '');
}

function functionOf(record: TrackedTask): string {
  return record.links!.fn || 'a promise combinator';
}
