// What the benches share: pinning processes to a CPU, forking a server child
// that talks to the parent over IPC only, and saying which build a result is of.
import { execFileSync, fork } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const distTracker = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'src', 'tracker', 'tracker.js');

/** Whether `taskset` can pin processes here (2+ CPUs and the tool present). */
export const canPin =
  os.cpus().length >= 2 &&
  (() => {
    try {
      execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

/** Pins a process and all its threads to one CPU; without taskset the figures are only noisier. */
export function pinToCpu(pid, cpu) {
  if (!canPin) return;
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
  } catch {
    // Not fatal.
  }
}

/** The commit, and when dist/ was last built (checked again at the end: a rebuild during a run would mix versions). */
export function provenance() {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: path.dirname(distTracker), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    // Not a git checkout.
  }
  let distBuilt;
  try {
    distBuilt = statSync(distTracker).mtime.toISOString();
  } catch {
    distBuilt = 'unknown';
  }
  return { commit, distBuilt };
}

/**
 * Forks `script` with `args` as a server child, pinned to `cpu`, added to
 * `children` (so the parent can kill them all) while it runs. The child
 * sends `{ type: 'ready', port }` when listening and answers `{ type, id }`
 * messages with `{ id, ... }`, and exits on `{ type: 'exit' }`. Resolves to
 * `{ pid, port, ready, agent, ask(type), stop() }`.
 */
export function forkServer({ script, args, label, children, cpu, execArgv = [], readyTimeoutMs = 30_000, stopTimeoutMs = 3000, agent = new http.Agent({ keepAlive: true, maxSockets: Infinity }) }) {
  const proc = fork(script, args, { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(proc);
  pinToCpu(proc.pid, cpu);
  const pending = new Map();
  let nextId = 1;
  let exited = false;
  return new Promise((resolve, reject) => {
    const startTimer = setTimeout(() => reject(new Error(`${label}: not ready after ${readyTimeoutMs / 1000} s`)), readyTimeoutMs);
    proc.on('exit', (code, signal) => {
      exited = true;
      children.delete(proc);
      clearTimeout(startTimer);
      const error = new Error(`${label}: server exited (${signal ?? code})`);
      for (const { reject: r } of pending.values()) r(error);
      pending.clear();
      reject(error);
    });
    proc.on('message', (message) => {
      if (message.type === 'ready') {
        clearTimeout(startTimer);
        // Threads started since the fork (V8's workers) are pinned too.
        pinToCpu(proc.pid, cpu);
        resolve({
          pid: proc.pid,
          port: message.port,
          ready: message,
          agent,
          ask(type) {
            if (exited) return Promise.reject(new Error(`${label}: server has exited`));
            const id = nextId++;
            return new Promise((res, rej) => {
              pending.set(id, { resolve: res, reject: rej });
              proc.send({ type, id });
            });
          },
          async stop() {
            agent.destroy();
            if (exited) return;
            const gone = new Promise((r) => proc.once('exit', r));
            proc.send({ type: 'exit' }, () => {});
            const timer = setTimeout(() => proc.kill('SIGKILL'), stopTimeoutMs);
            await gone;
            clearTimeout(timer);
          },
        });
      } else if (pending.has(message.id)) {
        pending.get(message.id).resolve(message);
        pending.delete(message.id);
      }
    });
  });
}

/**
 * Reads a paused response slowly: at most 64 KiB every 10 ms, handing each
 * chunk to `onChunk` (a client on a slow link, to see back-pressure work).
 * Returns the interval, for the caller to clear when the response ends.
 */
export function readSlowly(res, onChunk) {
  res.pause();
  return setInterval(() => {
    let got = 0;
    while (got < 65536) {
      const want = Math.min(65536 - got, res.readableLength);
      if (want === 0) {
        res.read(0);
        break;
      }
      const chunk = res.read(want);
      if (chunk === null) break;
      got += chunk.length;
      onChunk(chunk);
    }
  }, 10);
}

// Resident memory of a process, read from /proc: VmRSS sampled every
// `everyMs`, and VmHWM, the kernel's own peak, reset through clear_refs.
export function rssWatch(pid, everyMs = 2) {
  const read = () => {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name) => Number(status.match(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm'))?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  };
  const resetHwm = () => {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5');
      return true;
    } catch {
      return false;
    }
  };
  let hwmReset = resetHwm();
  const start = read();
  let peak = start.rss;
  let samples = 0;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, read().rss);
      samples++;
    } catch {
      // The process is gone.
    }
  }, everyMs);
  const take = () => {
    const now = read();
    const result = { rss: now.rss, peakRss: Math.max(peak, now.rss, hwmReset ? now.hwm : 0), sampledPeakRss: Math.max(peak, now.rss), hwm: now.hwm, samples };
    return result;
  };
  return {
    startRss: start.rss,
    hwmReset,
    // Ends a phase: its peak; the next phase starts from here.
    phase() {
      const result = take();
      hwmReset = resetHwm();
      const now = read();
      peak = now.rss;
      samples = 0;
      return { ...result, nextStartRss: now.rss };
    },
    stop() {
      clearInterval(timer);
      return take();
    },
  };
}

/**
 * Runs `run(n)` once as a warm-up (at most 50,000), then 5 times with
 * `batch`, and returns the median batch's nanoseconds per operation.
 */
export async function medianBatchNs(run, batch) {
  await run(Math.min(batch, 50_000));
  const perOp = [];
  for (let b = 0; b < 5; b++) {
    const started = process.hrtime.bigint();
    await run(batch);
    perOp.push(Number(process.hrtime.bigint() - started) / batch);
  }
  perOp.sort((a, b) => a - b);
  return perOp[2];
}

/** The median of numbers (the mean of the middle two for an even count). */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
