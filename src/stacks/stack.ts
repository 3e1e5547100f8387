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
// An await or then needs its first frames only: the line it waits at, and
// (a then) whether a `new Promise` executor called it.
export const waitCaptureDepth = 6;
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
 * What the frame under a promise hook says the promise is: an async
 * function's own promise or an await in one (`function`, with the function
 * as `fn`), `new Promise`, a `then`/`catch`/`finally`, a combinator's own
 * promise (`Promise.all`, `race`, `any`, `allSettled`) or one of the
 * `then`s it puts on each element (`element`), the `then` V8 puts on a
 * promise that another adopts (`adopt`: an async function that returns a
 * pending promise, a resolve() with one; no frame under it), an async
 * generator's `next()` request (`next`: `for await` asks for each value
 * with one), a promise a subclass's `then` made through its constructor
 * (`species`: Node's SafePromise, whose derived promises the hooks see as
 * roots); `other` for the rest (`Promise.resolve`, say). Hooks give no
 * such facts (docs/design.md, "Flows").
 */
export type PromiseSiteKind = 'function' | 'new' | 'species' | 'then' | 'adopt' | 'combinator' | 'element' | 'next' | 'other';

export interface PromiseSite {
  /** The creation stack's key, as captureStackKey returns it. */
  key: string;
  kind: PromiseSiteKind;
  /** The function of the first frame, by file and start (one async function's promise and its awaits share it), or the combinator (`Promise.all`). */
  fn: string;
  /** The Node API called from the app's first frame (`node:events once`), or ''. */
  origin: string;
  /** An await made while an async generator's body runs inside its `next()` call: the await is that request's. */
  inGeneratorNext: boolean;
  /** The function of the frame under the first (by file and start), or '': who made the promise. */
  callerFn: string;
  /** `new`: the first frame with a file (the constructor's caller, or a subclass's constructor); `then`: the same of the frames under the callback's caller, so that a then made in an executor matches its promise. Positions, or ''. */
  constructedAt: string;
}

const combinators = new Set(['all', 'race', 'any', 'allSettled']);
const thenMethods = new Set(['then', 'catch', 'finally']);
// What a capture that formatted nothing says (no frames: a capture inside another's formatting, say).
const noSite: PromiseSite = { key: '', kind: 'other', fn: '', origin: '', inGeneratorNext: false, callerFn: '', constructedAt: '' };
let capturedSite = noSite;

// `Promise.all` and friends, builtins: V8 names their receiver `Function` (Node 20, 22) or `Promise` (Node 24).
const isCombinator = (site: NodeJS.CallSite): boolean =>
  site.getFileName() == null && combinators.has(site.getFunctionName() ?? '') && ['Function', 'Promise'].includes(site.getTypeName() ?? '');

// A builtin's frame: an async generator's `next`, say, has no file.
const isGeneratorNext = (site: NodeJS.CallSite | undefined): boolean => site !== undefined && site.getFileName() == null && site.getFunctionName() === 'next';

// Node's own promise helpers (SafePromise and its then/finally), plumbing of whichever Node API the app called.
const primordials = 'node:internal/per_context/primordials';

// The index of the frame under the constructor frames from `at` (`Promise`, and a subclass's): what constructed the promise.
function constructorCaller(sites: NodeJS.CallSite[], at: number): number {
  let i = at;
  while (i < sites.length && sites[i]!.isConstructor()) i++;
  return i;
}

// `builtBy`: the index constructorCaller gave, when the first frame is a constructor's; else -1.
function siteKind(sites: NodeJS.CallSite[], at: number, under: number, builtBy: number): PromiseSiteKind {
  const first = sites[at];
  const second = sites[under];
  if (first === undefined) return 'other';
  const name = first.getFunctionName() ?? '';
  // `new Promise`, or a subclass's constructor; unless a `then` made it, or
  // Node's promise helpers did inside another promise's executor (their
  // plumbing: the helper's own promise, which the app gets, is `new`).
  if (builtBy >= 0) {
    const caller = sites[builtBy];
    if (caller === undefined) return 'new';
    if (caller.getFileName() == null && thenMethods.has(caller.getFunctionName() ?? '')) return 'species';
    if (caller.getFileName() === primordials && sites[builtBy + 1]?.isConstructor() === true) return 'species';
    return 'new';
  }
  if (first.getFileName() != null) return 'function';
  const type = first.getTypeName();
  if (type === 'Promise' && thenMethods.has(name)) {
    if (second === undefined) return 'adopt';
    return isCombinator(second) ? 'element' : 'then';
  }
  if (isCombinator(first)) return 'combinator';
  if (isGeneratorNext(first)) return 'next';
  return 'other';
}

// The Node API frame nearest above the app's first frame: what the app called.
function originOf(sites: NodeJS.CallSite[]): string {
  let origin = '';
  for (const site of sites) {
    const file = site.getFileName();
    if (file == null || plumbingFiles.has(file)) continue;
    if (!file.startsWith('node:')) break;
    origin = file + ' ' + (site.getFunctionName() ?? '');
  }
  return origin;
}

const positionOf = (site: NodeJS.CallSite): string => `${site.getFileName()}:${site.getLineNumber() ?? 0}:${site.getColumnNumber() ?? 0}`;

const positionOrEmpty = (site: NodeJS.CallSite | undefined): string => (site === undefined || site.getFileName() == null ? '' : positionOf(site));

// A then called in a `new Promise` executor: where that promise was
// constructed (the frame under the executor's constructor frames), matched
// against the promise's own constructedAt; '' when the then's caller is no executor.
function executorContext(sites: NodeJS.CallSite[], callerAt: number): string {
  if (sites[callerAt + 1]?.isConstructor() !== true) return '';
  return positionOrEmpty(sites[constructorCaller(sites, callerAt + 1)]);
}

// A function by its file and start: one async function's promise and its awaits share it.
function functionKey(site: NodeJS.CallSite): string {
  return `${site.getFileName()}:${site.getEnclosingLineNumber() ?? 0}:${site.getEnclosingColumnNumber() ?? 0}`;
}

function promiseSiteOf(error: Error, sites: NodeJS.CallSite[]): string {
  // Under Node's dispatcher when more than one hook is installed (`full`'s async_hooks beside the promise hook).
  let at = 0;
  while (at < sites.length && plumbingFiles.has(sites[at]!.getFileName() ?? '')) at++;
  const first = sites[at];
  let under = at + 1;
  while (under < sites.length && plumbingFiles.has(sites[under]!.getFileName() ?? '')) under++;
  const key = stackKeyOf(error, sites);
  const builtBy = first?.isConstructor() === true ? constructorCaller(sites, at) : -1;
  const kind = siteKind(sites, at, under, builtBy);
  const fn = kind === 'function' ? functionKey(first!) : kind === 'combinator' ? 'Promise.' + (first!.getFunctionName() ?? '') : '';
  const caller = sites[under];
  const callerFn = caller !== undefined && caller.getFileName() != null ? functionKey(caller) : '';
  const constructedAt = builtBy >= 0 ? positionOrEmpty(sites[builtBy]) : kind === 'then' ? executorContext(sites, under) : '';
  capturedSite = { key, kind, fn, origin: originOf(sites), inGeneratorNext: kind === 'function' && isGeneratorNext(caller), callerFn, constructedAt };
  return key;
}

/** Captures a promise's creation stack under the promise hook `above`, with what its first frame says (see PromiseSiteKind). */
export function capturePromiseSite(above: Function, depth: number): PromiseSite {
  capturedSite = noSite;
  withStackSettings(depth, promiseSiteOf as typeof Error.prepareStackTrace, () => {
    const holder: { stack?: string } = {};
    Error.captureStackTrace(holder, above);
    return holder.stack;
  });
  return capturedSite;
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
