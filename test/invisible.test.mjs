// The app cannot see taskprof: nothing on its promises, timers or sockets
// shows to util.inspect, deepStrictEqual, spreading, own-key listings or
// JSON, in the default mode and under full; listen() retries leave no
// listeners or tasks behind; frozen timer prototypes and read-only globals
// never make mounting throw, and the globals stay Node's own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import util from 'node:util';
import { startTracking, taskCounts } from 'taskprof';
import { eventually } from './helpers.mjs';

function ownKeys(object) {
  return Reflect.ownKeys(object).map(String);
}

// Run in a fresh process: node:test's own async hooks put async ids on
// every promise, which would differ between any two.
const promiseChecks = (mode) => `
  import assert from 'node:assert/strict';
  import util from 'node:util';
  import { startTracking } from 'taskprof';
  const plain = [new Promise(() => {}), new Promise(() => {})];
  // Under full, Node's own async_hooks put its async ids on promises (any
  // enabled async_hooks hook does, where Node has no trackPromises: false):
  // Node's, not taskprof's, and documented. Everything else must match.
  const nodeIds = (text) => '${mode}' === 'full' ? text.replace(/,?\\n?\\s*\\[Symbol\\((trigger_)?async_id_symbol\\)\\]: \\d+/g, '').replace(/\\{\\n\\s*<pending>\\n\\}/, '{ <pending> }') : text;
  const keysOf = (p) => Reflect.ownKeys(p).filter((k) => !/async_id_symbol/.test(String(k)));
  const plainInspect = util.inspect(plain[0], { showHidden: true });
  // Node 24 compares promises by reference; earlier versions by structure.
  // Either way, taskprof must not change the answer.
  const plainEqual = util.isDeepStrictEqual(plain[0], plain[1]);
  startTracking({ mode: '${mode}' });
  const labelled = (await import('taskprof')).withLabels({ job: 'x' }, () => [new Promise(() => {}), new Promise(() => {})]);
  for (const [a, b] of [[new Promise(() => {}), new Promise(() => {})], labelled]) {
    const awaiting = (async () => { await a; })();
    assert.equal(nodeIds(util.inspect(a, { showHidden: true })), plainInspect);
    assert.equal(nodeIds(util.inspect(awaiting, { showHidden: true })), plainInspect);
    assert.equal(util.isDeepStrictEqual(a, b), plainEqual);
    assert.deepStrictEqual(keysOf(a), []);
    assert.equal(JSON.stringify(a), '{}');
    assert.deepStrictEqual({ ...a }, {});
  }
  console.log('invisible');
`;

function runModule(source) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', source], { cwd: process.cwd() }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

for (const mode of ['sampled', 'full', 'counts']) {
  test(`${mode}: promises look as without taskprof to inspect, deepStrictEqual, spreading, own keys and JSON`, async () => {
    assert.equal((await runModule(promiseChecks(mode))).trim(), 'invisible');
  });

  test(`${mode}: timers and sockets look as without taskprof`, async () => {
    startTracking({ mode: 'off' });
    const plainTimer = setTimeout(() => {}, 60_000);
    const plainTimerKeys = ownKeys(plainTimer);
    clearTimeout(plainTimer);
    startTracking({ mode });
    try {
      const timer = setTimeout(() => {}, 60_000);
      assert.deepStrictEqual(ownKeys(timer), plainTimerKeys);
      assert.deepStrictEqual(Object.keys({ ...timer }), Object.keys({ ...plainTimer }));
      assert.doesNotMatch(util.inspect(timer, { showHidden: true }), /taskprof|Tracked|LabelSet/);
      clearTimeout(timer);

      const server = net.createServer();
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
      const socket = net.connect(server.address().port, '127.0.0.1');
      await new Promise((resolve) => socket.once('connect', resolve));
      assert.doesNotMatch(util.inspect(socket, { showHidden: true, depth: 0 }), /taskprof|Tracked/);
      assert.ok(!ownKeys(socket).some((k) => /taskprof/.test(k)));
      socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    } finally {
      startTracking({ mode: 'sampled' });
    }
  });
}

test('listen() retried after EADDRINUSE: no listeners added, no warning, one task for the server', async () => {
  startTracking({ mode: 'sampled' });
  const warnings = [];
  const onWarning = (warning) => warnings.push(warning);
  process.on('warning', onWarning);
  const holder = net.createServer();
  await new Promise((resolve) => holder.listen(0, '127.0.0.1', resolve));
  const { port } = holder.address();
  const servers = () => taskCounts().find((c) => c.type === 'TCPSERVERWRAP')?.live ?? 0;
  const before = servers();
  const server = net.createServer();
  const listenerCounts = () => Object.fromEntries(server.eventNames().map((name) => [String(name), server.listenerCount(name)]));
  const initialListeners = listenerCounts();
  try {
    for (let attempt = 0; attempt < 20; attempt++) {
      const error = await new Promise((resolve) => {
        server.once('error', resolve);
        server.listen(port, '127.0.0.1');
      });
      assert.equal(error.code, 'EADDRINUSE');
    }
    assert.deepStrictEqual(listenerCounts(), initialListeners);
    assert.equal(servers(), before, 'a failed listen is no task');
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    assert.equal(servers(), before + 1);
    assert.deepStrictEqual(listenerCounts(), initialListeners);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepStrictEqual(warnings, []);
    await new Promise((resolve) => server.close(resolve));
    assert.ok(await eventually(() => servers() === before), 'closed, the server is no task');
  } finally {
    process.off('warning', onWarning);
    if (server.listening) server.close();
    await new Promise((resolve) => holder.close(resolve));
  }
});

// A hardened runtime: the Timeout prototype frozen, the timer globals read-only.
const frozenApp = `
  import timers from 'node:timers';
  const proto = Object.getPrototypeOf(setTimeout(() => {}, 1));
  Object.freeze(proto);
  for (const name of ['setTimeout', 'setInterval', 'clearTimeout']) {
    Object.defineProperty(globalThis, name, { value: globalThis[name], writable: false, configurable: false });
  }
  const source = String(setTimeout);
  const warnings = [];
  process.on('warning', (w) => warnings.push(w.name + ': ' + w.message));
  const { default: taskprof } = await import('taskprof/http');
  const { stopTracking, startTracking, taskCounts } = await import('taskprof');
  const first = taskprof();
  const pending = new Promise(() => {});
  await new Promise((resolve) => setImmediate(resolve));
  const promises = taskCounts().find((c) => c.type === 'Promise')?.live ?? 0;
  await first.close();
  stopTracking();
  const second = taskprof();
  startTracking({ mode: 'sampled' });
  await new Promise((resolve) => setImmediate(resolve));
  console.log(JSON.stringify({
    same: globalThis.setTimeout === timers.setTimeout && String(setTimeout) === source,
    promises,
    warnings,
    frozen: Object.isFrozen(proto),
  }));
  await second.close();
`;

test('a frozen Timeout prototype and read-only timer globals: mounting never throws, says what is not tracked, the rest works', async () => {
  const output = await runModule(frozenApp);
  const result = JSON.parse(output.trim().split('\n').at(-1));
  assert.equal(result.same, true, 'the globals are Node\'s own');
  assert.equal(result.frozen, true);
  assert.ok(result.promises >= 1, 'promises are still counted');
  assert.equal(result.warnings.length, 1, JSON.stringify(result.warnings));
  assert.match(result.warnings[0], /^TaskprofWarning: taskprof: timers are not tracked: Node's Timeout or TimersList prototype is frozen or not extensible\. Everything else is tracked\.$/);
});
