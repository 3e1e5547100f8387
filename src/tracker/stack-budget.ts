// Stack capture under a CPU budget. A creation stack costs microseconds to
// capture (docs/design.md), far more than the task itself, so the tracker
// captures them within a share of the process's CPU time: while it is under
// the share, every task gets its stack. Over it, the budget is shared
// fairly among the capture classes (a class is a task type on an HTTP
// route, or a timer's duration on a route): every second each class may
// have up to a *level* of stacks, the level set from what the classes made
// the second before and what the budget earns (a max-min fair share), so a
// class that makes few tasks keeps all its stacks and only the busy ones
// are sampled. Past the level, a class's n-th task of the second gets a
// stack with probability level/n and its record stands for n/level tasks
// (its weight): an unbiased estimate however a burst's tasks are ordered
// (taking the first ones that came put a burst's every stack at its first
// sites). In the long run capture takes no more than the share.
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
    /** The class it is a second of: a window without a sampled record is estimated by its class's other ones. */
    readonly captureClass: CaptureClass,
    readonly epoch: number,
  ) {}

  get type(): string {
    return this.captureClass.type;
  }
}

/** Tasks of one kind (a type on a route, or a timer's duration on a route): what the budget samples by. */
export class CaptureClass {
  /** Its second now (or its last one). */
  window: CaptureWindow;
  /** While the budget is shared: its tasks a second that get their stack in full (see StackBudget.admit), set for the second `levelEpoch`. */
  level = Infinity;
  levelEpoch = -1;
  constructor(
    readonly type: string,
    /** A timer class's durations start here: [msecs, 2 msecs) (NaN for other classes). */
    readonly msecs: number,
    /** The budget it belongs to: a label set outliving a session caches an old one. */
    readonly owner: StackBudget,
    epoch: number,
  ) {
    this.window = new CaptureWindow(this, epoch);
  }
}

/** What the stack budget has done since tracking started (GET /vars). */
export interface StackBudgetStats {
  /** The share of CPU time stacks may take. */
  share: number;
  /** Stacks captured. */
  captures: number;
  /** Time they took, ms. */
  captureMs: number;
  /** Tasks made while over the budget without a stack. */
  refused: number;
  /** Budget left, ms (below zero: spent ahead). */
  balanceMs: number;
  /** Whether the budget is shared out among the classes now (over the budget). */
  shared: boolean;
  /** While shared: the stacks a second each class may have, its fair share (null: no limit). */
  stacksPerClass: number | null;
}

// The lowest share: a class's first task of a second then gets its stack
// with this probability (and stands for 1/minShare tasks).
const minShare = 0.01;
// Classes followed at once; beyond, the rest of a type shares one class.
const maxClasses = 256;
// Capture time banked while idle, as seconds of the share at one busy core
// (200 ms at the default 1%): a burst of new tasks (start-up, a test) after a
// quiet while gets all its stacks.
const bankSeconds = 20;
// The most one capture is charged (a capture takes 10 to 100 µs; more is a pause inside it).
const maxChargeMs = 0.5;
// How far past the budget the samples beyond the level may go, as a share of the bank.
const samplingDebtShare = 0.1;
// Capture time granted every second (refill()) even to an idle process: a tenth of a per cent.
const floorMsPerSecond = 1;
// While shared, a debt is repaid (or a surplus spent) over this many seconds.
const settleSeconds = 10;
// The budget stops being shared once the bank is this full again.
const unshareShare = 0.5;
// What a capture is taken to cost before one was measured (ms).
const firstCostMs = 0.02;

export class StackBudget {
  // Below zero: captures made ahead of the budget.
  #tokensMs: number;
  #capacityMs: number;
  #share: number;
  #lastCpuUs = 0;
  #epoch = 0;
  // Over the budget: captures are shared out among the classes until the bank refills.
  #shared = false;
  // While shared, each class's expected stacks a second (a class making no more gets them all).
  #fairShare = Infinity;
  // What the last second earned: the rate a level is set for.
  #earnedMs = floorMsPerSecond;
  // The measured time of a capture, averaged over the last seconds; undefined before one was measured.
  #costMs: number | undefined;
  #secondCaptures = 0;
  #secondMs = 0;
  #captures = 0;
  #captureMs = 0;
  #refused = 0;
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

  /**
   * Called every second: earns the share of the CPU time used since, sets
   * the level for the second to come, and starts new class windows.
   */
  refill(): void {
    if (this.#unlimited || this.#share === 0) return;
    const cpu = process.cpuUsage();
    const cpuUs = cpu.user + cpu.system;
    const earned = (this.#share * (cpuUs - this.#lastCpuUs)) / 1000 + floorMsPerSecond;
    this.#lastCpuUs = cpuUs;
    this.#tokensMs = Math.min(this.#capacityMs, this.#tokensMs + earned);
    if (this.#secondCaptures > 0) {
      const cost = this.#secondMs / this.#secondCaptures;
      this.#costMs = this.#costMs === undefined ? cost : 0.5 * this.#costMs + 0.5 * cost;
    }
    this.#secondCaptures = 0;
    this.#secondMs = 0;
    if (this.#tokensMs <= 0) this.#shared = true;
    else if (this.#tokensMs >= this.#capacityMs * unshareShare) this.#shared = false;
    this.#earnedMs = earned;
    this.#epoch++;
    if (this.#shared) this.#shareOut(earned + this.#tokensMs / settleSeconds, this.#epoch - 1);
    else this.#fairShare = Infinity;
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

  /**
   * Shares `spendMs` of captures a second out among the classes by what
   * each made in second `epoch` (max-min fair: a class that made less than
   * the fair share gets all it made, the rest share what is left), and sets
   * each busy class's level so that its expected stacks are its share.
   */
  #shareOut(spendMs: number, epoch: number): void {
    const classes = [...this.#classes.values()];
    const demandOf = (cls: CaptureClass) => (cls.window.epoch === epoch ? cls.window.attempts : 0);
    const demands = classes.map(demandOf).filter((d) => d > 0).sort((a, b) => a - b);
    let left = Math.max(0, spendMs / (this.#costMs ?? firstCostMs));
    let share = Infinity;
    for (let i = 0; i < demands.length; i++) {
      const even = left / (demands.length - i);
      if (demands[i]! > even) {
        share = even;
        break;
      }
      left -= demands[i]!;
    }
    this.#fairShare = Math.max(minShare, share);
    for (const cls of classes) {
      const demand = demandOf(cls);
      cls.level = demand > this.#fairShare ? levelFor(demand, this.#fairShare) : this.#fairShare;
      cls.levelEpoch = this.#epoch;
    }
  }

  /** Whether every task gets its stack (full tracking). */
  get unlimited(): boolean {
    return this.#unlimited;
  }

  stats(): StackBudgetStats {
    return {
      share: this.#unlimited ? 1 : this.#share,
      captures: this.#captures,
      captureMs: Math.round(this.#captureMs * 1000) / 1000,
      refused: this.#refused,
      balanceMs: this.#unlimited ? 0 : Math.round(this.#tokensMs * 1000) / 1000,
      shared: this.#shared,
      stacksPerClass: this.#shared ? Math.round(this.#fairShare * 100) / 100 : null,
    };
  }

  /** A task's class: its type on its route. */
  classOf(type: string, labels: LabelSet | undefined): CaptureClass {
    if (labels !== undefined) return this.#labelledClass(type, labels);
    // Unlabelled promises (most of a background job's tasks): their class kept at hand.
    if (type === 'Promise') return (this.#unlabelledPromises ??= this.#classOf(type, '', NaN));
    return this.#classOf(type, '', NaN);
  }

  /**
   * A timer's class: its duration, to the power of two below it, on its
   * route. The duration tells a leaking interval apart from the app's many
   * short timeouts for free; by powers of two, timeouts of random or
   * remaining durations (a retry's jitter, Node's keep-alive) make a few
   * classes, not one each.
   */
  timerClassOf(type: string, labels: LabelSet | undefined, duration: number): CaptureClass {
    const msecs = duration >= 2 ? 2 ** (31 - Math.clz32(duration)) : 1;
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
    const weight = this.#weightOf(cls, n);
    if (weight === 0) this.#refused++;
    return weight;
  }

  #weightOf(cls: CaptureClass, n: number): number {
    if (this.#tokensMs > 0 && !this.#shared) return EXACT;
    if (this.#tokensMs <= -this.#capacityMs) return 0;
    // Over the budget: every class's tasks up to the level, then its n-th
    // with probability level/n (the first ones too, at a level below 1).
    if (!this.#shared) {
      // The bank ran out within this second: shared from now on, at the
      // level this second's tasks so far would have had.
      this.#shared = true;
      this.#shareOut(this.#earnedMs, this.#epoch);
    }
    // A class made since the levels were set (or forgotten meanwhile) has the fair share as its level.
    const level = cls.levelEpoch === this.#epoch ? cls.level : this.#fairShare;
    if (n <= level) return EXACT;
    // Samples past the level borrow little: a burst within one second
    // (level × ln(n / level) samples) would otherwise spend the whole debt
    // limit (measured: 6% of a Fastify server's CPU for ten seconds after
    // start, with the same debt as the bank).
    if (this.#tokensMs <= -this.#capacityMs * samplingDebtShare) return 0;
    return Math.random() * n < level ? n / level : 0;
  }

  /** The class's window of this second. */
  windowOf(cls: CaptureClass): CaptureWindow {
    let window = cls.window;
    if (window.epoch !== this.#epoch) window = cls.window = new CaptureWindow(cls, this.#epoch);
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
    const charged = Math.min(ms, maxChargeMs);
    this.#captures++;
    this.#captureMs += charged;
    if (this.#unlimited) return;
    this.#tokensMs -= charged;
    this.#secondCaptures++;
    this.#secondMs += charged;
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
    cls = new CaptureClass(type, msecs, this, this.#epoch);
    this.#classes.set(key, cls);
    return cls;
  }
}

/**
 * The stacks a class that makes `tasks` tasks in a second gets at `level`:
 * all of them up to the level, then the n-th with probability level/n.
 */
export function expectedCaptures(tasks: number, level: number): number {
  if (tasks <= level) return tasks;
  const whole = Math.floor(level);
  return whole + level * (harmonic(tasks) - harmonic(whole));
}

/** The level at which a class making `tasks` a second expects `stacks` stacks (stacks < tasks). */
export function levelFor(tasks: number, stacks: number): number {
  let low = minShare * 0.01;
  let high = stacks;
  for (let i = 0; i < 30; i++) {
    const mid = (low + high) / 2;
    if (expectedCaptures(tasks, mid) <= stacks) low = mid;
    else high = mid;
  }
  return low;
}

// H(n) = 1 + 1/2 + ... + 1/n, to within 1e-4 from n = 1.
function harmonic(n: number): number {
  if (n < 1) return 0;
  return Math.log(n) + 0.5772156649 + 1 / (2 * n) - 1 / (12 * n * n);
}
