// The default `sampled` mode's own mechanisms: timers seen through an
// accessor on their prototype, handles through their prototypes' methods;
// servers, child processes, requests and intervals recorded with stacks and
// ended on time; labels across awaits; nothing global replaced, the app's
// objects as without taskprof, and everything put back on stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { once } from 'node:events';
import net from 'node:net';
import http from 'node:http';
import { spawn } from 'node:child_process';
import util from 'node:util';
import timers from 'node:timers';
import { setTimeout as importedSetTimeout } from 'node:timers';
import { startTracking, stopTracking, trackingSettings, withLabels, writeProfile } from 'taskprof';
import { parseGroups, sourcePosition } from './helpers.mjs';

const here = new URL(import.meta.url).pathname;
const originals = {
  setTimeout: globalThis.setTimeout,
  setInterval: globalThis.setInterval,
  listen: net.Server.prototype.listen,
  connect: net.Socket.prototype.connect,
  timersSetTimeout: timers.setTimeout,
  setTimeoutSource: String(globalThis.setTimeout),
};

async function listing() {
  let text = '';
  const sink = new Writable({ write(chunk, _enc, done) { text += chunk; done(); } });
  await writeProfile('tasks', sink, { debug: 1 });
  return text;
}

const groupAt = async (marker, callee) => parseGroups(await listing()).find((g) => g.frames[0] === sourcePosition(here, marker, callee));

test('sampled is the default mode, with a stack budget of 1% of CPU time', () => {
  startTracking({});
  assert.deepEqual(trackingSettings(), { mode: 'sampled', stackBudget: 0.01, maxTasks: 200_000 });
});

test('a listening server is recorded at its listen() line and leaves on close', async () => {
  startTracking({ mode: 'sampled' });
  const server = net.createServer();
  server.listen(0, '127.0.0.1'); // LISTEN
  await once(server, 'listening');
  const group = await groupAt('// LISTEN', 'listen(');
  assert.match(group.head, /^1 @ TCPSERVERWRAP listening 127\.0\.0\.1:\d+ oldest/);
  server.close();
  await once(server, 'close');
  assert.equal(await groupAt('// LISTEN', 'listen('), undefined);
});

test('a child process is recorded until it exits', async () => {
  startTracking({ mode: 'sampled' });
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 200)']); // SPAWN
  assert.match((await groupAt('// SPAWN', 'spawn(')).head, /^1 @ PROCESSWRAP/);
  await once(child, 'exit');
  assert.equal(await groupAt('// SPAWN', 'spawn('), undefined);
});

test('an outgoing request and its socket are recorded at the caller\'s line until they close', async () => {
  startTracking({ mode: 'sampled' });
  const server = http.createServer((req, res) => setTimeout(() => res.end('late'), 300));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const agent = new http.Agent({ keepAlive: false });
  // V8 places a method call at the method name. (The marker is split so that this line does not match it.)
  const line = sourcePosition(here, '// OUT' + 'GOING', 'get(');
  try {
    const request = http.get({ port: server.address().port, host: '127.0.0.1', agent }); // OUTGOING
    const response = once(request, 'response');
    await once(request, 'socket');
    const groups = parseGroups(await listing()).filter((g) => g.frames[0] === line);
    assert.deepEqual(groups.map((g) => g.head.split(' oldest')[0]).sort(), ['1 @ HTTPCLIENTREQUEST GET 127.0.0.1', '1 @ TCPWRAP']);
    const [res] = await response;
    res.resume();
    await once(request, 'close');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(parseGroups(await listing()).filter((g) => g.frames[0] === line).length, 0);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('intervals always have a stack; a fired timeout leaves', async () => {
  startTracking({ mode: 'sampled' });
  const interval = setInterval(() => {}, 999); // INTERVAL
  assert.match((await groupAt('// INTERVAL', 'setInterval(')).head, /^1 @ Timeout setInterval\(999ms\)/);
  clearInterval(interval);
  assert.equal(await groupAt('// INTERVAL', 'setInterval('), undefined);
  await new Promise((resolve) => setTimeout(resolve, 5)); // TIMEOUT
  assert.equal(await groupAt('// TIMEOUT', 'setTimeout('), undefined);
});

test('labels follow a request scope across awaits and into promise continuations', async () => {
  startTracking({ mode: 'sampled' });
  const timers = [];
  await withLabels({ job: 'sync' }, async () => {
    await null;
    await new Promise((resolve) => setImmediate(resolve));
    await Promise.resolve().then(() => timers.push(setInterval(() => {}, 777))); // AFTER AWAIT
  });
  assert.match((await groupAt('// AFTER AWAIT', 'setInterval(')).head, /\{job="sync"\}$/);
  timers.forEach(clearInterval);
  const outside = setInterval(() => {}, 778); // OUTSIDE
  assert.doesNotMatch((await groupAt('// OUTSIDE', 'setInterval(')).head, /job=/, 'no labels leak out of the scope');
  clearInterval(outside);
});

test('nothing global is replaced, the app\'s timers and sockets are as without taskprof, and stopping puts the prototypes back', async () => {
  stopTracking();
  const untracked = setTimeout(() => {}, 1000);
  const untrackedKeys = Reflect.ownKeys(untracked).map(String);
  const untrackedText = util.inspect(untracked).replace(/\d+/g, 'N');
  clearTimeout(untracked);
  startTracking({ mode: 'sampled' });
  assert.equal(globalThis.setTimeout, originals.setTimeout);
  assert.equal(globalThis.setInterval, originals.setInterval);
  assert.equal(timers.setTimeout, globalThis.setTimeout);
  assert.equal(String(globalThis.setTimeout), originals.setTimeoutSource);
  assert.equal(await util.promisify(setTimeout)(1, 'value'), 'value');
  const timer = setTimeout(() => {}, 1000); // TRACKED TIMER
  assert.ok(await groupAt('// TRACKED TIMER', 'setTimeout('), 'the timer is tracked');
  assert.deepEqual(Reflect.ownKeys(timer).map(String), untrackedKeys);
  assert.equal(util.inspect(timer).replace(/\d+/g, 'N'), untrackedText);
  assert.deepEqual(Object.getOwnPropertyDescriptor(timer, '_idleTimeout'), { value: 1000, writable: true, enumerable: true, configurable: true });
  assert.doesNotMatch(JSON.stringify(Object.keys({ ...timer })), /taskprof/);
  clearTimeout(timer);
  const timerPrototype = Object.getPrototypeOf(timer);
  assert.notEqual(net.Socket.prototype.connect, originals.connect);
  assert.equal(net.Socket.prototype.connect.name, originals.connect.name);
  assert.equal(net.Socket.prototype.connect.length, originals.connect.length);
  stopTracking();
  assert.equal(Object.getOwnPropertyDescriptor(timerPrototype, '_idleTimeout'), undefined);
  assert.equal(net.Server.prototype.listen, originals.listen);
  assert.equal(net.Socket.prototype.connect, originals.connect);
  assert.equal(importedSetTimeout, originals.timersSetTimeout);
});
