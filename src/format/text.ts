// Small text helpers shared by the text listings.
import { displayPath, type StackFrame } from '../stacks/stack.js';

/** A Go-style duration: 350ms, 4.2s, 14m3s, 2h5m0s. */
export function formatAge(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 60_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)}s`;
  const totalSeconds = Math.floor(ms / 1000);
  const h = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const s = totalSeconds % 60;
  return h > 0 ? `${h}h${m}m${s}s` : `${m}m${s}s`;
}

/** `file:line:column`, relative to the working directory when inside it. */
export function formatPosition(frame: StackFrame): string {
  return `${displayPath(frame.file)}:${frame.line}:${frame.column}`;
}

/** A stack as `#\t<function>\t<file:line:column>` lines, as Go's debug=1 listings show frames. */
export function frameLines(frames: readonly StackFrame[]): string {
  let out = '';
  for (const frame of frames) out += `#\t${frame.functionName}\t${formatPosition(frame)}\n`;
  return out;
}

/** A flow group's frames (see TaskGroup.parkedFrames) as its two parts: where its flows are parked, and where they started. */
export function flowParts(frames: readonly StackFrame[], parkedFrames: number): { parkedAt: StackFrame[]; startedAt: StackFrame[] } {
  return { parkedAt: frames.slice(0, parkedFrames), startedAt: frames.slice(parkedFrames) };
}

/** A group's frames; a group of flows' in two blocks: the first `parkedFrames` where they are parked, the rest where they started. */
export function groupFrameLines(frames: readonly StackFrame[], parkedFrames: number): string {
  if (parkedFrames === 0) return frameLines(frames);
  const { parkedAt, startedAt } = flowParts(frames, parkedFrames);
  return '# parked at\n' + frameLines(parkedAt) + '# started at\n' + frameLines(startedAt);
}
