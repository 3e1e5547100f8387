// Handles without async_hooks (the `sampled` and `counts` modes): sockets,
// servers, outbound HTTP requests, child processes, UDP sockets and fs
// watchers, seen through their own prototypes' methods (connect, listen,
// close, _destroy...) and Node's diagnostics channel for accepted sockets.
// Nothing is added to the app's objects or listeners and no global function
// is replaced: each wrapper calls the original with the same `this` and
// arguments and returns its result; a task starts or ends beside it. Ends
// are events here, so records hold their handle until it ends.
import dc from 'node:diagnostics_channel';
import { createRequire } from 'node:module';
import { labelContext, ownWork, type LabelSet } from '../labels/labels.js';
import { resourceCaptureDepth, type StackEntry } from '../stacks/stack.js';
import type { Session, TrackedTask } from './session.js';
import { EXACT } from './stack-budget.js';
import { recordOf, resourceStamp } from './task-stamp.js';
import { runningRecord } from './running.js';

const require = createRequire(import.meta.url);

type Method = (this: object, ...args: unknown[]) => unknown;

interface Patch {
  target: Record<PropertyKey, unknown>;
  key: PropertyKey;
  /** The own method before, or undefined when it was inherited. */
  original: Method | undefined;
  wrapper: Method;
}

interface PatchHooks {
  before?(self: object, args: unknown[], wrapper: Method): void;
  after?(self: object, args: unknown[], wrapper: Method): void;
}

/** Where and in what context a task was made. */
interface Origin {
  stack: StackEntry | undefined;
  weight: number;
  labels: LabelSet | undefined;
  parent: TrackedTask | undefined;
}

export interface HandleTracking {
  /** Methods that could not be wrapped (read-only or frozen), as `Prototype.method`. */
  readonly skipped: readonly string[];
  stop(): void;
}

/** `TCP` and `Pipe` handles: which of the two types a socket or server is. */
function handleType(owner: object, tcp: string, pipe: string): string | undefined {
  const handle = (owner as { _handle?: unknown })._handle;
  if (handle === null || typeof handle !== 'object') return undefined;
  return (handle as { constructor?: { name?: string } }).constructor?.name === 'Pipe' ? pipe : tcp;
}

/** Wraps target[key], own or inherited (then looked up at each call); the hooks never throw into the app. False when it cannot. */
function patch(patches: Patch[], target: object, key: PropertyKey, hooks: PatchHooks): boolean {
  const own = Object.getOwnPropertyDescriptor(target, key);
  if (own !== undefined && (typeof own.value !== 'function' || own.writable !== true || own.configurable !== true)) return false;
  if (own === undefined && (typeof (target as Record<PropertyKey, unknown>)[key] !== 'function' || !Object.isExtensible(target))) return false;
  const original = own?.value as Method | undefined;
  const proto = Object.getPrototypeOf(target) as Record<PropertyKey, unknown>;
  const wrapper: Method = function (this: object, ...args: unknown[]): unknown {
    if (hooks.before !== undefined) {
      try {
        hooks.before(this, args, wrapper);
      } catch {
        // Never throw into the app.
      }
    }
    const result = Reflect.apply(original ?? (proto[key] as Method), this, args);
    if (hooks.after !== undefined) {
      try {
        hooks.after(this, args, wrapper);
      } catch {
        // Never throw into the app.
      }
    }
    return result;
  };
  const model = original ?? (proto[key] as Method);
  Object.defineProperty(wrapper, 'name', { value: model.name, configurable: true });
  Object.defineProperty(wrapper, 'length', { value: model.length, configurable: true });
  try {
    Object.defineProperty(target, key, { value: wrapper, writable: true, enumerable: own?.enumerable ?? false, configurable: true });
  } catch {
    return false;
  }
  patches.push({ target: target as Record<PropertyKey, unknown>, key, original, wrapper });
  return true;
}

export function trackHandles(session: Session): HandleTracking {
  const { labelsOn, routes } = session;
  const patches: Patch[] = [];

  function origin(type: string, above: Function): Origin | undefined {
    const labels = labelContext.current;
    if (labels === ownWork) return undefined;
    let stack: StackEntry | undefined;
    let weight = EXACT;
    if (session.captureStacks) {
      const admitted = session.budget.admit(session.budget.classOf(type, labels));
      if (admitted > 0) {
        const captured = session.captureStack(above, resourceCaptureDepth);
        if (captured === null) return undefined;
        stack = captured;
        weight = admitted;
      }
    }
    const parent = labelsOn ? runningRecord(session) : undefined;
    return { stack, weight, labels: labelsOn ? labels ?? parent?.labels : undefined, parent };
  }

  function start(type: string, resource: object, from: Origin | undefined): void {
    if (!session.live) return;
    const stamped = resourceStamp.get(resource);
    if (stamped === ownWork) return;
    const existing = recordOf(stamped);
    if (existing !== undefined && existing.live && existing.id >= session.firstId) return;
    if (from === undefined) {
      // taskprof's own (its listen() server, say): never the app's task.
      resourceStamp.set(resource, ownWork);
      return;
    }
    const record = session.newRecord(type, from.stack, from.labels, from.weight, resource, from.parent);
    if (!resourceStamp.set(resource, record)) {
      session.endRecord(record);
      return;
    }
    const counts = session.countsOf(type);
    counts.created++;
    counts.live++;
    if (record.labels !== undefined) routes.add(record.labels, 1);
  }

  function end(resource: object): void {
    const record = recordOf(resourceStamp.get(resource));
    if (record === undefined || !record.live || record.id < session.firstId) return;
    const counts = session.countsOf(record.type);
    counts.completed++;
    counts.live--;
    if (record.labels !== undefined) routes.remove(record.labels, 1);
    session.endRecord(record);
  }

  const net = require('node:net') as { Socket: { prototype: object }; Server: { prototype: object } };
  const http = require('node:http') as { Agent: { prototype: object }; ClientRequest: { prototype: object } };
  const childProcess = require('node:child_process') as { ChildProcess: { prototype: object } };
  const dgram = require('node:dgram') as { Socket: { prototype: object } };

  const skipped: string[] = [];
  // Each kind's start and end wrappers go in together or not at all: a task
  // that could start without its end being seen would never end.
  function patchGroup(kind: string, entries: Array<[object, PropertyKey, PatchHooks]>): boolean {
    const applied: Patch[] = [];
    for (const [target, key, hooks] of entries) {
      if (patch(applied, target, key, hooks)) continue;
      unpatch(applied);
      skipped.push(kind);
      return false;
    }
    patches.push(...applied);
    return true;
  }

  // Client sockets: connect() makes the handle synchronously; accepted
  // sockets come from the server's own channel.
  const onServerSocket = (message: unknown): void => {
    try {
      const socket = (message as { socket?: object }).socket;
      const type = socket === undefined ? undefined : handleType(socket, 'TCPWRAP', 'PIPEWRAP');
      if (socket !== undefined && type !== undefined) start(type, socket, origin(type, onServerSocket));
    } catch {
      // Never throw into the app.
    }
  };
  const socketsTracked = patchGroup('sockets (net.Socket connect, _destroy)', [
    [
      net.Socket.prototype,
      'connect',
      {
        after(socket, _args, wrapper) {
          const type = handleType(socket, 'TCPWRAP', 'PIPEWRAP');
          if (type !== undefined) start(type, socket, origin(type, wrapper));
        },
      },
    ],
    [net.Socket.prototype, '_destroy', { before: (socket) => end(socket) }],
  ]);
  if (socketsTracked) dc.subscribe('net.server.socket', onServerSocket);

  // Servers: listen() may look the host up first and make the handle a
  // tick later, so where it was called is taken in listen(), and the task
  // starts once _listen2 has a listening handle (not on a failed attempt).
  const listenOrigins = new WeakMap<object, Origin | undefined>();
  patchGroup('servers (net.Server listen, _listen2, close)', [
    [
      net.Server.prototype,
      'listen',
      {
        before(server, _args, wrapper) {
          listenOrigins.set(server, origin('TCPSERVERWRAP', wrapper));
        },
      },
    ],
    [
      net.Server.prototype,
      '_listen2',
      {
        after(server, _args, wrapper) {
          const type = handleType(server, 'TCPSERVERWRAP', 'PIPESERVERWRAP');
          if (type === undefined) return;
          start(type, server, listenOrigins.has(server) ? listenOrigins.get(server) : origin(type, wrapper));
          listenOrigins.delete(server);
        },
      },
    ],
    [net.Server.prototype, 'close', { before: (server) => end(server) }],
  ]);

  // Outbound HTTP requests: handed to their agent as they are made (or
  // given a socket directly, without one); over when they emit 'close'.
  patchGroup('outbound requests (http.Agent addRequest, ClientRequest onSocket, emit)', [
    [
      http.Agent.prototype,
      'addRequest',
      {
        before(_agent, args, wrapper) {
          const request = args[0];
          if (request !== null && typeof request === 'object') start('HTTPCLIENTREQUEST', request, origin('HTTPCLIENTREQUEST', wrapper));
        },
      },
    ],
    [
      http.ClientRequest.prototype,
      'onSocket',
      {
        before(request, _args, wrapper) {
          if (recordOf(resourceStamp.get(request)) === undefined && resourceStamp.get(request) !== ownWork) {
            start('HTTPCLIENTREQUEST', request, origin('HTTPCLIENTREQUEST', wrapper));
          }
        },
      },
    ],
    [http.ClientRequest.prototype, 'emit', { before: (request, args) => args[0] === 'close' && end(request) }],
  ]);

  // Child processes: from a successful spawn() to 'exit' (or 'close' when it never ran).
  patchGroup('child processes (ChildProcess spawn, emit)', [
    [
      childProcess.ChildProcess.prototype,
      'spawn',
      {
        after(child, _args, wrapper) {
          if ((child as { _handle?: unknown })._handle) start('PROCESSWRAP', child, origin('PROCESSWRAP', wrapper));
        },
      },
    ],
    [childProcess.ChildProcess.prototype, 'emit', { before: (child, args) => (args[0] === 'exit' || args[0] === 'close') && end(child) }],
  ]);

  // UDP sockets: from bind() (send() binds too) to close().
  patchGroup('UDP sockets (dgram.Socket bind, close)', [
    [dgram.Socket.prototype, 'bind', { after: (socket, _args, wrapper) => start('UDPWRAP', socket, origin('UDPWRAP', wrapper)) }],
    [dgram.Socket.prototype, 'close', { before: (socket) => end(socket) }],
  ]);

  // fs.watch watchers: from their start to close().
  const watcherProto = fsWatcherPrototype();
  const startKey = watcherProto === undefined ? undefined : Object.getOwnPropertySymbols(watcherProto).find((s) => s.description === 'kFSWatchStart');
  if (watcherProto !== undefined && startKey !== undefined) {
    patchGroup('fs watchers (FSWatcher start, close)', [
      [
        watcherProto,
        startKey,
        {
          after(watcher, _args, wrapper) {
            if ((watcher as { _handle?: unknown })._handle) start('FSEVENTWRAP', watcher, origin('FSEVENTWRAP', wrapper));
          },
        },
      ],
      [watcherProto, 'close', { before: (watcher) => end(watcher) }],
    ]);
  }

  return {
    skipped,
    stop() {
      if (socketsTracked) dc.unsubscribe('net.server.socket', onServerSocket);
      unpatch(patches);
    },
  };
}

/** Puts back what `patches` replaced, newest first. */
function unpatch(patches: Patch[]): void {
  for (const p of patches.reverse()) {
    // Someone wrapped ours since: ours stays, and does nothing once the session ended.
    if (p.target[p.key] !== p.wrapper) continue;
    if (p.original === undefined) delete p.target[p.key];
    else p.target[p.key] = p.original;
  }
  patches.length = 0;
}

// FSWatcher is not exported; a watcher of the working directory shows its prototype.
let watcherPrototype: object | undefined | null;
function fsWatcherPrototype(): object | undefined {
  if (watcherPrototype !== undefined) return watcherPrototype ?? undefined;
  watcherPrototype = null;
  try {
    const fs = require('node:fs') as { watch(path: string): { close(): void } };
    const probe = fs.watch('.');
    watcherPrototype = Object.getPrototypeOf(probe) as object;
    probe.close();
  } catch {
    // No fs.watch here (a missing working directory, say): watchers are not tracked.
  }
  return watcherPrototype ?? undefined;
}
