// Stack capture under a CPU budget. A creation stack costs microseconds to
// capture (docs/design.md), far more than the task itself, so the tracker
// captures them within a share of the process's CPU time: while it is under
// the share, every task gets its stack; above it, the budget goes first to
// each capture class's first few stacks every second (a class is a task type
// on an HTTP route, or a timer's duration), which may borrow ahead from the
// budget, and the rest of a busy class's tasks are counted without one. In
// the long run capture takes no more than the share. Past its first few a
// second, a busy class's n-th task gets a stack with probability few/n, and
// its record stands for n/few tasks (its weight): an unbiased estimate
// however a burst's tasks are ordered (taking the first ones that came put
// a burst's every stack at its first sites).
import type { LabelSet } from '../labels/labels.js';

/** The weight of a task whose stack every task of its class got: it stands for itself. */
export const EXACT = 1;

/**
 * One second of one class of tasks: the unit a sampled record's weight is
 * valid for, so the tasks without a record are counted by window too.
 */
export class CaptureWindow {
  /** Tasks of the class made in this second. */
  attempts = 0;
  /** Live tasks of the window that have no record (promises whose stack was not captured). */
  unrecorded = 0;
  /** Whether the budget's set of windows with unrecorded tasks holds it. */
  listed = false;
  constructor(
    readonly type: string,
    readonly epoch: number,
    readonly owner: StackBudget,
  ) {}
}

/** Tasks of one kind (a type on a route, or a timer's duration on a route): what the budget samples by. */
export interface CaptureClass {
  readonly type: string;
  /** A timer class's duration (NaN for other classes). */
  readonly msecs: number;
  window: CaptureWindow;
  /** The budget it belongs to: a label set outliving a session caches an old one. */
  readonly owner: StackBudget;
}

// Stacks each class is first in line for every second, so that a route
// that makes few tasks always has all its stacks even while a busy route (or
// a fetch-heavy background job) uses the budget up. They may borrow up to
// a bank's worth ahead, repaid from later earnings.
const guaranteedPerClass = 64;
// Classes followed at once; beyond, the rest of a type shares one class.
const maxClasses = 256;
// Capture time banked while idle, as seconds of the share at one busy core
// (200 ms at the default 1%): a burst of new tasks (start-up, a test) after a
// quiet while gets all its stacks. Guaranteed stacks may borrow as much ahead.
const bankSeconds = 20;
// The most one capture is charged (a capture takes 10 to 100 µs; more is a pause inside it).
const maxChargeMs = 0.5;
// How far past the budget the samples beyond the guarantee may go, as a share of the bank.
const samplingDebtShare = 0.1;
// Capture time granted every second (refill()) even to an idle process: a tenth of a per cent.
const floorMsPerSecond = 1;

export class StackBudget {
  // Below zero: guaranteed captures borrowed ahead.
  #tokensMs: number;
  #capacityMs: number;
  #share: number;
  #lastCpuUs = 0;
  #epoch = 0;
  // Windows with live tasks that have no record; left when the last one ends.
  #unrecordedWindows = new Set<CaptureWindow>();
  #unlabelledPromises: CaptureClass | undefined;
  #unlabelledTimers = new Map<number, CaptureClass>();
  #classes = new Map<string, CaptureClass>();
  #unlimited: boolean;

  constructor(share: number, unlimited: boolean) {
    this.#share = share;
    this.#unlimited = unlimited;
    this.#capacityMs = share * bankSeconds * 1000;
    this.#tokensMs = this.#capacityMs;
    const cpu = process.cpuUsage();
    this.#lastCpuUs = cpu.user + cpu.system;
  }

  /** Called every second: earns the share of the CPU time used since, and starts new class windows. */
  refill(): void {
    if (this.#unlimited || this.#share === 0) return;
    const cpu = process.cpuUsage();
    const cpuUs = cpu.user + cpu.system;
    const earned = (this.#share * (cpuUs - this.#lastCpuUs)) / 1000 + floorMsPerSecond;
    this.#lastCpuUs = cpuUs;
    this.#tokensMs = Math.min(this.#capacityMs, this.#tokensMs + earned);
    this.#epoch++;
    // Classes idle for a whole window are forgotten (tasks keep theirs).
    if (this.#classes.size > maxClasses / 2) {
      for (const [key, cls] of this.#classes) if (cls.window.epoch < this.#epoch - 1) this.#classes.delete(key);
      this.#unlabelledPromises = undefined;
      this.#unlabelledTimers.clear();
    }
    // Windows left without unrecorded tasks leave the set here and at reads,
    // not as their last task ends: a window empties and fills again with
    // every request.
    this.#dropEmptyWindows();
  }

  /** Whether every task gets its stack (full tracking). */
  get unlimited(): boolean {
    return this.#unlimited;
  }

  /** A task's class: its type on its route. */
  classOf(type: string, labels: LabelSet | undefined): CaptureClass {
    if (labels !== undefined) return this.#labelledClass(type, labels);
    // Unlabelled promises (most of a background job's tasks): their class kept at hand.
    if (type === 'Promise') return (this.#unlabelledPromises ??= this.#classOf(type, '', NaN));
    return this.#classOf(type, '', NaN);
  }

  /**
   * A timer's class: its duration on its route. The duration tells a
   * leaking interval apart from the app's many short timeouts for free.
   */
  timerClassOf(type: string, labels: LabelSet | undefined, msecs: number): CaptureClass {
    if (labels === undefined) {
      let cls = this.#unlabelledTimers.get(msecs);
      if (cls === undefined) {
        cls = this.#classOf(type, '', msecs);
        if (this.#unlabelledTimers.size < maxClasses) this.#unlabelledTimers.set(msecs, cls);
      }
      return cls;
    }
    // A request's timers mostly share one duration: its class kept on the label set.
    const cached = labels.timerCaptureClass as CaptureClass | undefined;
    if (cached !== undefined && cached.owner === this && cached.msecs === msecs) return cached;
    const cls = this.#classOf(type, this.#routeOf(labels), msecs);
    if (!labels.pending) labels.timerCaptureClass = cls;
    return cls;
  }

  /**
   * Whether a task of `cls` may get its stack now: the weight its record
   * will carry (how many tasks it stands for), or 0 when it may not.
   */
  admit(cls: CaptureClass): number {
    if (this.#unlimited) return EXACT;
    const n = ++this.windowOf(cls).attempts;
    if (this.#tokensMs > 0) return EXACT;
    if (this.#tokensMs <= -this.#capacityMs) return 0;
    // Over the budget: a class's first few a second, then its n-th with probability few/n.
    if (n <= guaranteedPerClass) return EXACT;
    // Samples past the guarantee borrow little: 64 ln(n/64) of them a second
    // per busy class (some 350 at 15,000 tasks a second) would otherwise
    // spend the whole debt limit, doubling what a process spends on stacks
    // before the budget holds (measured: 6% of a Fastify server's CPU for ten
    // seconds after start, with the same debt as the bank).
    if (this.#tokensMs <= -this.#capacityMs * samplingDebtShare) return 0;
    return Math.random() * n < guaranteedPerClass ? n / guaranteedPerClass : 0;
  }

  /** The class's window of this second. */
  windowOf(cls: CaptureClass): CaptureWindow {
    let window = cls.window;
    if (window.epoch !== this.#epoch) window = cls.window = new CaptureWindow(cls.type, this.#epoch, this);
    return window;
  }

  /** Counts a task of `window` made without a record. */
  addUnrecorded(window: CaptureWindow): void {
    if (window.unrecorded++ === 0 && !window.listed) {
      window.listed = true;
      this.#unrecordedWindows.add(window);
    }
  }

  /** A task counted by addUnrecorded ended. */
  endUnrecorded(window: CaptureWindow): void {
    window.unrecorded--;
  }

  /** Windows with live tasks that have no record. */
  unrecordedWindows(): Iterable<CaptureWindow> {
    this.#dropEmptyWindows();
    return this.#unrecordedWindows;
  }

  #dropEmptyWindows(): void {
    for (const window of this.#unrecordedWindows) {
      if (window.unrecorded > 0) continue;
      window.listed = false;
      this.#unrecordedWindows.delete(window);
    }
  }

  /**
   * Takes the time a capture took from the budget; at most maxChargeMs for
   * one, since a garbage collection that lands inside a capture is not its
   * cost (one such pause could otherwise spend the whole sampling debt and
   * leave a busy second with no sampled stack to estimate by).
   */
  charge(ms: number): void {
    if (!this.#unlimited) this.#tokensMs -= Math.min(ms, maxChargeMs);
  }

  #labelledClass(type: string, labels: LabelSet): CaptureClass {
    // Promises are most tasks: their class is kept on the label set.
    const promise = type === 'Promise';
    const cached = labels.promiseCaptureClass as CaptureClass | undefined;
    if (promise && cached !== undefined && cached.owner === this) return cached;
    const cls = this.#classOf(type, this.#routeOf(labels), NaN);
    // Late labels (Express's route) may still come: kept only once they have.
    if (promise && !labels.pending) labels.promiseCaptureClass = cls;
    return cls;
  }

  #routeOf(labels: LabelSet): string {
    const values = labels.values;
    return `${values.method ?? ''} ${values.route ?? ''}`;
  }

  #classOf(type: string, route: string, msecs: number): CaptureClass {
    let key = type + '\0' + msecs + '\0' + route;
    let cls = this.#classes.get(key);
    if (cls !== undefined) return cls;
    // Past the limit, new classes of a type share one.
    if (this.#classes.size >= maxClasses) {
      key = type + '\0\0\0other';
      cls = this.#classes.get(key);
      if (cls !== undefined) return cls;
    }
    cls = { type, msecs, window: new CaptureWindow(type, this.#epoch, this), owner: this };
    this.#classes.set(key, cls);
    return cls;
  }
}

