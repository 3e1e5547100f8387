// Timers without async_hooks (the `sampled` and `counts` modes). An accessor
// on Timeout.prototype sees every Timeout made, the app's, its libraries'
// and Node's own: the constructor's first assignment (`this._idleTimeout =
// after`) finds the accessor on the prototype, which defines the own property
// exactly as the assignment would have, so the object is as without taskprof.
// A timer ends (fires or is cleared) without an event JavaScript can see, but
// Node keeps every pending timer in one linked list per duration: a read
// counts the live ones by walking those lists. The lists are learned the same
// way, through TimersList's first assignment, and, for a list made before
// tracking started, from the first timer appended to it.
import asyncHooks from 'node:async_hooks';
import { labelContext, ownWork } from '../labels/labels.js';
import { timerCaptureDepth } from '../stacks/stack.js';
import type { Session, TrackedTask } from './session.js';
import { EXACT } from './stack-budget.js';
import { createOwnPropertyDefiner } from './stamp.js';
import { recordOf, resourceStamp } from './task-stamp.js';
import { runningRecord } from './running.js';

export const TIMEOUT_TYPE = 'Timeout';

interface TimerNode {
  _idleNext: TimerNode | null;
  _idlePrev: TimerNode | null;
  _destroyed?: boolean;
  msecs?: number;
}

interface TimerShapes {
  timeout: object;
  list: object;
}

// Found once, from a probe timer: the prototypes to put the accessors on.
let shapes: TimerShapes | undefined | null;

function findShapes(): TimerShapes | undefined {
  if (shapes !== undefined) return shapes ?? undefined;
  shapes = null;
  try {
    const probe = setTimeout(() => {}, 2 ** 31 - 1) as unknown as TimerNode;
    const list = probe._idleNext;
    clearTimeout(probe as unknown as NodeJS.Timeout);
    const timeout = Object.getPrototypeOf(probe) as object;
    if (list === null || typeof list.msecs !== 'number') return undefined;
    shapes = { timeout, list: Object.getPrototypeOf(list) as object };
  } catch {
    return undefined;
  }
  return shapes;
}

// The own properties the accessors stand in for, defined as the
// constructors' assignments would have.
const defineIdleTimeout = createOwnPropertyDefiner('_idleTimeout');
const defineIdleNext = createOwnPropertyDefiner('_idleNext');

export interface TimerTracking {
  /** Visits every live timer made since tracking started (`record` undefined for taskprof's own: skipped); returns how many. */
  walk(visit?: (record: TrackedTask) => void): number;
  stop(): void;
}

/** Installs the timer probes for `session`; undefined (with the reason) when Node's timers do not look as expected. */
export function trackTimers(session: Session): TimerTracking | string {
  const found = findShapes();
  if (found === undefined) return 'Node\'s timers do not have the shape taskprof expects';
  const { timeout, list } = found;
  if (Object.getOwnPropertyDescriptor(timeout, '_idleTimeout') !== undefined || Object.getOwnPropertyDescriptor(list, '_idleNext') !== undefined) {
    return 'Timeout.prototype already carries an accessor from another tool';
  }
  const counts = session.countsOf(TIMEOUT_TYPE);
  const { labelsOn } = session;
  // Lists that hold (or held) timers of this session, by duration; a list
  // replaced by a newer one of the same duration is dead and dropped.
  const lists = new Map<number, TimerNode>();
  const newLists: TimerNode[] = [];
  // Durations whose list is known, or will be caught when Node makes it.
  const covered = new Set<number>();
  let toFind: TimerNode[] = [];

  function learnNewLists(): void {
    for (const found of newLists) {
      const msecs = found.msecs;
      if (typeof msecs !== 'number') continue;
      lists.set(msecs, found);
      covered.add(msecs);
    }
    newLists.length = 0;
  }

  // Timers appended to a list made before tracking started: the list is
  // their `_idleNext` once Node has appended them, after the constructor.
  function findLists(): void {
    const timers = toFind;
    toFind = [];
    try {
      for (const timer of timers) {
        let node = timer._idleNext;
        for (let steps = 0; node !== null && node !== undefined && steps < 1_000_000; steps++) {
          if (Object.getPrototypeOf(node) === list) {
            if (typeof node.msecs === 'number') lists.set(node.msecs, node);
            break;
          }
          node = node._idleNext;
        }
      }
    } catch {
      // A list we cannot read is not counted; never throw into the app.
    }
  }

  function onTimer(timer: TimerNode, msecs: unknown): void {
    if (!session.live) return;
    const labels = labelContext.current;
    if (labels === ownWork) {
      resourceStamp.set(timer, ownWork);
      return;
    }
    // A timer's duration tells its sites apart: a leaking interval keeps a
    // budget class of its own beside the app's many short timeouts.
    let stack;
    let weight = EXACT;
    if (session.captureStacks) {
      const admitted = session.budget.admit(session.budget.timerClassOf(TIMEOUT_TYPE, labels, Number(msecs)));
      if (admitted > 0) {
        stack = session.captureStack(timerSetter, timerCaptureDepth);
        if (stack === null) {
          resourceStamp.setNew(timer, ownWork);
          return;
        }
        weight = admitted;
      }
    }
    const parent = labelsOn ? runningRecord(session) : undefined;
    const record = session.newRecord(TIMEOUT_TYPE, stack, labelsOn ? labels ?? parent?.labels : undefined, weight, timer, parent, false);
    if (!resourceStamp.setNew(timer, record)) return;
    counts.created++;
    // Lists made by earlier inserts have their duration by now.
    if (newLists.length > 0) learnNewLists();
    // Node appends the timer to the list of its duration after this
    // constructor: a list made since is caught by listSetter; one made
    // before tracking started is found from this timer, once.
    const duration = Math.trunc(Number(msecs));
    if (!covered.has(duration)) {
      if (covered.size > 10_000) covered.clear();
      covered.add(duration);
      if (toFind.length === 0) queueMicrotask(findLists);
      toFind.push(timer);
    }
  }

  const timerSetter = function (this: TimerNode, value: unknown): void {
    defineIdleTimeout(this, value);
    try {
      onTimer(this, value);
    } catch {
      // Never throw into the app.
    }
  };
  const listSetter = function (this: TimerNode, value: unknown): void {
    defineIdleNext(this, value);
    if (session.live) newLists.push(this);
  };
  // Both or neither (a frozen prototype refuses): then timers are not tracked, and the caller says so.
  if (!Object.isExtensible(timeout) || !Object.isExtensible(list)) return 'Node\'s Timeout or TimersList prototype is frozen or not extensible';
  Object.defineProperty(timeout, '_idleTimeout', { set: timerSetter, configurable: true });
  try {
    Object.defineProperty(list, '_idleNext', { set: listSetter, configurable: true });
  } catch (error) {
    delete (timeout as Record<string, unknown>)._idleTimeout;
    throw error;
  }

  return {
    walk(visit) {
      learnNewLists();
      if (toFind.length > 0) findLists();
      let live = 0;
      const count = (node: TimerNode): void => {
        const record = recordOf(resourceStamp.get(node));
        if (record === undefined || record.id < session.firstId) return;
        live++;
        visit?.(record);
      };
      for (const [msecs, head] of lists) {
        if (head._idleNext === head) {
          // Empty: Node drops it, or (while it runs this list's timers) may
          // append to it again; forgetting the duration makes the next timer
          // of it find the list again either way.
          lists.delete(msecs);
          covered.delete(msecs);
          continue;
        }
        for (let node = head._idleNext; node !== null && node !== head; node = node._idleNext) count(node);
      }
      // A timer whose callback is running is in no list, and still live.
      const running = asyncHooks.executionAsyncResource() as TimerNode | undefined;
      if (running !== undefined && running !== null && Object.getPrototypeOf(running) === timeout && running._idleNext === null && running._destroyed !== true) {
        count(running);
      }
      return live;
    },
    stop() {
      if (Object.getOwnPropertyDescriptor(timeout, '_idleTimeout')?.set === timerSetter) delete (timeout as Record<string, unknown>)._idleTimeout;
      if (Object.getOwnPropertyDescriptor(list, '_idleNext')?.set === listSetter) delete (list as Record<string, unknown>)._idleNext;
      lists.clear();
      covered.clear();
      newLists.length = 0;
      toFind = [];
    },
  };
}
