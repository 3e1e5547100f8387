// Light instrumentation for the `sampled` mode: wrappers around the public
// functions that create the resources leaks are made of (timers, servers,
// client sockets and requests, child processes, UDP sockets, fs watchers).
// An async_hooks hook sees more, but on Node 20 and 22 any such hook makes Node
// track every promise and every process.nextTick, which cost more than the
// whole budget of this mode (docs/design.md). Each wrapper calls the original
// with the same `this` and arguments and returns its result unchanged.
import { syncBuiltinESMExports } from 'node:module';
import { createRequire } from 'node:module';
import type { EventEmitter } from 'node:events';

const require = createRequire(import.meta.url);

/** Called for each resource created through a wrapped function. */
export type ResourceSink = (type: string, resource: object, alwaysStacked: boolean, wrapper: Function, endEvent: string | undefined) => void;

interface Patch {
  target: Record<string, unknown>;
  key: string;
  original: unknown;
  wrapper: Function;
}

let installed: Patch[] = [];
// Cleared on uninstall, so a wrapper someone else still holds does nothing.
let currentSink: ResourceSink | undefined;

interface Description {
  type: string;
  always: boolean;
  endEvent?: string;
}

/**
 * Wraps target[key]. The resource is what the function returns, or `this`
 * for methods (`listen`, `connect`, `bind`, `spawn`) that act on their object.
 */
function wrap(target: Record<string, unknown>, key: string, resourceIsThis: boolean, describe: (resource: unknown) => Description | undefined): void {
  const original = target[key];
  if (typeof original !== 'function') return;
  const wrapper = function (this: unknown, ...args: unknown[]): unknown {
    const result = Reflect.apply(original, this, args);
    const sink = currentSink;
    if (sink !== undefined) {
      try {
        const resource = resourceIsThis ? this : result;
        const description = typeof resource === 'object' && resource !== null ? describe(resource) : undefined;
        if (description !== undefined) sink(description.type, resource as object, description.always, wrapper, description.endEvent);
      } catch {
        // Never throw into the app.
      }
    }
    return result;
  };
  // Keep what callers may look at: name, length, util.promisify.custom.
  for (const property of Reflect.ownKeys(original)) {
    if (property === 'prototype') continue;
    const descriptor = Object.getOwnPropertyDescriptor(original, property);
    if (descriptor !== undefined) {
      try {
        Object.defineProperty(wrapper, property, descriptor);
      } catch {
        // Non-configurable own properties of functions (none today) stay as they are.
      }
    }
  }
  target[key] = wrapper;
  installed.push({ target, key, original, wrapper });
}

const timerDescription = (result: unknown) => {
  const repeat = (result as { _repeat?: unknown } | undefined)?._repeat;
  return { type: 'Timeout', always: typeof repeat === 'number' };
};

function isEmitter(value: unknown): value is EventEmitter {
  return typeof (value as EventEmitter | undefined)?.once === 'function';
}

type Prototyped = { prototype: Record<string, unknown> };

export function installInstrumentation(sink: ResourceSink): void {
  currentSink = sink;
  if (installed.length > 0) return;
  const timers = require('node:timers') as Record<string, unknown>;
  for (const target of [globalThis as unknown as Record<string, unknown>, timers]) {
    wrap(target, 'setTimeout', false, timerDescription);
    wrap(target, 'setInterval', false, timerDescription);
    wrap(target, 'setImmediate', false, () => ({ type: 'Immediate', always: false }));
  }
  const net = require('node:net') as { Server: Prototyped; Socket: Prototyped };
  wrap(net.Server.prototype, 'listen', true, () => ({ type: 'TCPSERVERWRAP', always: true, endEvent: 'close' }));
  wrap(net.Socket.prototype, 'connect', true, () => ({ type: 'TCPWRAP', always: false, endEvent: 'close' }));
  const request = (result: unknown) => (isEmitter(result) ? { type: 'HTTPCLIENTREQUEST', always: false, endEvent: 'close' } : undefined);
  for (const name of ['node:http', 'node:https']) {
    const http = require(name) as Record<string, unknown>;
    wrap(http, 'request', false, request);
    wrap(http, 'get', false, request);
  }
  const childProcess = require('node:child_process') as { ChildProcess: Prototyped };
  wrap(childProcess.ChildProcess.prototype, 'spawn', true, () => ({ type: 'PROCESSWRAP', always: true, endEvent: 'exit' }));
  const dgram = require('node:dgram') as { Socket: Prototyped };
  wrap(dgram.Socket.prototype, 'bind', true, () => ({ type: 'UDPWRAP', always: true, endEvent: 'close' }));
  const fs = require('node:fs') as Record<string, unknown>;
  wrap(fs, 'watch', false, (result) => (isEmitter(result) ? { type: 'FSEVENTWRAP', always: true, endEvent: 'close' } : undefined));
  syncBuiltinESMExports();
}

/** Puts every original back, unless someone wrapped ours since (then ours stays, inert). */
export function uninstallInstrumentation(): void {
  currentSink = undefined;
  for (const patch of installed.reverse()) {
    if (patch.target[patch.key] === patch.wrapper) patch.target[patch.key] = patch.original;
  }
  installed = [];
  syncBuiltinESMExports();
}
