// State detail of a task for listings (interval period, unref, listening
// address, peer), read from its resource while the task is live.
import net from 'node:net';
import http from 'node:http';
import { PROMISE_TYPE, type TaskRecord } from '../tracker/types.js';

/** State detail of a task, read from its resource when it is still reachable. */
export function describeTask(record: TaskRecord, withAddresses: boolean): string {
  if (record.type === PROMISE_TYPE) return 'pending';
  const resource = record.resource;
  if (resource === undefined) return '';
  try {
    return describeResource(record.type, resource, withAddresses);
  } catch {
    return '';
  }
}

interface TimerLike {
  _idleTimeout?: number;
  _repeat?: number | null;
  hasRef?: () => boolean;
}

interface HandleLike {
  getsockname?: (out: Record<string, unknown>) => number;
  getpeername?: (out: Record<string, unknown>) => number;
  hasRef?: () => boolean;
  pid?: number;
}

function hostPort(host: string | undefined, port: number | undefined): string {
  if (host === undefined) return '';
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function serverAddress(server: net.Server): string {
  const bound = server.address();
  if (bound === null) return '';
  return typeof bound === 'string' ? bound : hostPort(bound.address, bound.port);
}

function address(handle: HandleLike, which: 'getsockname' | 'getpeername'): string {
  const out: Record<string, unknown> = {};
  const fn = handle[which];
  if (typeof fn !== 'function' || fn.call(handle, out) !== 0) return '';
  if (typeof out.address !== 'string') return '';
  return out.family === 'IPv6' || out.family === 6 ? `[${out.address}]:${out.port}` : `${out.address}:${out.port}`;
}

/** The request itself (`sampled`, `counts`), or async_hooks' resource for it (`full`: Node's HTTPClientAsyncResource, which holds it as `req`). */
export function clientRequestOf(resource: object): http.ClientRequest | undefined {
  if (resource instanceof http.ClientRequest) return resource;
  const held = (resource as { req?: unknown }).req;
  return held instanceof http.ClientRequest ? held : undefined;
}

function describeResource(type: string, resource: object, withAddresses: boolean): string {
  const parts: string[] = [];
  if (type === 'Timeout') {
    const timer = resource as TimerLike;
    const ms = timer._idleTimeout ?? 0;
    parts.push(typeof timer._repeat === 'number' ? `setInterval(${timer._repeat}ms)` : `setTimeout(${ms}ms)`);
  } else if (type === 'Immediate') {
    parts.push('setImmediate');
  } else if (type === 'TCPSERVERWRAP' || type === 'PIPESERVERWRAP') {
    const local = resource instanceof net.Server ? serverAddress(resource) : address(resource as HandleLike, 'getsockname');
    if (local !== '') parts.push('listening ' + local);
  } else if (type === 'TCPWRAP' && withAddresses) {
    const [local, remote] =
      resource instanceof net.Socket
        ? [hostPort(resource.localAddress, resource.localPort), hostPort(resource.remoteAddress, resource.remotePort)]
        : [address(resource as HandleLike, 'getsockname'), address(resource as HandleLike, 'getpeername')];
    if (local !== '' || remote !== '') parts.push(`${local} -> ${remote}`);
  } else if (type === 'HTTPCLIENTREQUEST') {
    const request = clientRequestOf(resource);
    if (request !== undefined) parts.push(`${request.method} ${request.host}` + (withAddresses ? request.path : ''));
  } else if (type === 'PROCESSWRAP' && withAddresses) {
    const pid = (resource as HandleLike).pid;
    if (typeof pid === 'number') parts.push(`pid ${pid}`);
  }
  const hasRef = (resource as TimerLike).hasRef;
  if (typeof hasRef === 'function' && hasRef.call(resource) === false) parts.push('unref');
  return parts.join(' ');
}

