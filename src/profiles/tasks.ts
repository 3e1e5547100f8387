// The tasks profile: Node's counterpart of Go's goroutine profile.
import { Readable } from 'node:stream';
import { tracker as defaultTracker, type Tracker } from '../tracker/tracker.js';
import { foldedPromises, listTasks, type TaskGroup, type TaskListing } from '../tasks/groups.js';
import { FlowIndex } from '../tasks/flows.js';
import { taskEntry, type TaskEntry } from '../tasks/entry.js';
import { formatLabels } from '../labels/labels.js';
import { flowParts, formatAge, formatPosition, groupFrameLines } from '../format/text.js';
import { PPROF, encodePprof } from '../format/pprof.js';
import { waitDelta, type ProfileDefinition, type ProfileOutput, type ProfileQuery } from './profile.js';
import type { StackFrame } from '../stacks/stack.js';

export const TEXT = 'text/plain; charset=utf-8';
export const JSON_TYPE = 'application/json; charset=utf-8';

/** Go caps its full goroutine dump at 64 MiB; so do we. */
import { defaultDumpLimitBytes } from '../defaults.js';
// Chunks written to the stream at once while dumping.
const dumpChunkBytes = 64 * 1024;

/** Why tasks have no stack, for the listing. */
function withoutStackReason(tracker: Tracker): string {
  if (tracker.mode === 'counts') return 'tracking "counts" captures none';
  if (tracker.dropped > 0) return `not captured (over the stack budget), or maxTasks ${tracker.settings.maxTasks} records held`;
  return 'not captured: over the stack budget';
}

export function headerLine(tracker: Tracker, listing: Pick<TaskListing, 'total' | 'withoutStack' | 'estimatedGroups'> & Partial<Pick<TaskListing, 'promises'>>): string {
  let line = `tasks profile: total ${listing.total}`;
  if (tracker.mode === 'off') return line + ', tracking off';
  if (tracker.mode === 'counts') return line + '; tracking "counts": counts by type, no stacks, promises not linked into flows';
  const promises = listing.promises;
  if (promises !== undefined && promises.pending > 0) {
    line += `; ${promises.pending} pending promise${promises.pending === 1 ? '' : 's'} in ${promises.flows} flow${promises.flows === 1 ? '' : 's'}${promises.estimated ? ' (estimated)' : ''}`;
  }
  if (listing.estimatedGroups > 0) {
    line += `; ${listing.estimatedGroups} group${listing.estimatedGroups === 1 ? '' : 's'} estimated (stack capture was over its budget: sampled stacks stand for the tasks of their kind made without one)`;
  }
  if (listing.withoutStack > 0) line += `; ${listing.withoutStack} task${listing.withoutStack === 1 ? '' : 's'} without a stack (${withoutStackReason(tracker)})`;
  if (tracker.dropped > 0) line += `; dropped ${tracker.dropped} records (maxTasks ${tracker.settings.maxTasks} reached)`;
  return line;
}

function estimateNote(group: TaskGroup): string {
  if (group.entry === undefined) return ' (no stack)';
  // Captured, but made by Node with no JavaScript on the stack (a socket a server accepted, say).
  if (group.stack.length === 0) return ' (no JavaScript frames)';
  return group.estimated ? ` (estimated from ${group.recorded} sampled stack${group.recorded === 1 ? '' : 's'})` : '';
}

// One group of a text listing: `<count> @ <type> <detail><extra> <labels><estimate>`, its frames, a blank line.
function groupText(count: string, group: TaskGroup, extra: string): string {
  const labels = formatLabels(group.labels);
  const frames = groupFrameLines(group.stack, group.parkedFrames);
  return `${count} @ ${group.type}${group.detail ? ' ' + group.detail : ''}${extra}${labels ? ' ' + labels : ''}${estimateNote(group)}\n${frames}\n`;
}

function ages(group: TaskGroup, now: number): string {
  const waiting = group.waitingSince === undefined ? '' : `, waiting ${formatAge(now - group.waitingSince)}`;
  return `${waiting} oldest ${formatAge(now - group.oldestCreatedAt)}`;
}

export function groupsText(tracker: Tracker, listing: TaskListing, now: number): string {
  let out = headerLine(tracker, listing) + '\n';
  for (const group of listing.groups) out += groupText(String(group.count), group, ages(group, now));
  return out;
}

function groupJson(g: TaskGroup, now: number): Record<string, unknown> {
  return {
    count: g.count,
    estimated: g.estimated,
    recorded: g.recorded,
    type: g.type,
    detail: g.detail,
    labels: g.labels,
    oldestAgeMs: now - g.oldestCreatedAt,
    stack: g.stack,
    ...(g.waitingSince === undefined ? {} : { flow: { waitsFor: g.waitsFor, waitingMs: now - g.waitingSince, ...flowParts(g.stack, g.parkedFrames) } }),
  };
}

function listingJson(tracker: Tracker, listing: TaskListing): Record<string, unknown> {
  return {
    total: listing.total,
    promises: listing.promises,
    byType: Object.fromEntries(listing.counts.filter((c) => c.live > 0).map((c) => [c.type, c.live])),
    tracking: tracker.mode,
    withoutStack: listing.withoutStack,
    estimatedGroups: listing.estimatedGroups,
    dropped: tracker.dropped,
  };
}

function groupsJson(tracker: Tracker, listing: TaskListing, now: number): string {
  return JSON.stringify({ ...listingJson(tracker, listing), groups: listing.groups.map((g) => groupJson(g, now)) });
}

/** One task as `debug=2` shows it (Go's goroutine dump form); also the leak check's failure message. */
export function taskText(task: TaskEntry, now: number): string {
  const flow = task.flow;
  const waitsOn = flow?.waitsOn === undefined ? '' : ` (task ${flow.waitsOn})`;
  const state = [task.type, flow === undefined ? task.detail : `waits for ${flow.waitsFor}${waitsOn}, waiting ${formatAge(now - flow.waitingSince)}`].filter(Boolean).join(' ');
  const labels = formatLabels(task.labels);
  let out = `task ${task.id} [${state}, ${formatAge(now - task.createdAt)}]:${labels ? ' ' + labels : ''}\n`;
  if (task.stack === undefined) out += '(stack not captured: over the stack budget)\n';
  if (flow === undefined) out += callLines(task.stack ?? []);
  else out += 'parked at:\n' + callLines(flow.parkedAt) + 'started at:\n' + callLines(flow.startedAt);
  const creator = task.parentStack?.[0];
  if (task.parentId === 0) out += 'created by (no tracked task)\n';
  else out += `created by task ${task.parentId} [${task.parentType}]${creator ? ` at ${creator.functionName} ${formatPosition(creator)}` : ''}\n`;
  return out + '\n';
}

function callLines(frames: readonly StackFrame[]): string {
  let out = '';
  for (const frame of frames) out += `${frame.functionName}(...)\n\t${formatPosition(frame)}\n`;
  return out;
}

function taskJson(task: TaskEntry, now: number): string {
  const flow = task.flow;
  return JSON.stringify({
    id: task.id,
    type: task.type,
    detail: task.detail,
    ageMs: now - task.createdAt,
    labels: task.labels,
    parentId: task.parentId === 0 ? null : task.parentId,
    stack: task.stack ?? null,
    ...(flow === undefined ? {} : { flow: { waitsFor: flow.waitsFor, waitsOn: flow.waitsOn ?? null, waitingMs: now - flow.waitingSince, parkedAt: flow.parkedAt, startedAt: flow.startedAt } }),
  });
}

/**
 * Every live task with a record on its own, streamed in chunks with
 * back-pressure; the records are listed up front but each is formatted only
 * when its turn comes. Tasks without a record are summed up at the end.
 */
function* dumpChunks(tracker: Tracker, json: boolean, limitBytes: number): Generator<string> {
  const now = Date.now();
  const records = tracker.records();
  // One pass that only reads links, up front: the header's total counts a flow once, as debug=1 does.
  const flows = new FlowIndex(records);
  const total = tracker.total() - foldedPromises(tracker, flows);
  const unrecorded = Math.max(0, total - (records.length - flows.innerCount));
  let written = 0;
  let chunk = json
    ? `{"total":${total},"tracking":${JSON.stringify(tracker.mode)},"unrecorded":${unrecorded},"dropped":${tracker.dropped},"tasks":[`
    : headerLine(tracker, { total, withoutStack: 0, estimatedGroups: 0 }) + '\n\n';
  let index = 0;
  let first = true;
  for (; index < records.length; index++) {
    const record = records[index]!;
    if (!record.live || flows.isInner(record)) continue;
    const entry = taskEntry(record, flows.view(record));
    const piece = json ? (first ? '' : ',') + taskJson(entry, now) : taskText(entry, now);
    first = false;
    if (written + chunk.length + piece.length > limitBytes) break;
    chunk += piece;
    if (chunk.length >= dumpChunkBytes) {
      written += chunk.length;
      yield chunk;
      chunk = '';
    }
  }
  let left = 0;
  for (; index < records.length; index++) if (records[index]!.live && !flows.isInner(records[index]!)) left++;
  if (json) chunk += `],"truncated":${left}}`;
  else {
    if (left > 0) chunk += `... ${left} more tasks not shown: output capped at ${limitBytes} bytes\n`;
    if (unrecorded > 0) chunk += `... ${unrecorded} more tasks have no record (their stacks were ${withoutStackReason(tracker)}); see debug=1 for them by type\n`;
  }
  yield chunk;
}

interface DeltaGroup extends TaskGroup {
  /** Change over the wait; `count` is the count at its end. */
  delta: number;
}

/** Groups whose count changed between two listings, largest growth first. */
function deltaGroups(before: TaskGroup[], after: TaskGroup[]): DeltaGroup[] {
  const previous = new Map(before.map((g) => [g.key, g]));
  const changed: DeltaGroup[] = [];
  for (const group of after) {
    const delta = group.count - (previous.get(group.key)?.count ?? 0);
    previous.delete(group.key);
    if (delta !== 0) changed.push({ ...group, delta });
  }
  for (const gone of previous.values()) changed.push({ ...gone, count: 0, delta: -gone.count });
  return changed.sort((a, b) => b.delta - a.delta || b.count - a.count);
}

function signed(n: number): string {
  return n > 0 ? `+${n}` : String(n);
}

function deltaText(tracker: Tracker, listing: TaskListing, groups: DeltaGroup[], seconds: number, now: number): string {
  const added = groups.reduce((n, g) => n + Math.max(0, g.delta), 0);
  const removed = groups.reduce((n, g) => n + Math.max(0, -g.delta), 0);
  let out = headerLine(tracker, listing) + `; delta over ${seconds}s: +${added} -${removed} in ${groups.length} changed groups\n`;
  for (const group of groups) {
    const age = group.count > 0 ? ` oldest ${formatAge(now - group.oldestCreatedAt)}` : '';
    out += groupText(signed(group.delta), group, ` now ${group.count}${age}`);
  }
  return out;
}

function deltaJson(tracker: Tracker, listing: TaskListing, groups: DeltaGroup[], seconds: number): string {
  return JSON.stringify({
    ...listingJson(tracker, listing),
    deltaSeconds: seconds,
    groups: groups.map((g) => ({ delta: g.delta, count: g.count, estimated: g.estimated, type: g.type, detail: g.detail, labels: g.labels, stack: g.stack })),
  });
}

export function createTasksProfile(tracker: Tracker = defaultTracker, dumpLimitBytes = defaultDumpLimitBytes): ProfileDefinition {
  async function writeDelta(query: ProfileQuery, seconds: number): Promise<ProfileOutput> {
    const before = (await query.gated(() => listTasks(tracker))).groups;
    await waitDelta(seconds, query.signal);
    const listing = await query.gated(() => listTasks(tracker));
    const groups = deltaGroups(before, listing.groups);
    if (query.json) return { contentType: JSON_TYPE, body: deltaJson(tracker, listing, groups, seconds) };
    if (query.debug === 1) return { contentType: TEXT, body: deltaText(tracker, listing, groups, seconds, Date.now()) };
    return { contentType: PPROF, filename: 'tasks-delta', body: tasksPprof(groups.map((g) => ({ ...g, count: g.delta })), seconds) };
  }

  return {
    name: 'tasks',
    aliases: ['goroutine'],
    seconds: 'delta',
    description: 'Live tasks (pending promises, timers, sockets, servers, requests) grouped by creation stack and labels',
    debugLevels: [0, 1, 2],
    formats: ['json'],
    count: () => tracker.total(),
    write(query: ProfileQuery): ProfileOutput | Promise<ProfileOutput> {
      if (query.deltaSeconds !== undefined) return writeDelta(query, query.deltaSeconds);
      const now = Date.now();
      if (query.debug === 2) {
        return {
          contentType: query.json ? JSON_TYPE : TEXT,
          body: Readable.from(dumpChunks(tracker, query.json, dumpLimitBytes), { objectMode: false }),
        };
      }
      const listing = listTasks(tracker);
      if (query.json) return { contentType: JSON_TYPE, body: groupsJson(tracker, listing, now) };
      if (query.debug === 1) return { contentType: TEXT, body: groupsText(tracker, listing, now) };
      return { contentType: PPROF, filename: 'tasks', body: tasksPprof(listing.groups) };
    },
  };
}

// go tool pprof blanks names written like `<anonymous>`; Chrome's spelling survives.
function pprofFrame(frame: StackFrame): StackFrame {
  return frame.functionName === '<anonymous>' ? { ...frame, functionName: '(anonymous)' } : frame;
}

/** A group's frames for a pprof sample; a task without a recorded stack still needs a location to be counted. */
export function pprofStack(type: string, frames: readonly StackFrame[]): StackFrame[] {
  return frames.length > 0 ? frames.map(pprofFrame) : [{ functionName: `(${type}: no stack)`, file: '', line: 0, column: 0 }];
}

function sampleLabels(g: TaskGroup): Record<string, string> {
  const labels: Record<string, string> = { ...g.labels, type: g.type };
  if (g.detail) labels.detail = g.detail;
  if (g.waitsFor) labels.waits_for = g.waitsFor;
  if (g.estimated) labels.estimated = 'true';
  return labels;
}

function tasksPprof(groups: TaskGroup[], deltaSeconds?: number): Uint8Array {
  return encodePprof({
    durationNanos: deltaSeconds === undefined ? 0 : deltaSeconds * 1e9,
    sampleTypes: [{ type: 'tasks', unit: 'count' }],
    periodType: { type: 'tasks', unit: 'count' },
    period: 1,
    samples: groups.map((g) => ({
      values: [g.count],
      frames: pprofStack(g.type, g.stack),
      labels: sampleLabels(g),
    })),
  });
}
