// The task tracker: records pending asynchronous work (promises, timers,
// sockets, servers, requests, ...) with creation stacks, labels and parents.
// Design and measurements: docs/design.md.
import asyncHooks from 'node:async_hooks';
import v8 from 'node:v8';
import { inspect } from 'node:util';
import net from 'node:net';
import http from 'node:http';
import { captureStackKey, promiseCaptureDepth, resourceCaptureDepth, OWN_TASK, rawStackKey, shallowCaptureDepth, StackTable, type StackHolder, type StackEntry } from './stack.js';
import { labelContext, ownWork, runWithLabels, type LabelSet } from './labels.js';
import { installInstrumentation, uninstallInstrumentation } from './instrument.js';
import { RouteTally } from './routes.js';

export type TrackingMode = 'full' | 'sampled' | 'counts' | 'off';
export const trackingModes: readonly TrackingMode[] = ['full', 'sampled', 'counts', 'off'];

export const PROMISE_TYPE = 'Promise';

export interface TaskRecord {
  readonly id: number;
  readonly type: string;
  /** Date.now() at creation. */
  readonly createdAt: number;
  /** Id of the task whose callback was running at creation; 0 when unknown. */
  readonly parentId: number;
  /** Type of that parent, kept so a listing can name it after it ended. */
  readonly parentType: string;
  /** Where that parent was created, when known. */
  readonly parentStack: StackEntry | undefined;
  /** How many tasks this record stands for in grouped listings (1 unless sampled). */
  readonly weight: number;
  /** Where the task was created; formatted on first read under `full` (see TrackedTask). */
  readonly stack: StackEntry | undefined;
  /** Under `full`: the stack is captured but not formatted yet (reading `stack` formats it). */
  readonly stackPending: boolean;
  readonly labels: LabelSet | undefined;
  /** Weak: state detail is read at listing time and must not keep the resource alive. */
  readonly resource: WeakRef<object> | undefined;
  readonly asyncId: number;
  live: boolean;
}

export interface TypeCount {
  type: string;
  /** Live tasks now (an estimate when `estimated`). */
  live: number;
  created: number;
  completed: number;
  /** Never settled, and collected by the garbage collector. */
  abandoned: number;
  estimated: boolean;
  /**
   * Whether `completed` is counted. Without the resource hook, handles and timers
   * end without an event taskprof sees, so only their live count is known.
   */
  completionsCounted: boolean;
  /** Whether `abandoned` is told apart from `completed`: only with full tracking's settled hook. */
  abandonedCounted: boolean;
}

/** Tasks that were garbage collected without ever settling, by where they were made. */
export interface AbandonedSite {
  type: string;
  stack: StackEntry | undefined;
  labels: LabelSet | undefined;
  count: number;
  /** Date.now() when the last one was found collected. */
  lastAt: number;
}

// Creation sites of abandoned tasks kept at once; more are only counted.
const maxAbandonedSites = 500;

export interface TrackerSettings {
  mode: TrackingMode;
  /** In `sampled` and `counts` modes, one high-volume task (and promise) in this many, on average, gets a record. */
  samplingInterval: number;
  /** Most records kept at once; beyond it new tasks are counted as dropped. */
  maxTasks: number;
}

export const defaultTrackerSettings: TrackerSettings = {
  mode: 'sampled',
  samplingInterval: 256,
  maxTasks: 200_000,
};

interface Counters {
  created: number;
  completed: number;
  abandoned: number;
  /** Sum of what live records stand for. */
  live: number;
}

// Scheduled callbacks that always run on the next turn, and callback
// bindings (Node 22+ makes one per stream.finished() call, alive until
// collected): not pending work.
const ignoredTypes = new Set(['PROMISE', 'TickObject', 'Microtask', 'STREAM_END_OF_STREAM', 'bound-anonymous-fn']);

// Names from process.getActiveResourcesInfo() mapped to async_hooks type names,
// so every mode reports the same types.
const activeResourceTypes: Record<string, string> = {
  TCPSocketWrap: 'TCPWRAP', TCPServerWrap: 'TCPSERVERWRAP', PipeWrap: 'PIPEWRAP',
  PipeServerWrap: 'PIPESERVERWRAP', ProcessWrap: 'PROCESSWRAP', SignalWrap: 'SIGNALWRAP',
  TTYWrap: 'TTYWRAP', UDPWrap: 'UDPWRAP', FSEventWrap: 'FSEVENTWRAP', StatWatcher: 'STATWATCHER',
  FSReqCallback: 'FSREQCALLBACK', FSReqPromise: 'FSREQPROMISE', GetAddrInfoReqWrap: 'GETADDRINFOREQWRAP',
  GetNameInfoReqWrap: 'GETNAMEINFOREQWRAP', QueryWrap: 'QUERYWRAP', ShutdownWrap: 'SHUTDOWNWRAP',
  WriteWrap: 'WRITEWRAP', TCPConnectWrap: 'TCPCONNECTWRAP', PipeConnectWrap: 'PIPECONNECTWRAP',
};

// Whether an async_hooks hook made with `trackPromises: false` is still called
// for promises: Node 24 honours the option, Node 20 and 22 ignore it (then
// such a hook sees every promise, and its before/after run around every
// promise continuation). Probed once, not read from the version number.
const resourceHookSeesPromises = ((): boolean => {
  let seen = false;
  const probe = asyncHooks.createHook({
    init: (_id: number, type: string) => {
      if (type === 'PROMISE') seen = true;
    },
    trackPromises: false,
  } as asyncHooks.HookCallbacks);
  probe.enable();
  void Promise.resolve();
  probe.disable();
  return seen;
})();

const kRecord = Symbol('taskprof.record');
const kLabels = Symbol('taskprof.labels');
// A `full` record's creation stack, captured but not formatted yet.
const kStackHolder = Symbol('taskprof.rawStack');
type Marked = { [kRecord]?: TrackedTask; [kLabels]?: LabelSet; [kStackHolder]?: StackHolder };

// How often `full` formats the creation stacks of tasks still live. A stack is
// captured raw (cheap) and formatted when first read; a task that ends first
// never pays for formatting. The raw stack lives on the task's own object, so
// once the object is collected it is gone: formatting live ones every second
// keeps the site of promises abandoned and collected later (V8 frees objects
// registered in a FinalizationRegistry only in full collections).
const stackFormatMs = 1000;
// Time each pass may take: about 6.5 µs a stack, so some 1,500 stacks a pass.
// While stacks are left over (a burst of new tasks), passes come every
// stackBacklogMs: at most a tenth of the process's time until caught up.
const stackFormatBudgetMs = 10;
const stackBacklogMs = 100;

/** Formats a record's raw stack into the tracker's table; set by the tracker. */
type StackResolver = (record: TrackedTask, raw: StackHolder | undefined) => StackEntry | undefined;

class TrackedTask implements TaskRecord {
  readonly id: number;
  readonly type: string;
  readonly createdAt: number;
  readonly parentId: number;
  readonly parentType: string;
  readonly weight: number;
  readonly labels: LabelSet | undefined;
  readonly resource: WeakRef<object> | undefined;
  readonly asyncId: number;
  live = true;
  /** Live records whose parent this is: when it ends before them, its stack is formatted then. */
  liveChildren = 0;
  #stack: StackEntry | undefined;
  #resolver: StackResolver | undefined;
  // Cleared when this record ends, so that records never form chains.
  #parent: TrackedTask | undefined;

  constructor(
    id: number, type: string, weight: number, labels: LabelSet | undefined, resource: object | undefined,
    asyncId: number, parent: TrackedTask | undefined, stack: StackEntry | undefined, resolver: StackResolver | undefined,
  ) {
    this.id = id;
    this.type = type;
    this.createdAt = Date.now();
    this.parentId = parent?.id ?? 0;
    this.parentType = parent?.type ?? '';
    this.weight = weight;
    this.labels = labels;
    this.resource = resource === undefined ? undefined : new WeakRef(resource);
    this.asyncId = asyncId;
    this.#parent = parent;
    this.#stack = stack;
    this.#resolver = resolver;
  }

  get stack(): StackEntry | undefined {
    if (this.#resolver !== undefined) this.resolveStack();
    return this.#stack;
  }

  get parentStack(): StackEntry | undefined {
    return this.#parent?.stack;
  }

  get stackPending(): boolean {
    return this.#resolver !== undefined;
  }

  /** Formats the raw stack, if still reachable on the task's object. */
  resolveStack(): void {
    const resolver = this.#resolver;
    if (resolver === undefined) return;
    this.#resolver = undefined;
    this.#stack = resolver(this, this.#takeRawStack());
  }

  // Takes the raw stack off the task's object: it holds the creating frames'
  // receivers and functions, which must not outlive the record's need.
  #takeRawStack(): StackHolder | undefined {
    const target = this.resource?.deref() as Marked | undefined;
    const raw = target?.[kStackHolder];
    if (raw !== undefined) {
      try {
        target![kStackHolder] = undefined;
      } catch {
        // The app froze its object after creating it: the stack stays there, with it.
      }
    }
    return raw;
  }

  /**
   * Called when the record ends (or tracking is reset): lets go of the parent
   * and of the raw stack, and says what the stack was.
   */
  detach(): StackEntry | undefined {
    if (this.#parent !== undefined) {
      this.#parent.liveChildren--;
      this.#parent = undefined;
    }
    if (this.#resolver !== undefined) {
      // An unformatted stack is kept only when a child still needs it as its creator's.
      if (this.liveChildren > 0) this.resolveStack();
      else {
        this.#resolver = undefined;
        this.#takeRawStack();
      }
    }
    return this.#stack;
  }

  /** Tracking reset: lets go of the parent and of the raw stack without formatting it. */
  discard(): void {
    this.#parent = undefined;
    if (this.#resolver === undefined) return;
    this.#resolver = undefined;
    this.#takeRawStack();
  }
}

// How often, in `sampled` mode, records of timers are checked for having fired
// or been cleared (timers end without an event the wrappers could see).
const timerSweepMs = 2000;

// `counts` mode watches promises promiseDutyOnMs in every promiseDutyPeriodMs.
const promiseDutyOnMs = 1000;
const promiseDutyPeriodMs = 10_000;

export class Tracker {
  #settings: TrackerSettings = { ...defaultTrackerSettings, mode: 'off' };
  #live = new Map<string, Map<number, TrackedTask>>();
  #byAsyncId = new Map<number, TrackedTask>();
  #counters = new Map<string, Counters>();
  #stacks = new StackTable();
  #recordCount = 0;
  #dropped = 0;
  #nextId = 1;
  #countdown = 1;
  #captureStacks = false;
  // `full`: raw stacks, captured in the hooks and formatted when read.
  #rawStacks = false;
  #labelsOn = false;
  #stopPromiseHook: (() => void) | undefined;
  #resourceHook: asyncHooks.AsyncHook | undefined;
  #instrumented = false;
  #timerSweep: NodeJS.Timeout | undefined;
  // Labels saved by `before` hooks, put back by `after` hooks.
  #savedLabels: (LabelSet | undefined)[] = [];
  #promiseCounters: Counters = { created: 0, completed: 0, abandoned: 0, live: 0 };
  #settledHook = true;
  #dutyTimer: NodeJS.Timeout | undefined;
  // Inside oneSweep(): whether the promise records were swept already.
  #oneSweepScope = false;
  #sweptInScope = false;
  // Promises stand for this many times more while they are watched part of the time.
  #dutyFactor = 1;
  // A promise collected without a settled hook having seen it settle. Only
  // `full` has that hook; elsewhere a collected promise may well have settled
  // first (the 2 s sweep misses short-lived ones), so it just ends.
  // Registered without an unregister token (a token costs about 0.5 µs per
  // promise): a record that ended first is simply not live when this runs.
  #finalization = new FinalizationRegistry<TrackedTask>((record) => {
    try {
      this.#end(record, this.#settledHook);
    } catch {
      // Never throw into the app's event loop.
    }
  });
  #stackFormat: NodeJS.Timeout | undefined;
  #resolveStack: StackResolver = (record, raw) => {
    if (raw === undefined) return undefined;
    try {
      const key = rawStackKey(raw);
      if (key !== OWN_TASK) return this.#stacks.acquire(key);
      // Made by taskprof outside its own-work scope: not the app's. Counted as
      // completed rather than uncounted, so that counters never go down.
      this.#end(record, false);
    } catch {
      // A stack that cannot be formatted is left out.
    }
    return undefined;
  };
  #startedAt = 0;
  // Live handles by type from process.getActiveResourcesInfo(), read in the
  // background sweep (it walks every handle), so a scrape only reads numbers.
  #activeCounts = new Map<string, number>();
  #abandonedSites = new Map<string, AbandonedSite>();
  #abandonedSitesDropped = 0;
  /** Live tasks by HTTP route, kept up to date as records come and go. */
  readonly routes = new RouteTally();

  get settings(): Readonly<TrackerSettings> {
    return this.#settings;
  }

  get mode(): TrackingMode {
    return this.#settings.mode;
  }

  /** Whether labels are recorded (adapters skip entering a label scope otherwise). */
  get labelsEnabled(): boolean {
    return this.#labelsOn;
  }

  get dropped(): number {
    return this.#dropped;
  }

  /** When the current mode took effect (Date.now()). */
  get startedAt(): number {
    return this.#startedAt;
  }

  /** True when counts of high-volume kinds are estimated from a sample. */
  get sampled(): boolean {
    const { mode, samplingInterval } = this.#settings;
    return (mode === 'sampled' || mode === 'counts') && samplingInterval > 1;
  }

  /** Applies new settings; a change of mode starts a fresh set of records. */
  configure(settings: TrackerSettings): void {
    const previous = this.#settings;
    this.#settings = { ...settings };
    if (previous.mode === settings.mode && previous.samplingInterval === settings.samplingInterval) return;
    this.#uninstall();
    this.#reset();
    const { mode } = settings;
    if (mode === 'off') return;
    this.#captureStacks = mode === 'full' || mode === 'sampled';
    this.#rawStacks = mode === 'full';
    this.#labelsOn = this.#captureStacks;
    this.#startedAt = Date.now();
    // Only `full` installs a settled hook (each promise hook is a call from V8
    // on every promise): the other modes' few sampled promises are checked
    // when counts or listings are read, and every 2 s.
    this.#promiseCounters = this.#countersOf(PROMISE_TYPE);
    this.#settledHook = mode === 'full';
    // `counts` watches promises one second in ten (denser sampling while it
    // does, so a record still stands for samplingInterval promises): even an
    // `init` hook on every promise is a few per cent of a cheap request.
    // samplingInterval 1 asks for exact counts, so it watches all the time.
    const dutyCycled = mode === 'counts' && settings.samplingInterval > 1;
    this.#dutyFactor = dutyCycled ? promiseDutyPeriodMs / promiseDutyOnMs : 1;
    this.#countdown = this.#nextGap();
    if (dutyCycled) this.#promiseWatchOn();
    else this.#installPromiseHook();
    if (mode === 'full') {
      // Started before the hook, so that it is not one of the app's tasks.
      this.#scheduleStackFormat(stackFormatMs);
      this.#resourceHook = asyncHooks.createHook({
        init: this.#onResourceInit,
        destroy: this.#onResourceDestroy,
        before: this.#onResourceBefore,
        after: this.#onAfter,
        trackPromises: false,
      } as asyncHooks.HookCallbacks);
      this.#resourceHook.enable();
    } else {
      // Started before the wrappers, so that it is not one of the app's tasks.
      this.#timerSweep = setInterval(() => this.#sweepEndedResources(), timerSweepMs);
      this.#timerSweep.unref();
      this.#refreshActiveCounts();
      if (mode === 'sampled') {
        installInstrumentation(this.#onWrappedResource);
        this.#instrumented = true;
      }
    }
  }

  #installPromiseHook(): void {
    const settled = this.#settledHook ? this.#onPromiseSettled : undefined;
    // Where `full`'s resource hook gets every promise anyway (Node 20 and 22),
    // its before/after already carry labels into promise continuations.
    const resourceHookCarriesLabels = this.#settings.mode === 'full' && resourceHookSeesPromises;
    const labels = this.#labelsOn && !resourceHookCarriesLabels ? { before: this.#onPromiseBefore, after: this.#onAfter } : {};
    this.#stopPromiseHook = v8.promiseHooks.createHook({ init: this.#onPromiseInit, settled, ...labels }) as () => void;
  }

  #promiseWatchOn = (): void => {
    this.#installPromiseHook();
    this.#dutyTimer = setTimeout(this.#promiseWatchOff, promiseDutyOnMs);
    this.#dutyTimer.unref();
  };

  #promiseWatchOff = (): void => {
    this.#stopPromiseHook?.();
    this.#stopPromiseHook = undefined;
    this.#dutyTimer = setTimeout(this.#promiseWatchOn, promiseDutyPeriodMs - promiseDutyOnMs);
    this.#dutyTimer.unref();
  };

  #uninstall(): void {
    this.#stopPromiseHook?.();
    this.#stopPromiseHook = undefined;
    this.#resourceHook?.disable();
    this.#resourceHook = undefined;
    if (this.#instrumented) uninstallInstrumentation();
    this.#instrumented = false;
    clearInterval(this.#timerSweep);
    this.#timerSweep = undefined;
    clearTimeout(this.#stackFormat);
    this.#stackFormat = undefined;
    clearTimeout(this.#dutyTimer);
    this.#dutyTimer = undefined;
    this.#dutyFactor = 1;
    this.#settledHook = false;
    // Uninstalled from inside a continuation (a leak check ending, say), the
    // `after` hooks that would put the labels back will never run: put back
    // the labels in force outside every continuation now.
    if (this.#savedLabels.length > 0) labelContext.current = this.#savedLabels[0];
    this.#savedLabels = [];
    this.#captureStacks = false;
    this.#rawStacks = false;
    this.#labelsOn = false;
  }

  #reset(): void {
    for (const records of this.#live.values()) {
      // Pending finalization callbacks find these records not live.
      for (const record of records.values()) {
        record.live = false;
        record.discard();
      }
    }
    this.#live.clear();
    this.#byAsyncId.clear();
    for (const counters of this.#counters.values()) counters.live = 0;
    this.#stacks.clear();
    this.#recordCount = 0;
    this.#activeCounts.clear();
    this.routes.clear();
  }

  // Geometric gaps give every task the same chance of a record, without the
  // aliasing a fixed "every Nth" has with code that makes N tasks per request.
  #nextGap(): number {
    const interval = (this.#settings.mode === 'full' ? 1 : this.#settings.samplingInterval) / this.#dutyFactor;
    if (interval <= 1) return 1;
    return Math.max(1, Math.ceil(Math.log(1 - Math.random()) / Math.log(1 - 1 / interval)));
  }

  #countersOf(type: string): Counters {
    let counters = this.#counters.get(type);
    if (counters === undefined) {
      counters = { created: 0, completed: 0, abandoned: 0, live: 0 };
      this.#counters.set(type, counters);
    }
    return counters;
  }

  // Derived promises (then/catch/finally and the one V8 makes for each
  // `await`) have a parent: they are waiters on a task, not tasks, and
  // counting them would show every awaited promise twice.
  #onPromiseInit = (promise: Promise<unknown>, parent: Promise<unknown> | undefined): void => {
    // Every promise carries the labels in force, so its reactions run with them.
    const labels = labelContext.current;
    if (labels !== undefined) (promise as Marked)[kLabels] = labels;
    if (parent !== undefined || labels === ownWork) return;
    try {
      this.#promiseCounters.created += this.#dutyFactor;
      if (--this.#countdown > 0) return;
      this.#countdown = this.#nextGap();
      const weight = this.#settings.mode === 'full' ? 1 : this.#settings.samplingInterval;
      // The record looks at its promise (weakly) to see whether it settled
      // (without a settled hook), and to find its raw stack (`full`).
      // The raw stack is captured right here: each frame V8 walks (ours too) costs.
      // (Not once the records are full: #record would drop it.)
      let raw: StackHolder | undefined;
      if (this.#rawStacks && this.#recordCount < this.#settings.maxTasks) {
        const savedLimit = Error.stackTraceLimit;
        Error.stackTraceLimit = promiseCaptureDepth;
        Error.captureStackTrace((raw = {}), this.#onPromiseInit);
        Error.stackTraceLimit = savedLimit;
      }
      const record = this.#record(PROMISE_TYPE, weight, this.#captureStacks, this.#onPromiseInit, 0, promise, raw);
      // taskprof's own promise: not the app's, so not counted as created either.
      if (record === null) this.#promiseCounters.created -= this.#dutyFactor;
      if (!record) return;
      // Where the sweeps read the promise's state through util.inspect, a
      // hidden property keeps the record out of what inspect formats.
      if (this.#settledHook) (promise as Marked)[kRecord] = record;
      else Object.defineProperty(promise, kRecord, { value: record, writable: true });
      this.#finalization.register(promise, record);
    } catch {
      // Never throw into the app.
    }
  };

  #onPromiseSettled = (promise: Promise<unknown>): void => {
    const record = (promise as Marked)[kRecord];
    if (record === undefined) return;
    try {
      this.#end(record, false);
    } catch {
      // Never throw into the app.
    }
  };

  #onPromiseBefore = (promise: Promise<unknown>): void => {
    this.#savedLabels.push(labelContext.current);
    labelContext.current = (promise as Marked)[kLabels];
  };

  #onAfter = (): void => {
    labelContext.current = this.#savedLabels.pop();
  };

  // Full mode: callbacks of every resource run with the labels of their creation.
  #onResourceBefore = (): void => {
    this.#savedLabels.push(labelContext.current);
    labelContext.current = (asyncHooks.executionAsyncResource() as Marked | undefined)?.[kLabels];
  };

  // Sampled mode: a resource made through a wrapped public function.
  #onWrappedResource = (type: string, resource: object, alwaysStacked: boolean, wrapper: Function, endEvent: string | undefined): void => {
    if (labelContext.current === ownWork) return;
    this.#countersOf(type).created++;
    let weight = 1;
    if (!alwaysStacked) {
      if (--this.#countdown > 0) return;
      this.#countdown = this.#nextGap();
      weight = this.#settings.samplingInterval;
    }
    const record = this.#record(type, weight, true, wrapper, 0, resource);
    if (!record) return;
    (resource as Marked)[kRecord] = record;
    if (endEvent !== undefined) (resource as NodeJS.EventEmitter).once(endEvent, () => this.#end(record, false));
  };

  // Full mode: every resource Node reports, with a stack.
  #onResourceInit = (asyncId: number, type: string, _triggerAsyncId: number, resource: object): void => {
    try {
      const labels = labelContext.current;
      if (labels !== undefined) (resource as Marked)[kLabels] = labels;
      if (ignoredTypes.has(type)) {
        // Not a task, but its callback carries on the work of the task that
        // scheduled it (process.nextTick, say): tasks made there are that task's.
        // (Where Node still reports PROMISE resources, the resource is the
        // promise itself, which has its own record.)
        if (type !== 'PROMISE') {
          const running = this.#runningTask();
          if (running !== undefined) (resource as Marked)[kRecord] = running;
        }
        return;
      }
      if (labels === ownWork) return;
      // Captured here, as in #onPromiseInit (a helper would be one more frame
      // to walk), and not once the records are full: #record would drop it.
      let raw: StackHolder | undefined;
      if (this.#recordCount < this.#settings.maxTasks) {
        const savedLimit = Error.stackTraceLimit;
        Error.stackTraceLimit = type === 'Timeout' || type === 'Immediate' ? promiseCaptureDepth : resourceCaptureDepth;
        Error.captureStackTrace((raw = {}), this.#onResourceInit);
        Error.stackTraceLimit = savedLimit;
      }
      const record = this.#record(type, 1, true, this.#onResourceInit, asyncId, resource, raw);
      // taskprof's own resources (its timers, its histogram) are not the app's tasks.
      if (record !== null) this.#countersOf(type).created++;
      if (record) {
        this.#byAsyncId.set(asyncId, record);
        (resource as Marked)[kRecord] = record;
      }
    } catch {
      // Never throw into the app.
    }
  };

  #onResourceDestroy = (asyncId: number): void => {
    const record = this.#byAsyncId.get(asyncId);
    if (record === undefined) return;
    this.#byAsyncId.delete(asyncId);
    try {
      this.#end(record, false);
    } catch {
      // Never throw into the app (a throw in a destroy hook ends the process).
    }
  };

  #record(
    type: string,
    weight: number,
    stacked: boolean,
    hook: Function,
    asyncId: number,
    resource: object | undefined,
    raw?: StackHolder,
  ): TrackedTask | undefined | null {
    if (this.#recordCount >= this.#settings.maxTasks) {
      this.#dropped++;
      return undefined;
    }
    let stack: StackEntry | undefined;
    let resolver: StackResolver | undefined;
    if (raw !== undefined && resource !== undefined) {
      // `full`: every task has a record, captured now and formatted only if read.
      (resource as Marked)[kStackHolder] = raw;
      resolver = this.#resolveStack;
    } else if (stacked) {
      const key = captureStackKey(hook, shallowCaptureDepth);
      if (key === OWN_TASK) return null;
      stack = this.#stacks.acquire(key);
    }
    let parent = this.#runningTask();
    if (parent !== undefined && parent.live) parent.liveChildren++;
    else parent = undefined;
    const labels = this.#labelsOn ? labelContext.current : undefined;
    labels?.resolve();
    const record = new TrackedTask(this.#nextId++, type, weight, labels, resource, asyncId, parent, stack, resolver);
    let records = this.#live.get(type);
    if (records === undefined) {
      records = new Map();
      this.#live.set(type, records);
    }
    records.set(record.id, record);
    this.#recordCount++;
    this.#countersOf(type).live += type === PROMISE_TYPE ? weight : 1;
    if (labels !== undefined) this.routes.add(labels, weight);
    return record;
  }

  // The task whose callback or continuation is running now, if it has a record.
  #runningTask(): TrackedTask | undefined {
    const resource = asyncHooks.executionAsyncResource() as Marked | undefined;
    const marked = resource?.[kRecord];
    if (marked !== undefined) return marked;
    return this.#byAsyncId.get(asyncHooks.executionAsyncId());
  }

  #end(record: TrackedTask, abandoned: boolean): void {
    if (!record.live) return;
    record.live = false;
    const records = this.#live.get(record.type);
    if (records === undefined || !records.delete(record.id)) return;
    this.#recordCount--;
    const stack = record.detach();
    const counters = this.#countersOf(record.type);
    const count = record.type === PROMISE_TYPE ? record.weight : 1;
    counters.live -= count;
    if (abandoned) {
      counters.abandoned += count;
      this.#noteAbandoned(record, count);
    } else counters.completed += count;
    if (record.labels !== undefined) this.routes.remove(record.labels, record.weight);
    if (stack !== undefined) this.#stacks.release(stack);
    if (record.asyncId !== 0) this.#byAsyncId.delete(record.asyncId);
  }

  // `full`: formats the stacks of live tasks not read yet (see stackFormatMs),
  // oldest first, for at most stackFormatBudgetMs: a burst of new tasks is
  // formatted over several passes instead of stalling the app.
  #formatLiveStacks(): boolean {
    return this.formatStacks(stackFormatBudgetMs);
  }

  /**
   * `full`: formats the raw stacks of live tasks, oldest first, for at most
   * `budgetMs`; true when none is left.
   */
  formatStacks(budgetMs: number): boolean {
    const deadline = performance.now() + budgetMs;
    let sinceCheck = 0;
    for (const records of this.#live.values()) {
      for (const record of records.values()) {
        if (!record.stackPending) continue;
        record.resolveStack();
        if (++sinceCheck === 64) {
          sinceCheck = 0;
          if (performance.now() > deadline) return false;
        }
      }
    }
    return true;
  }

  // Its timers are taskprof's own work: the hooks skip them.
  #scheduleStackFormat(delayMs: number): void {
    runWithLabels(ownWork, () => {
      this.#stackFormat = setTimeout(() => {
        let caughtUp = true;
        try {
          caughtUp = this.#formatLiveStacks();
        } catch {
          // Never throw into the app's event loop.
        }
        if (this.#stackFormat !== undefined) this.#scheduleStackFormat(caughtUp ? stackFormatMs : stackBacklogMs);
      }, delayMs);
      this.#stackFormat.unref();
    });
  }

  #noteAbandoned(record: TrackedTask, count: number): void {
    const key = `${record.type}\0${record.stack?.key ?? ''}\0${record.labels?.key ?? ''}`;
    let site = this.#abandonedSites.get(key);
    if (site === undefined) {
      if (this.#abandonedSites.size >= maxAbandonedSites) {
        this.#abandonedSitesDropped += count;
        return;
      }
      site = { type: record.type, stack: record.stack, labels: record.labels, count: 0, lastAt: 0 };
      this.#abandonedSites.set(key, site);
    }
    site.count += count;
    site.lastAt = Date.now();
  }

  /** Whether abandoned promises are told apart (full tracking's settled hook sees every settlement). */
  get abandonedCounted(): boolean {
    return this.#settledHook && this.#settings.mode !== 'off';
  }

  /** Abandoned tasks by creation site, most first; and how many were counted without a site (too many sites). */
  abandonedSites(): { sites: AbandonedSite[]; unsited: number } {
    return { sites: [...this.#abandonedSites.values()].sort((a, b) => b.count - a.count), unsited: this.#abandonedSitesDropped };
  }

  /** Id of the newest record; every task recorded later has a larger one. */
  get lastTaskId(): number {
    return this.#nextId - 1;
  }

  /** Calls `fn` for every live record, in no particular order, without copying them. */
  forEachLive(fn: (record: TaskRecord) => void): void {
    for (const records of this.#live.values()) for (const record of records.values()) if (record.live) fn(record);
  }

  /** Records held now (at most maxTasks). */
  get recordCount(): number {
    return this.#recordCount;
  }

  #refreshActiveCounts(): void {
    this.#activeCounts.clear();
    for (const name of process.getActiveResourcesInfo()) {
      const type = activeResourceTypes[name] ?? name;
      this.#activeCounts.set(type, (this.#activeCounts.get(type) ?? 0) + 1);
    }
  }

  // A timer ends without an event (it fired, or was cleared), and a timer made
  // before a resource hook was enabled sends no destroy: its own flag is the
  // truth. Any resource that was garbage collected has ended too.
  #sweepEndedResources(): void {
    if (this.#resourceHook === undefined && this.#settings.mode !== 'off') this.#refreshActiveCounts();
    for (const [type, records] of this.#live) {
      if (type === PROMISE_TYPE) {
        if (!this.#settledHook) this.#sweepSettledPromises(records);
        continue;
      }
      for (const record of records.values()) {
        if (record.resource === undefined) continue;
        const resource = record.resource.deref() as { _destroyed?: boolean } | undefined;
        if (resource === undefined || ((type === 'Timeout' || type === 'Immediate') && resource._destroyed === true)) {
          this.#end(record, false);
        }
      }
    }
  }

  // `sampled` and `counts` modes: sampled promises whose settling no hook reported.
  #sweepSettledPromises(records: Map<number, TrackedTask>): void {
    if (this.#sweptInScope) return;
    if (this.#oneSweepScope) this.#sweptInScope = true;
    for (const record of records.values()) {
      const promise = record.resource?.deref();
      if (promise !== undefined && !isPending(promise)) this.#end(record, false);
    }
  }

  /**
   * Runs `fn` (one listing, which reads the counts more than once) with at
   * most one sweep of the promise records: it calls util.inspect per record
   * (the one public way to see a promise's state), microseconds each.
   */
  oneSweep<T>(fn: () => T): T {
    if (this.#oneSweepScope) return fn();
    this.#oneSweepScope = true;
    this.#sweptInScope = false;
    try {
      return fn();
    } finally {
      this.#oneSweepScope = false;
      this.#sweptInScope = false;
    }
  }

  /** Ends the records of tasks that ended unseen (timers fired or cleared, promises settled without a hook); O(records). */
  sweep(): void {
    this.#sweepEndedResources();
  }

  /** Live records, oldest first. */
  records(): TaskRecord[] {
    this.#sweepEndedResources();
    const all: TaskRecord[] = [];
    for (const records of this.#live.values()) for (const record of records.values()) all.push(record);
    all.sort((a, b) => a.id - b.id);
    return all;
  }

  /** The oldest live record of a type, without walking the others. */
  oldest(type: string): TaskRecord | undefined {
    const records = this.#live.get(type);
    if (records === undefined) return undefined;
    for (const record of records.values()) return record;
    return undefined;
  }

  /**
   * Counts by type. With the resource hook (`full`) every count is exact. Otherwise
   * live handles, requests and timers come from process.getActiveResourcesInfo()
   * (exact, but only those that keep the process alive), and promises from the sample.
   * `fresh: false` reads what the background sweep (every 2 s) last saw and
   * costs the same whatever the number of tasks: the metrics scrape uses it.
   */
  typeCounts(fresh = true): TypeCount[] {
    const exactHandles = this.#resourceHook !== undefined;
    if (fresh) {
      const promises = this.#live.get(PROMISE_TYPE);
      if (!this.#settledHook && promises !== undefined) this.#sweepSettledPromises(promises);
      if (!exactHandles && this.#settings.mode !== 'off') this.#refreshActiveCounts();
    }
    const result: TypeCount[] = [];
    for (const [type, counters] of this.#counters) {
      if (!exactHandles && type !== PROMISE_TYPE) continue;
      result.push({
        type,
        live: Math.round(counters.live),
        created: Math.round(counters.created),
        completed: Math.round(counters.completed),
        abandoned: Math.round(counters.abandoned),
        estimated: type === PROMISE_TYPE && this.sampled,
        completionsCounted: true,
        abandonedCounted: this.#settledHook,
      });
    }
    if (!exactHandles && this.#settings.mode !== 'off') {
      const active = new Map(this.#activeCounts);
      for (const type of this.#counters.keys()) {
        if (type !== PROMISE_TYPE && !active.has(type)) active.set(type, 0);
      }
      for (const [type, live] of active) {
        const counters = this.#counters.get(type);
        result.push({ type, live, created: counters?.created ?? 0, completed: 0, abandoned: 0, estimated: false, completionsCounted: false, abandonedCounted: false });
      }
    }
    return result.filter((c) => c.live > 0 || c.created > 0).sort((a, b) => b.live - a.live || a.type.localeCompare(b.type));
  }

  /** Live tasks in all (an estimate in part when `sampled`). */
  total(fresh = true): number {
    let total = 0;
    for (const count of this.typeCounts(fresh)) total += count.live;
    return total;
  }
}

// util.inspect is the one public way to read a promise's state without
// attaching a handler (which would mark a rejection as handled).
function isPending(promise: object): boolean {
  return /^[^{]*\{ <pending>/.test(inspect(promise, { depth: 0, maxArrayLength: 0, maxStringLength: 0, breakLength: Infinity }));
}

/** State detail of a task, read from its resource when it is still reachable. */
export function describeTask(record: TaskRecord, withAddresses: boolean): string {
  if (record.type === PROMISE_TYPE) return 'pending';
  const resource = record.resource?.deref();
  if (resource === undefined) return '';
  try {
    return describeResource(record.type, resource, withAddresses);
  } catch {
    return '';
  }
}

interface TimerLike {
  _idleTimeout?: number;
  _repeat?: number | null;
  hasRef?: () => boolean;
}

interface HandleLike {
  getsockname?: (out: Record<string, unknown>) => number;
  getpeername?: (out: Record<string, unknown>) => number;
  hasRef?: () => boolean;
  pid?: number;
}

function hostPort(host: string | undefined, port: number | undefined): string {
  if (host === undefined) return '';
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function serverAddress(server: net.Server): string {
  const bound = server.address();
  if (bound === null) return '';
  return typeof bound === 'string' ? bound : hostPort(bound.address, bound.port);
}

function address(handle: HandleLike, which: 'getsockname' | 'getpeername'): string {
  const out: Record<string, unknown> = {};
  const fn = handle[which];
  if (typeof fn !== 'function' || fn.call(handle, out) !== 0) return '';
  if (typeof out.address !== 'string') return '';
  return out.family === 'IPv6' || out.family === 6 ? `[${out.address}]:${out.port}` : `${out.address}:${out.port}`;
}

function describeResource(type: string, resource: object, withAddresses: boolean): string {
  const parts: string[] = [];
  if (type === 'Timeout') {
    const timer = resource as TimerLike;
    const ms = timer._idleTimeout ?? 0;
    parts.push(typeof timer._repeat === 'number' ? `setInterval(${timer._repeat}ms)` : `setTimeout(${ms}ms)`);
  } else if (type === 'Immediate') {
    parts.push('setImmediate');
  } else if (type === 'TCPSERVERWRAP' || type === 'PIPESERVERWRAP') {
    const local = resource instanceof net.Server ? serverAddress(resource) : address(resource as HandleLike, 'getsockname');
    if (local !== '') parts.push('listening ' + local);
  } else if (type === 'TCPWRAP' && withAddresses) {
    const [local, remote] =
      resource instanceof net.Socket
        ? [hostPort(resource.localAddress, resource.localPort), hostPort(resource.remoteAddress, resource.remotePort)]
        : [address(resource as HandleLike, 'getsockname'), address(resource as HandleLike, 'getpeername')];
    if (local !== '' || remote !== '') parts.push(`${local} -> ${remote}`);
  } else if (type === 'HTTPCLIENTREQUEST' && resource instanceof http.ClientRequest) {
    parts.push(`${resource.method} ${resource.host}` + (withAddresses ? resource.path : ''));
  } else if (type === 'PROCESSWRAP' && withAddresses) {
    const pid = (resource as HandleLike).pid;
    if (typeof pid === 'number') parts.push(`pid ${pid}`);
  }
  const hasRef = (resource as TimerLike).hasRef;
  if (typeof hasRef === 'function' && hasRef.call(resource) === false) parts.push('unref');
  return parts.join(' ');
}

/** The process-wide tracker: hooks are global, so there is one. */
export const tracker = new Tracker();
