// `full` tracking of everything else Node reports: an async_hooks hook sees
// every async resource (sockets, servers, timers, fs and dns requests,
// incoming requests...), with a stack for each, and carries labels into
// every callback. Some resources end only when collected (their destroy
// comes from the garbage collector), so records see them weakly.
import asyncHooks from 'node:async_hooks';
import { labelContext, ownWork, type LabelSet } from '../labels/labels.js';
import { resourceCaptureDepth, timerCaptureDepth, type StackEntry } from '../stacks/stack.js';
import type { Session, TrackedTask } from './session.js';
import { EXACT } from './stack-budget.js';
import { labelsOf, promiseStamp, resourceStamp } from './task-stamp.js';
import { runningRecord } from './running.js';

// Not pending work: callbacks that always run within this turn (nextTick,
// microtasks), promises (tracked on their own) and the callback bindings
// Node 22+ makes per stream.finished() call. Immediates stay: they run on
// the next turn, and a leak check must wait for what they will start.
export const ignoredResourceTypes: ReadonlySet<string> = new Set(['PROMISE', 'TickObject', 'Microtask', 'STREAM_END_OF_STREAM', 'bound-anonymous-fn']);

export interface ResourceTracking {
  /**
   * Ends the records of timers cleared or fired since: Node runs destroy
   * hooks a turn of the loop later, and a read must not see them live.
   */
  sweep(): void;
  stop(): void;
}

export interface ResourceTrackingOptions {
  /** Whether before/after carry labels (where the hook also sees promises, it carries theirs too). */
  carryLabels: boolean;
}

export function trackResources(session: Session, options: ResourceTrackingOptions): ResourceTracking {
  const byAsyncId = new Map<number, TrackedTask>();
  const { routes } = session;

  function init(asyncId: number, type: string, _trigger: number, resource: object): void {
    try {
      const labels = labelContext.current;
      if (ignoredResourceTypes.has(type)) {
        // Not a task, but its callback carries on the work of the task that
        // scheduled it: tasks made there are that task's, with its labels.
        // (A PROMISE resource is the promise itself, with its own state.)
        if (type !== 'PROMISE') {
          const running = runningRecord(session);
          const carried = running ?? labels;
          if (carried !== undefined) resourceStamp.set(resource, carried);
        }
        return;
      }
      if (labels === ownWork) {
        resourceStamp.set(resource, ownWork);
        return;
      }
      let stack: StackEntry | undefined;
      if (session.roomForRecord()) {
        const captured = session.captureStack(init, type === 'Timeout' ? timerCaptureDepth : resourceCaptureDepth);
        if (captured === null) {
          resourceStamp.set(resource, ownWork);
          return;
        }
        stack = captured;
      }
      const parent = runningRecord(session);
      const record = session.newRecord(type, stack, labels ?? parent?.labels, EXACT, resource, parent, stack !== undefined, true);
      resourceStamp.set(resource, record);
      byAsyncId.set(asyncId, record);
      const counts = session.countsOf(type);
      counts.created++;
      counts.live++;
      if (record.labels !== undefined) routes.add(record.labels, 1);
    } catch {
      // Never throw into the app.
    }
  }

  function destroy(asyncId: number): void {
    const record = byAsyncId.get(asyncId);
    if (record === undefined) return;
    byAsyncId.delete(asyncId);
    end(record);
  }

  function end(record: TrackedTask): void {
    if (!record.live) return;
    try {
      const counts = session.countsOf(record.type);
      counts.completed++;
      counts.live--;
      if (record.labels !== undefined) routes.remove(record.labels, 1);
      session.endRecord(record);
    } catch {
      // Never throw into the app (a throw in a destroy hook ends the process).
    }
  }

  // Callbacks of every resource run with the labels of their creation.
  const saved: (LabelSet | undefined)[] = [];
  function before(): void {
    saved.push(labelContext.current);
    const resource = asyncHooks.executionAsyncResource() as object | undefined;
    labelContext.current = resource === undefined || resource === null ? undefined : labelsOf(resourceStamp.get(resource) ?? promiseStamp.get(resource));
  }
  function after(): void {
    labelContext.current = saved.pop();
  }

  const hook = asyncHooks.createHook({
    init,
    destroy,
    ...(options.carryLabels ? { before, after } : {}),
    trackPromises: false,
  } as asyncHooks.HookCallbacks);
  hook.enable();
  const restorePromiseIds = hideNodePromiseIds();
  return {
    sweep() {
      const timers = session.records.get('Timeout');
      if (timers === undefined) return;
      for (const record of timers.values()) {
        if ((record.resource as { _destroyed?: boolean } | undefined)?._destroyed === true) end(record);
      }
    },
    stop() {
      hook.disable();
      restorePromiseIds();
      byAsyncId.clear();
      if (saved.length > 0) labelContext.current = saved[0];
      saved.length = 0;
    },
  };
}

/**
 * Where an enabled async_hooks hook makes Node assign its async ids to every
 * promise (Node before trackPromises: false), they would be enumerable own
 * properties: spreading copies them and deepStrictEqual of two pending
 * promises fails. Accessors on Promise.prototype catch Node's assignments and
 * define the ids non-enumerable instead (Node reads them back as before).
 * They still show to Object.getOwnPropertySymbols and to util.inspect with
 * showHidden (README, Tracking modes). Returns what undoes it.
 */
function hideNodePromiseIds(): () => void {
  const probe = Promise.resolve();
  const symbols = Object.getOwnPropertySymbols(probe).filter((s) => s.description === 'async_id_symbol' || s.description === 'trigger_async_id_symbol');
  const proto = Promise.prototype as unknown as Record<symbol, unknown>;
  const installed: symbol[] = [];
  for (const symbol of symbols) {
    if (Object.getOwnPropertyDescriptor(proto, symbol) !== undefined || !Object.isExtensible(proto)) continue;
    try {
      Object.defineProperty(proto, symbol, {
        configurable: true,
        set(this: object, value: unknown) {
          Object.defineProperty(this, symbol, { value, writable: true, enumerable: false, configurable: true });
        },
      });
      installed.push(symbol);
    } catch {
      // Left as Node makes them.
    }
  }
  return () => {
    for (const symbol of installed) delete proto[symbol];
  };
}
