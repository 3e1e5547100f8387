// Promises, counted exactly with V8's promise hooks: every root promise (not
// the then/await waiters chained on one) is counted when made and when it
// settles. A pending promise nobody references is garbage collected without
// settling; a FinalizationRegistry finds those, through a small state object
// only the promise references (registering the promise itself would keep it
// alive through every scavenge: docs/design.md). Under `full` each state is
// registered when made; otherwise only states still pending at the next
// flush that finds them pending at least a tenth of a second after they
// were made (flushes come every tenth of a second, and once a thousand
// states wait). That spares the registry (170 ns and a survival of every
// scavenge per registration) the many promises that settle within a request,
// and keeps the states that wait few and young (a longer wait had them
// promoted, and cost more in collections than everything else here).
import v8 from 'node:v8';
import { labelContext, ownWork, type LabelSet } from '../labels/labels.js';
import { promiseCaptureDepth, waitCaptureDepth } from '../stacks/stack.js';
import { FlowLinker, PromiseWait, WAITS_ALWAYS_LINKED, unlinkedWait, type FlowNode } from './flow-links.js';

// The stack budget's class for a promise's waits past its first few (per route).
const WAIT_CLASS = 'Promise wait';
import { TrackedTask, type Session, type TypeCounts } from './session.js';
import { EXACT, type CaptureWindow } from './stack-budget.js';
import { PromiseTask, Tombstone, labelsOf, promiseStamp } from './task-stamp.js';
import { PROMISE_TYPE } from './types.js';
import { runningRecord } from './running.js';

// Promise states waiting before a flush is due (more while many are young and pending).
const nurseryLimit = 128;

export interface PromiseTracking {
  /** Called every tenth of a second: registers the states of promises still pending a period after they were made. */
  tick(): void;
  stop(): void;
}

export interface PromiseTrackingOptions {
  /** Register every state when made (full) instead of at the next flush. */
  eagerFinalization: boolean;
  /** Whether promise reactions carry labels (false where the resource hook does it). */
  carryLabels: boolean;
  /** Called when a record ends: it leaves the route tally and the abandoned-site list. */
  onRecordEnd(record: TrackedTask, abandoned: boolean): void;
}

export function trackPromises(session: Session, options: PromiseTrackingOptions): PromiseTracking {
  const counts: TypeCounts = session.countsOf(PROMISE_TYPE);
  const { routes, captureStacks, labelsOn, budget } = session;
  const eager = options.eagerFinalization;
  let nursery: PromiseTask[] = [];
  let flushAt = nurseryLimit;
  // Flush periods: a state is registered once it is a whole period old.
  let period = 0;
  // Flows are linked where stacks are captured: the frame under the hook says what a promise is.
  const linker = captureStacks ? new FlowLinker() : undefined;
  const carryLabels = options.carryLabels;

  function flush(): void {
    const pending = nursery;
    nursery = [];
    for (const task of pending) {
      if (!task.live) continue;
      if (task.period < period) register(task);
      else nursery.push(task);
    }
    flushAt = Math.max(nurseryLimit, 2 * nursery.length);
  }

  const finalization = new FinalizationRegistry<Tombstone>((tomb) => {
    try {
      if (!tomb.live || !session.live) return;
      tomb.live = false;
      tomb.counts.abandoned++;
      if (tomb.unrecordedIn !== undefined) budget.endUnrecorded(tomb.unrecordedIn);
      if (tomb.labels !== undefined) routes.remove(tomb.labels, 1);
      if (tomb.record !== undefined) {
        linker?.rootEnded(tomb.record, true);
        options.onRecordEnd(tomb.record, true);
      }
    } catch {
      // Never throw into the app's event loop.
    }
  });

  function register(task: PromiseTask): void {
    const tomb = new Tombstone(task.counts, task.labels, task.record, task.unrecordedIn);
    task.tomb = tomb;
    finalization.register(task, tomb);
  }

  // Derived promises (then/catch/finally and the one V8 makes for each
  // `await`) have a parent: waiters on a task, not tasks. They carry the
  // labels in force, for their reactions: the app's, or (in every mode,
  // `counts` too) taskprof's own-work scope, whose promises are not counted.
  // One that waits on a tracked pending promise is linked into its flow.
  function init(promise: Promise<unknown>, parent: Promise<unknown> | undefined): void {
    const labels = labelContext.current;
    if (parent !== undefined) {
      if (linker === undefined || labels === ownWork || !linkWait(promise, parent, labels)) {
        if (labels !== undefined) promiseStamp.setNew(promise, labels);
      }
      return;
    }
    if (labels === ownWork) return;
    try {
      let record: TrackedTask | undefined;
      let window: CaptureWindow | undefined;
      if (captureStacks) {
        const cls = budget.unlimited ? undefined : budget.classOf(PROMISE_TYPE, labels);
        const weight = !session.roomForRecord() ? 0 : cls === undefined ? EXACT : budget.admit(cls);
        if (cls !== undefined) window = budget.windowOf(cls);
        if (weight > 0) {
          const captured = session.capturePromise(init, promiseCaptureDepth);
          // taskprof's own promise, made outside its own-work scope: not the app's.
          if (captured === null) return;
          const parentRecord = runningRecord(session);
          record = session.newRecord(PROMISE_TYPE, captured.stack, labels ?? parentRecord?.labels, weight, undefined, parentRecord);
          record.sampledIn = window;
          linker?.rootMade(record, captured.site);
        }
      }
      counts.created++;
      const unrecordedIn = record === undefined ? window : undefined;
      const task = new PromiseTask(counts, labelsOn ? labels : undefined, record, period, unrecordedIn);
      if (!promiseStamp.setNew(promise, task)) {
        // Cannot be followed to its end: not counted at all.
        counts.created--;
        if (record !== undefined) {
          linker?.rootEnded(record, false);
          session.endRecord(record);
        }
        return;
      }
      if (unrecordedIn !== undefined) budget.addUnrecorded(unrecordedIn);
      if (task.labels !== undefined) routes.add(task.labels, 1);
      if (eager) register(task);
      else if (nursery.push(task) >= flushAt) flush();
    } catch {
      // Never throw into the app.
    }
  }

  // A wait's stack: its promise's first waits always (charged to the budget), later ones as the budget admits.
  function linkWait(promise: Promise<unknown>, parent: Promise<unknown>, labels: LabelSet | undefined): boolean {
    try {
      const target = promiseStamp.get(parent);
      let on: FlowNode;
      if (target instanceof PromiseTask) {
        // (A previous session's promise is not this one's to link.)
        if (!target.live || target.counts !== counts || target.record?.links === undefined) return false;
        on = target.record;
      } else if (target instanceof PromiseWait) {
        if (!target.live) return false;
        on = target;
      } else {
        return false;
      }
      // A resumed async function awaiting a value that is not a promise (V8's wrapper on its own promise).
      if (on === linker!.resumedOwner) return false;
      // A recorded promise's first waits say whether it heads a flow, so its
      // weight stands for flows when its class is sampled (WAITS_ALWAYS_LINKED).
      if (on instanceof TrackedTask && on.links!.linkedWaits++ >= WAITS_ALWAYS_LINKED && !budget.unlimited && budget.admit(budget.classOf(WAIT_CLASS, labels)) === 0) {
        const unlinked = unlinkedWait(on, labels);
        if (promiseStamp.setNew(promise, unlinked)) return true;
        linker!.waitSettled(unlinked);
        return false;
      }
      const captured = session.capturePromise(init, waitCaptureDepth);
      if (captured === null) return false;
      const wait = linker!.waitMade(on, captured.site, captured.stack, labels);
      if (wait === undefined) return false;
      if (!promiseStamp.setNew(promise, wait)) {
        linker!.waitSettled(wait);
        return false;
      }
      return true;
    } catch {
      return false;
    }
  }

  function settled(promise: Promise<unknown>): void {
    const task = promiseStamp.get(promise);
    if (task instanceof PromiseWait) {
      try {
        linker?.waitSettled(task);
      } catch {
        // Never throw into the app.
      }
      return;
    }
    if (!(task instanceof PromiseTask) || !task.live || task.counts !== counts) return;
    task.live = false;
    counts.completed++;
    if (task.tomb !== undefined) task.tomb.live = false;
    if (task.unrecordedIn !== undefined) budget.endUnrecorded(task.unrecordedIn);
    if (task.labels !== undefined) routes.remove(task.labels, 1);
    if (task.record !== undefined) {
      try {
        linker?.rootEnded(task.record, false);
      } catch {
        // Never throw into the app.
      }
      options.onRecordEnd(task.record, false);
    }
  }

  // Labels saved by `before`, put back by `after`; the linker notes whose continuation runs.
  const saved: (LabelSet | undefined)[] = [];
  function before(promise: Promise<unknown>): void {
    const stamp = promiseStamp.get(promise);
    if (carryLabels) {
      saved.push(labelContext.current);
      labelContext.current = labelsOf(stamp);
    }
    // (The linker's before and after only push and pop: nothing to throw.)
    linker?.before(stamp);
  }
  function after(): void {
    if (carryLabels) labelContext.current = saved.pop();
    linker?.after();
  }

  const stopHooks = v8.promiseHooks.createHook(carryLabels || linker !== undefined ? { init, settled, before, after } : { init, settled }) as () => void;

  return {
    tick() {
      flush();
      period++;
    },
    stop() {
      stopHooks();
      nursery = [];
      linker?.stop();
      // Stopped from inside a continuation (a leak check ending, say), the
      // `after` hooks that would put the labels back never run: put back the
      // labels in force outside every continuation now.
      if (saved.length > 0) labelContext.current = saved[0];
      saved.length = 0;
    },
  };
}

