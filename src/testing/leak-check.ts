// taskprof/testing: fail a test that leaves tasks behind, like Go's goleak
// and leaktest. Tracking is forced to `full` (every task, with its stack)
// while a check runs, and put back as it was when the last check ends.
import v8 from 'node:v8';
import vm from 'node:vm';
import { tracker } from '../tracker/tracker.js';
import { PROMISE_TYPE, type TaskRecord, type TrackerSettings } from '../tracker/types.js';
import { describeTask } from '../tasks/describe.js';
import { framesOf, type StackFrame } from '../stacks/stack.js';
import { taskEntry } from '../tasks/entry.js';
import { FlowIndex } from '../tasks/flows.js';
import { taskText } from '../profiles/tasks.js';
import { holdFullTracking, releaseFullTracking } from '../tracker/control.js';
import { ownWork, runWithLabels } from '../labels/labels.js';

export type SitePattern = string | RegExp;

export interface LeakCheckOptions {
  /**
   * How long verify() waits for tasks that are finishing, in ms: it looks
   * again with growing pauses (1 ms doubling up to 100 ms) until they are gone
   * or this much time has passed. Default 2000.
   */
  timeoutMs?: number;
  /**
   * Ignore tasks with a frame anywhere in their creation stack that matches:
   * a string is looked for in the function name and in the file path; a
   * RegExp is tested against `<function> <file>:<line>:<column>`.
   */
  ignore?: readonly SitePattern[];
  /** Ignore tasks of these types (`Timeout`, `Promise`, `TCPWRAP`, ...). */
  ignoreTypes?: readonly string[];
  /** Ignore tasks whose creating task was made at a matching site (same matching as `ignore`). */
  ignoreCreatedBy?: readonly SitePattern[];
  /**
   * Ignore every task that was live when the check started. Default true:
   * the check is about what the code under test leaves behind. With false,
   * tasks already live are reported too (those the tracker recorded: it
   * records only from when tracking became `full`).
   */
  ignoreCurrent?: boolean;
  /**
   * After a failed check, the leaked handles it reported (timers, sockets,
   * servers, child processes...) are unref'd, so that they no longer keep
   * the process alive and the test runner can exit after its report; they
   * go on running. Set true to leave them as they are. Default false.
   */
  keepLeaked?: boolean;
}

export interface LeakCheck {
  /** Resolves when no new task outlives the code under test; rejects with a LeakError listing them otherwise. */
  verify(): Promise<void>;
}

/** The tasks a check found, each as the `debug=2` listing shows it. */
export class LeakError extends Error {
  constructor(
    message: string,
    readonly leaks: ReadonlyArray<{ id: number; type: string; stack: StackFrame[] }>,
  ) {
    super(message);
    this.name = 'LeakError';
  }
}

const defaultTimeoutMs = 2000;
const firstPauseMs = 1;
const longestPauseMs = 100;

function validate(options: LeakCheckOptions): Required<LeakCheckOptions> {
  if (options === null || typeof options !== 'object') throw new TypeError('taskprof/testing: options must be an object');
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0) {
    throw new TypeError(`taskprof/testing: option "timeoutMs" must be a number of milliseconds >= 0, got ${String(timeoutMs)}`);
  }
  const patterns = (name: string, value: readonly SitePattern[] | undefined): readonly SitePattern[] => {
    if (value === undefined) return [];
    if (!Array.isArray(value) || !value.every((p) => typeof p === 'string' || p instanceof RegExp)) {
      throw new TypeError(`taskprof/testing: option "${name}" must be an array of strings and RegExps`);
    }
    return value;
  };
  const ignoreTypes = options.ignoreTypes ?? [];
  if (!Array.isArray(ignoreTypes) || !ignoreTypes.every((t) => typeof t === 'string')) {
    throw new TypeError('taskprof/testing: option "ignoreTypes" must be an array of type names');
  }
  const ignoreCurrent = options.ignoreCurrent ?? true;
  if (typeof ignoreCurrent !== 'boolean') throw new TypeError('taskprof/testing: option "ignoreCurrent" must be true or false');
  const keepLeaked = options.keepLeaked ?? false;
  if (typeof keepLeaked !== 'boolean') throw new TypeError('taskprof/testing: option "keepLeaked" must be true or false');
  return {
    timeoutMs,
    ignore: patterns('ignore', options.ignore),
    ignoreTypes,
    ignoreCreatedBy: patterns('ignoreCreatedBy', options.ignoreCreatedBy),
    ignoreCurrent,
    keepLeaked,
  };
}

/** Lets the leaked handles no longer hold the process open (they keep running). */
function unrefLeaked(leaks: readonly TaskRecord[]): void {
  for (const record of leaks) {
    try {
      (record.resource as { unref?: () => unknown } | undefined)?.unref?.();
    } catch {
      // A handle that refuses stays as it is.
    }
  }
}

// Process-wide handles Node creates once, on first use, and keeps: the DNS
// resolver's channel (made by the first lookup, a listen('127.0.0.1') too),
// stdout and stderr (made by the first console.log), and the HTTP server's
// Date-header cache timer. Not leaks.
function isProcessSingleton(record: TaskRecord): boolean {
  if (record.type === 'DNSCHANNEL') return true;
  // Node's HTTP Date-header cache: an unref'd timer of under a second, restarted by the first response after it fires.
  if (record.type === 'Timeout') {
    const timer = record.resource as { _onTimeout?: { name?: string } } | undefined;
    return timer?._onTimeout?.name === 'resetCache';
  }
  if (record.type !== 'TTYWRAP' && record.type !== 'PIPEWRAP') return false;
  const handle = record.resource;
  if (handle === undefined) return false;
  const stdio = [process.stdout, process.stderr] as unknown as Array<{ _handle?: object }>;
  return stdio.some((stream) => stream._handle === handle);
}

// Test runners' own timers and promises (a hook's timeout, say) made while a
// check runs: judged by the frame that made them, the top one, since every
// task a test makes has the runner further down its stack.
const testRunnerFiles = /[\\/]node_modules[\\/](mocha|vitest|@vitest[\\/][^\\/]+|jest-[a-z-]+|@jest[\\/][^\\/]+)[\\/]/;

function isNodeInternal(frame: StackFrame): boolean {
  return frame.file.startsWith('node:') || !frame.file.includes('/');
}

function frameMatches(frame: StackFrame, pattern: SitePattern): boolean {
  if (typeof pattern === 'string') return frame.functionName.includes(pattern) || frame.file.includes(pattern);
  pattern.lastIndex = 0;
  return pattern.test(`${frame.functionName} ${frame.file}:${frame.line}:${frame.column}`);
}

function anyFrameMatches(frames: readonly StackFrame[], patterns: readonly SitePattern[]): boolean {
  return patterns.some((pattern) => frames.some((frame) => frameMatches(frame, pattern)));
}

// Checks running now: the first forces full tracking, the last puts back
// the previous settings, or those a mount or the API asked for meanwhile.
let running = 0;
let savedSettings: TrackerSettings | undefined;

function forceFullTracking(): void {
  if (running++ > 0) return;
  savedSettings = holdFullTracking();
}

function restoreTracking(): void {
  if (--running > 0 || savedSettings === undefined) return;
  const saved = savedSettings;
  savedSettings = undefined;
  releaseFullTracking(saved);
}

// A pending promise nobody references is garbage, not a leak: collect it
// (and let FinalizationRegistry callbacks run) before deciding.
let gcFunction: (() => void) | undefined;
async function collectGarbage(): Promise<void> {
  if (gcFunction === undefined) {
    v8.setFlagsFromString('--expose-gc');
    gcFunction = vm.runInNewContext('gc') as () => void;
  }
  gcFunction();
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function describeLeaks(leaks: TaskRecord[], flows: FlowIndex, timeoutMs: number): string {
  const now = Date.now();
  let message = `taskprof: ${leaks.length} task${leaks.length === 1 ? '' : 's'} leaked: still live ${timeoutMs} ms after the code under test ended\n\n`;
  for (const record of leaks) message += taskText(taskEntry(record, flows.view(record)), now);
  return message.trimEnd();
}

/**
 * Starts a leak check: call it before the code under test and `await
 * check.verify()` after. Tracking is `full` from now until verify() ends.
 */
export function startLeakCheck(options: LeakCheckOptions = {}): LeakCheck {
  const settings = validate(options);
  forceFullTracking();
  const startedAfterId = settings.ignoreCurrent ? tracker.lastTaskId : 0;
  let verified = false;

  // A flow is one task: its head (the promise nobody awaits) is judged and shown.
  let flows = new FlowIndex([]);
  const leaked = (): TaskRecord[] => {
    const records = tracker.records();
    flows = new FlowIndex(records);
    return flows.tasksOf(records).filter((record) => {
      if (record.id <= startedAfterId) return false;
      if (settings.ignoreTypes.includes(record.type) || isProcessSingleton(record)) return false;
      // Tasks without a stack (made before full tracking began) cannot be judged by site.
      if (record.stack === undefined) return settings.ignore.length === 0;
      const frames = framesOf(record.stack);
      // Promises made by Node's own machinery (the test runner's, say): no
      // frame of anyone's code, and no creator with one. Handles are judged
      // even so: a server whose listen() went through a DNS lookup first is
      // created on a later tick, with Node's frames only, and is still the
      // code's server.
      if (record.type === PROMISE_TYPE && frames.every(isNodeInternal) && (record.parentStack === undefined || framesOf(record.parentStack).every(isNodeInternal))) {
        return false;
      }
      // Node's own housekeeping timers (fetch's timer wheel, say): unref'd, with Node's frames only.
      if (record.type === 'Timeout' && frames.every(isNodeInternal) && describeTask(record, false).endsWith('unref')) return false;
      if (frames[0] !== undefined && testRunnerFiles.test(frames[0].file)) return false;
      if (anyFrameMatches(frames, settings.ignore)) return false;
      if (settings.ignoreCreatedBy.length > 0 && record.parentStack !== undefined && anyFrameMatches(framesOf(record.parentStack), settings.ignoreCreatedBy)) {
        return false;
      }
      return true;
    });
  };

  async function verify(): Promise<void> {
    if (verified) throw new Error('taskprof/testing: verify() was already called for this check');
    verified = true;
    try {
      const deadline = Date.now() + settings.timeoutMs;
      let pause = firstPauseMs;
      let leaks = leaked();
      while (leaks.length > 0 && Date.now() < deadline) {
        await sleep(Math.min(pause, Math.max(0, deadline - Date.now())));
        pause = Math.min(pause * 2, longestPauseMs);
        leaks = leaked();
      }
      if (leaks.length > 0) {
        await collectGarbage();
        leaks = leaked();
      }
      if (leaks.length > 0) {
        const error = new LeakError(
          describeLeaks(leaks, flows, settings.timeoutMs),
          leaks.map((r) => ({ id: r.id, type: r.type, stack: r.stack === undefined ? [] : framesOf(r.stack) })),
        );
        // Reported as they were; then they no longer hold the runner open.
        if (!settings.keepLeaked) unrefLeaked(leaks);
        throw error;
      }
    } finally {
      restoreTracking();
    }
  }

  return {
    // A plain method calling the async function inside taskprof's own scope:
    // the promise verify() returns, and its pauses, are not tasks it checks.
    verify: () => runWithLabels(ownWork, verify),
  };
}

/** Runs `fn` and fails (rejects with a LeakError) if a task it started outlives it by more than `timeoutMs`. Resolves to what `fn` returns. */
export async function expectNoLeaks<T>(fn: () => T | Promise<T>, options: LeakCheckOptions = {}): Promise<T> {
  const check = startLeakCheck(options);
  let result: T;
  try {
    result = await fn();
  } catch (error) {
    // The test's own failure comes first; the check still ends (and restores tracking).
    await check.verify().catch(() => {});
    throw error;
  }
  await check.verify();
  return result;
}
