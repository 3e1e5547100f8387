// Creation stacks: captured as compact interned strings so that a record never
// holds V8 call-site objects (they keep receivers and functions alive).
import { findSourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export interface StackFrame {
  functionName: string;
  file: string;
  line: number;
  column: number;
}

export interface StackEntry {
  readonly id: number;
  readonly key: string;
  /** Parsed and source-mapped frames, built on first report. */
  frames: StackFrame[] | undefined;
}

// Frames kept per stack after Node's and taskprof's own frames are dropped.
const keptFrames = 24;
// Frames V8 walks per capture. A capture costs microseconds, and more with
// each frame (docs/design.md), so each kind walks what reaches the line that
// made the task and a few callers: a promise's creator is the first frame
// under the promise hook; a timer's is three frames under the Timeout
// constructor; a client socket of an HTTP request is made about ten frames
// inside Node.
export const promiseCaptureDepth = 10;
export const timerCaptureDepth = 12;
export const resourceCaptureDepth = 20;
// Shown when every frame is Node's own, so that the task is still recognisable.
const internalFallbackFrames = 3;

// The package root: this file is dist/src/stacks/stack.js.
const ownDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const ownDirUrl = 'file://' + ownDir + '/dist/';
const ownDirPath = ownDir + path.sep + 'dist' + path.sep;

// Node's own hook and timer plumbing: never informative, even as a fallback.
const plumbingFiles = new Set(['node:internal/async_hooks', 'node:internal/timers', 'node:internal/process/task_queues', 'node:internal/promise_hooks', 'node:diagnostics_channel']);

/** Returned by capture when the task was created by taskprof itself. */
export const OWN_TASK = '\u0000taskprof';

function isInternal(file: string | null | undefined): boolean {
  return file == null || file.startsWith('node:') || file === '<anonymous>' || !file.includes('/');
}

function isOwn(file: string): boolean {
  return file.startsWith(ownDirPath) || file.startsWith(ownDirUrl);
}

// taskprof's wrappers and accessors sit between the app and Node (the app's
// http.get goes through the Agent wrapper before Node's net.connect reaches
// the socket's): their frames are skipped like Node's, not taken as
// taskprof's own work.
function isWrapper(file: string): boolean {
  return file.endsWith('/src/tracker/handles.js') || file.endsWith('/src/tracker/timers.js');
}

function frameKey(site: NodeJS.CallSite, file: string): string {
  let name = site.getFunctionName() ?? '';
  if (site.isConstructor()) name = 'new ' + (name || '<anonymous>');
  else if (site.isAsync()) name = 'async ' + (name || '<anonymous>');
  return name + '\t' + file + '\t' + (site.getLineNumber() ?? 0) + '\t' + (site.getColumnNumber() ?? 0);
}

// Error.prepareStackTrace replacement used only while capturing: turns call
// sites into one string, dropping Node's and taskprof's frames.
function stackKeyOf(_error: Error, sites: NodeJS.CallSite[]): string {
  let key = '';
  let kept = 0;
  let sawUser = false;
  for (const site of sites) {
    const file = site.getFileName();
    if (isInternal(file) || isWrapper(file as string)) continue;
    if (isOwn(file as string)) {
      if (!sawUser) return OWN_TASK;
      continue;
    }
    sawUser = true;
    key += (kept === 0 ? '' : '\n') + frameKey(site, file as string);
    if (++kept === keptFrames) break;
  }
  if (kept > 0) return key;
  for (const site of sites) {
    const file = site.getFileName();
    if (file == null || plumbingFiles.has(file)) continue;
    key += (kept === 0 ? '' : '\n') + frameKey(site, file);
    if (++kept === internalFallbackFrames) break;
  }
  return key;
}

function withStackSettings<T>(depth: number, prepare: typeof Error.prepareStackTrace, fn: () => T): T {
  const savedLimit = Error.stackTraceLimit;
  const savedPrepare = Error.prepareStackTrace;
  Error.stackTraceLimit = depth;
  Error.prepareStackTrace = prepare;
  try {
    return fn();
  } finally {
    Error.stackTraceLimit = savedLimit;
    Error.prepareStackTrace = savedPrepare;
  }
}

/**
 * Captures the current stack, without the frames above (and including)
 * `above`, as a key string; OWN_TASK when taskprof's own code created it.
 */
export function captureStackKey(above: Function, depth: number): string {
  return withStackSettings(depth, stackKeyOf as typeof Error.prepareStackTrace, () => {
    const holder: { stack?: string } = {};
    Error.captureStackTrace(holder, above);
    return holder.stack ?? '';
  });
}

/**
 * Interned stacks shared by the records that have them. Entries no live
 * task uses are forgotten when the table has grown (prune): a timer ends
 * without an event, so entries cannot count their users.
 */
export class StackTable {
  #entries = new Map<string, StackEntry>();
  #nextId = 1;
  #pruneAt = 1024;

  get size(): number {
    return this.#entries.size;
  }

  intern(key: string): StackEntry {
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      entry = { id: this.#nextId++, key, frames: undefined };
      this.#entries.set(key, entry);
    }
    return entry;
  }

  /** Whether the table has grown enough since the last prune to be worth one. */
  get wantsPrune(): boolean {
    return this.#entries.size >= this.#pruneAt;
  }

  /** Forgets the entries not in `used` (those of live tasks and kept sites). */
  prune(used: ReadonlySet<StackEntry>): void {
    for (const [key, entry] of this.#entries) if (!used.has(entry)) this.#entries.delete(key);
    this.#pruneAt = Math.max(1024, this.#entries.size * 2);
  }

  clear(): void {
    this.#entries.clear();
  }
}

/** A stack or profile file name as a path: file:// URLs converted. */
export function filePath(file: string): string {
  if (file.startsWith('file://')) {
    try {
      return fileURLToPath(file);
    } catch {
      return file;
    }
  }
  return file;
}

// Maps a generated position to its source when the app runs with source maps
// (--enable-source-maps or process.setSourceMapsEnabled(true)).
function sourceMapped(frame: StackFrame, rawFile: string): StackFrame {
  if (frame.line === 0) return frame;
  let map;
  try {
    map = findSourceMap(rawFile) ?? (rawFile === frame.file ? undefined : findSourceMap(frame.file));
  } catch {
    return frame;
  }
  if (map === undefined) return frame;
  const entry = map.findEntry(frame.line - 1, frame.column - 1) as Partial<{
    originalSource: string;
    originalLine: number;
    originalColumn: number;
  }>;
  if (entry.originalSource === undefined || entry.originalLine === undefined) return frame;
  return {
    functionName: frame.functionName,
    file: filePath(entry.originalSource),
    line: entry.originalLine + 1,
    column: (entry.originalColumn ?? 0) + 1,
  };
}

/** The frames of an entry: parsed, with files as paths, source-mapped. */
export function framesOf(entry: StackEntry): StackFrame[] {
  if (entry.frames !== undefined) return entry.frames;
  const frames: StackFrame[] = [];
  if (entry.key !== '') {
    for (const line of entry.key.split('\n')) {
      const [functionName = '', rawFile = '', lineNo = '0', column = '0'] = line.split('\t');
      const frame = { functionName: functionName || '<anonymous>', file: filePath(rawFile), line: Number(lineNo), column: Number(column) };
      frames.push(sourceMapped(frame, rawFile));
    }
  }
  entry.frames = frames;
  return frames;
}

/** A call frame of V8's DevTools protocol (0-based positions) as a StackFrame. */
export function fromCallFrame(callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }): StackFrame {
  return {
    functionName: callFrame.functionName || '(anonymous)',
    file: filePath(callFrame.url),
    line: callFrame.lineNumber + 1,
    column: callFrame.columnNumber + 1,
  };
}

/** A file path as shown in text listings: relative to the working directory when inside it. */
export function displayPath(file: string): string {
  const cwd = process.cwd() + path.sep;
  return file.startsWith(cwd) ? file.slice(cwd.length) : file;
}
