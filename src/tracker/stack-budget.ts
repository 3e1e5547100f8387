// Stack capture under a CPU budget. A creation stack costs microseconds to
// capture (docs/design.md), far more than the task itself, so the tracker
// captures them within a share of the process's CPU time: while it is under
// the share, every task gets its stack; above it, each capture class (a task
// type on an HTTP route) still gets its first few stacks every second, and
// the rest of its tasks are counted without one. Each record remembers the
// class window it was captured in, so a listing can say how many tasks a
// sampled record stands for.
import type { LabelSet } from '../labels.js';

/** Tasks of one class in one second, and how many of them got a stack. */
export class CaptureWindow {
  attempts = 0;
  admitted = 0;
  constructor(readonly epoch: number) {}
}

/** A window of one task that got its stack: weight 1. */
export const EXACT_WINDOW: CaptureWindow = Object.freeze(Object.assign(new CaptureWindow(-1), { attempts: 1, admitted: 1 }));

interface CaptureClass {
  window: CaptureWindow;
}

// Stacks each class gets every second whatever the budget, so that a route
// that makes few tasks always has all its stacks even while a busy route
// (or a fetch-heavy background job) uses the budget up; and at most this
// many such stacks a second in all (about 1% of a core at 20 µs a stack).
const guaranteedPerClass = 16;
const guaranteedPerSecond = 500;
// Classes followed at once; beyond, the rest of a type shares one class.
const maxClasses = 256;
// Most capture time banked while idle: a burst of new tasks (start-up, a
// test) after a quiet while gets all its stacks.
const capacityMs = 200;
// Capture time granted every second (refill()) even to an idle process: a tenth of a per cent.
const floorMsPerSecond = 1;

export class StackBudget {
  // May go below zero: guaranteed captures run into debt.
  #tokensMs = capacityMs;
  #share: number;
  #lastCpuUs = 0;
  #epoch = 0;
  #guaranteedThisSecond = 0;
  #classes = new Map<string, CaptureClass>();
  #unlimited: boolean;

  constructor(share: number, unlimited: boolean) {
    this.#share = share;
    this.#unlimited = unlimited;
    // No share, no bank: only each class's guaranteed few stacks a second.
    if (share === 0) this.#tokensMs = 0;
    const cpu = process.cpuUsage();
    this.#lastCpuUs = cpu.user + cpu.system;
  }

  /** Called every second: earns the share of the CPU time used since, and starts new class windows. */
  refill(): void {
    if (this.#unlimited) return;
    const cpu = process.cpuUsage();
    const cpuUs = cpu.user + cpu.system;
    const earned = this.#share === 0 ? 0 : (this.#share * (cpuUs - this.#lastCpuUs)) / 1000 + floorMsPerSecond;
    this.#lastCpuUs = cpuUs;
    this.#tokensMs = Math.min(capacityMs, this.#tokensMs + earned);
    this.#epoch++;
    this.#guaranteedThisSecond = 0;
    // Classes idle for a whole window are forgotten.
    if (this.#classes.size > maxClasses / 2) {
      for (const [key, cls] of this.#classes) if (cls.window.epoch < this.#epoch - 1) this.#classes.delete(key);
    }
  }

  /** Whether every task gets its stack (full tracking). */
  get unlimited(): boolean {
    return this.#unlimited;
  }

  /**
   * The class window a task is counted in, when it may get a stack now;
   * undefined when not. `detail` splits a type's class further where
   * something cheap tells sites apart (a timer's duration).
   */
  admit(type: string, labels: LabelSet | undefined, detail?: string): CaptureWindow | undefined {
    if (this.#unlimited) return EXACT_WINDOW;
    const cls = detail !== undefined ? this.#classOf(type + '\0' + detail, labels === undefined ? '' : this.#routeOf(labels)) : labels === undefined ? this.#classOf(type, '') : this.#labelledClass(type, labels);
    let window = cls.window;
    if (window.epoch !== this.#epoch) window = cls.window = new CaptureWindow(this.#epoch);
    window.attempts++;
    if (this.#tokensMs > 0) {
      window.admitted++;
      return window;
    }
    if (window.admitted < guaranteedPerClass && this.#guaranteedThisSecond < guaranteedPerSecond) {
      this.#guaranteedThisSecond++;
      window.admitted++;
      return window;
    }
    return undefined;
  }

  /** Takes the time a capture took from the budget. */
  charge(ms: number): void {
    if (!this.#unlimited) this.#tokensMs -= ms;
  }

  #labelledClass(type: string, labels: LabelSet): CaptureClass {
    // Promises are most tasks: their class is kept on the label set.
    const promise = type === 'Promise';
    if (promise && labels.promiseCaptureClass !== undefined) return labels.promiseCaptureClass as CaptureClass;
    const cls = this.#classOf(type, this.#routeOf(labels));
    // Late labels (Express's route) may still come: kept only once they have.
    if (promise && !labels.pending) labels.promiseCaptureClass = cls;
    return cls;
  }

  #routeOf(labels: LabelSet): string {
    const values = labels.values;
    return `${values.method ?? ''} ${values.route ?? ''}`;
  }

  #classOf(type: string, route: string): CaptureClass {
    let key = type + '\0' + route;
    let cls = this.#classes.get(key);
    if (cls !== undefined) return cls;
    // Past the limit, new classes of a type share one.
    if (this.#classes.size >= maxClasses) {
      key = type + '\0\0other';
      cls = this.#classes.get(key);
      if (cls !== undefined) return cls;
    }
    cls = { window: new CaptureWindow(this.#epoch) };
    this.#classes.set(key, cls);
    return cls;
  }
}

