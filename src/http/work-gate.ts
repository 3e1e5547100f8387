// The process-wide gate for work that holds the event loop: listings and
// profiles computed in one go (tasks, leaks, heap) run one at a time in the
// process, whatever mount asks, and after one that held the loop for more
// than freeMs the next waits as long again (at most cooldownMaxMs): the app
// keeps at least about half of the process whatever the scrapers do. Up to
// maxWaiting wait their turn; more are refused (429). Delta profiles take
// each of their two listings through it, and at most maxDeltaWaits of them
// wait between their listings at once in the process.
import { setTimeout as sleep } from 'node:timers/promises';

const freeMs = 20;
export const cooldownMaxMs = 1000;
const maxWaiting = 8;
const maxDeltaWaits = 8;

const gate = { running: false, openAt: 0, waiting: 0, deltas: 0 };

/**
 * Waits for the gate and takes it: resolves to the function that gives it
 * back, or undefined when too many wait or the client left while waiting.
 */
export async function enterWorkGate(signal: AbortSignal): Promise<(() => void) | undefined> {
  if (gate.running || performance.now() < gate.openAt) {
    if (gate.waiting >= maxWaiting) return undefined;
    gate.waiting++;
    try {
      while (gate.running || performance.now() < gate.openAt) {
        await sleep(Math.max(5, gate.openAt - performance.now()), undefined, { signal });
      }
    } catch {
      return undefined;
    } finally {
      gate.waiting--;
    }
  }
  gate.running = true;
  const startedAt = performance.now();
  return () => {
    const now = performance.now();
    const took = now - startedAt;
    gate.running = false;
    gate.openAt = took > freeMs ? now + Math.min(took, cooldownMaxMs) : 0;
  };
}

/** Runs `work` inside the gate; undefined (nothing run) when the gate refused. */
export async function runInWorkGate<T>(signal: AbortSignal, work: () => T | Promise<T>): Promise<{ value: T } | undefined> {
  const leave = await enterWorkGate(signal);
  if (leave === undefined) return undefined;
  try {
    return { value: await work() };
  } finally {
    leave();
  }
}

/** Counts a delta profile as waiting; false when maxDeltaWaits already do. Give it back with leaveDeltaWait(). */
export function enterDeltaWait(): boolean {
  if (gate.deltas >= maxDeltaWaits) return false;
  gate.deltas++;
  return true;
}

export function leaveDeltaWait(): void {
  gate.deltas--;
}

/** A copy of the gate's state (for the index page's figures and for tests). */
export function workGateState(): { running: boolean; waiting: number; deltas: number } {
  return { running: gate.running, waiting: gate.waiting, deltas: gate.deltas };
}
