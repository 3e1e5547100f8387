// taskprof/testing: a check passes when the code under test cleans up, fails
// with the leaked tasks listed (type, age, labels, stack, creator) when it
// does not, waits for tasks that are finishing, and honours every ignore option.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { startLeakCheck, expectNoLeaks, LeakError } from 'taskprof/testing';
import { startTracking, trackingSettings, withLabels } from 'taskprof';
import * as cases from './fixtures/leakcheck-cases.mjs';
import { eventually, fixturesDir, sourcePosition } from './helpers.mjs';

const run = promisify(execFile);
const casesFile = path.join(fixturesDir, 'leakcheck-cases.mjs');
const at = (marker, callee) => sourcePosition(casesFile, marker, callee);

test.afterEach(() => cases.cleanUp());

async function failure(fn, options) {
  try {
    await expectNoLeaks(fn, options);
  } catch (error) {
    return error;
  }
  assert.fail('expected the leak check to fail');
}

test('passes when the code cleans up: timers fired, server closed, request done', async () => {
  const value = await expectNoLeaks(async () => {
    await cases.tidy();
    return 42;
  });
  assert.equal(value, 42);
});

test('a leaked interval fails the check, listed like debug=2 with its line', async () => {
  const error = await failure(() => cases.leakInterval(), { timeoutMs: 100 });
  assert.ok(error instanceof LeakError);
  assert.match(error.message, /^taskprof: 1 task leaked: still live 100 ms after the code under test ended\n\ntask \d+ \[Timeout setInterval\(60000ms\), \d+ms\]:\nleakInterval\(\.\.\.\)\n\t/);
  assert.ok(error.message.includes(at('LEAK interval', 'setInterval(')), error.message);
  assert.match(error.message, /\ncreated by /);
  assert.equal(error.leaks.length, 1);
  assert.equal(error.leaks[0].type, 'Timeout');
});

test('a held promise that never settles fails; so does a server left listening', async () => {
  const promise = await failure(() => cases.leakPromise(), { timeoutMs: 50 });
  // A flow of one: awaited by nobody, parked where it was made.
  assert.match(promise.message, /task \d+ \[Promise waits for its resolver, held elsewhere, waiting \S+, \S+\]:\nparked at:\nleakPromise\(\.\.\.\)\n/);
  assert.ok(promise.message.includes(at('LEAK promise', 'new Promise')));
  cases.cleanUp();
  const server = await failure(() => cases.leakServer(), { timeoutMs: 50 });
  // listen() with a host resolves it first and makes the handle a tick later, from Node's frames only (README).
  assert.match(server.message, /task \d+ \[TCPSERVERWRAP listening 127\.0\.0\.1:\d+, \d+ms\]:\n/);
});

test('labels and the creator are in the message', async () => {
  const error = await failure(() => withLabels({ job: 'nightly' }, () => cases.spawnFromImmediate()), { timeoutMs: 100 });
  assert.match(error.message, /\[Timeout setInterval\(60000ms\), \d+ms\]: \{job="nightly"\}\n/);
  assert.ok(error.message.endsWith(`\ncreated by task ${error.message.match(/created by task (\d+)/)[1]} [Immediate] at spawnFromImmediate ${at('SPAWNER immediate', 'setImmediate(')}`), error.message);
});

test('a task that is finishing passes within timeoutMs, and fails when the timeout is shorter', async () => {
  const fired = cases.finishedLaterCount();
  await expectNoLeaks(() => cases.finishLater(300), { timeoutMs: 2000 });
  const error = await failure(() => cases.finishLater(500), { timeoutMs: 50 });
  assert.match(error.message, /\[Timeout setTimeout\(500ms\), \d+ms\]/);
  assert.ok(error.message.includes(at('SLOW timer', 'setTimeout(')));
  // The failed check's timer must not outlive this test.
  assert.ok(await eventually(() => cases.finishedLaterCount() === fired + 2, 5000), 'the slow timer fired');
});

test('a never-settled promise nobody holds is garbage, not a leak', async () => {
  await expectNoLeaks(() => cases.forgetPromise(), { timeoutMs: 50 });
});

test('ignore: by a creation-site pattern (string or RegExp), anywhere in the stack', async () => {
  await expectNoLeaks(() => cases.leakInterval(), { timeoutMs: 50, ignore: ['leakInterval'] });
  cases.cleanUp();
  await expectNoLeaks(() => cases.leakInterval(), { timeoutMs: 50, ignore: [/leakcheck-cases\.mjs:\d+/] });
  cases.cleanUp();
  // A pattern that matches a caller further down the stack works too.
  await expectNoLeaks(function outerCaller() {
    cases.leakInterval();
  }, { timeoutMs: 50, ignore: ['outerCaller'] });
  cases.cleanUp();
  await failure(() => cases.leakInterval(), { timeoutMs: 50, ignore: ['somethingElse', /nomatch/] });
});

test('ignoreTypes and ignoreCreatedBy', async () => {
  await expectNoLeaks(() => cases.leakInterval(), { timeoutMs: 50, ignoreTypes: ['Timeout'] });
  cases.cleanUp();
  await expectNoLeaks(() => cases.spawnFromImmediate(), { timeoutMs: 100, ignoreCreatedBy: ['spawnFromImmediate'] });
  cases.cleanUp();
  const error = await failure(() => cases.spawnFromImmediate(), { timeoutMs: 100, ignoreCreatedBy: ['leakInterval'] });
  assert.match(error.message, /setInterval\(60000ms\)/);
});

test('ignoreCurrent: tasks live before the check are ignored by default, reported with false', async () => {
  startTracking({ mode: 'full' });
  cases.leakInterval();
  await expectNoLeaks(async () => {}, { timeoutMs: 50 });
  const error = await failure(async () => {}, { timeoutMs: 50, ignoreCurrent: false });
  assert.ok(error.message.includes(at('LEAK interval', 'setInterval(')), error.message);
});

test('forces full tracking while it runs, and puts the previous mode back', async () => {
  startTracking({ mode: 'sampled' });
  const check = startLeakCheck();
  assert.equal(trackingSettings().mode, 'full');
  await check.verify();
  assert.equal(trackingSettings().mode, 'sampled');
  await assert.rejects(check.verify(), /already called/);
  startTracking({ mode: 'full' });
});

test('bad options are TypeErrors naming the option', () => {
  assert.throws(() => startLeakCheck({ timeoutMs: -1 }), /option "timeoutMs" must be a number of milliseconds >= 0/);
  assert.throws(() => startLeakCheck({ ignore: 'x' }), /option "ignore" must be an array of strings and RegExps/);
  assert.throws(() => startLeakCheck({ ignoreTypes: [1] }), /option "ignoreTypes" must be an array of type names/);
  assert.throws(() => startLeakCheck({ ignoreCurrent: 'yes' }), /option "ignoreCurrent" must be true or false/);
});

test('the failure of the code under test comes first; the check still ends', async () => {
  await assert.rejects(expectNoLeaks(() => {
    throw new Error('boom');
  }), /boom/);
  assert.equal(trackingSettings().mode, 'full');
});

test('in Mocha: a tidy spec passes, a leaking spec fails with the leaked line', async () => {
  const mocha = path.join(process.cwd(), 'node_modules', 'mocha', 'bin', 'mocha.js');
  const spec = path.join(fixturesDir, 'mocha', 'leaks.spec.mjs');
  const result = await run(process.execPath, [mocha, '--reporter', 'spec', spec]).then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (e) => ({ code: e.code, out: e.stdout + e.stderr }),
  );
  assert.equal(result.code, 1, result.out);
  assert.match(result.out, /✔ leaves nothing behind/);
  assert.match(result.out, /1\) leaks an interval/);
  assert.match(result.out, /1 passing/);
  assert.match(result.out, /1 failing/);
  assert.match(result.out, /LeakError: taskprof: 1 task leaked/);
  assert.ok(result.out.includes(at('LEAK interval', 'setInterval(')), result.out);
});

test('a check does not stop a later mount, or one made during it, from starting its tracking', async () => {
  // A fresh process: this file's other tests have configured tracking already.
  const script = `
    import { startLeakCheck, expectNoLeaks } from 'taskprof/testing';
    import { trackingSettings } from 'taskprof';
    import taskprof from 'taskprof/http';
    await expectNoLeaks(async () => {});
    taskprof({});
    const afterCheck = trackingSettings().mode;
    const check = startLeakCheck();
    taskprof({ tracking: 'counts' });
    const during = trackingSettings().mode;
    await check.verify();
    console.log(JSON.stringify({ afterCheck, during, after: trackingSettings().mode }));
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: process.cwd() });
  assert.deepEqual(JSON.parse(stdout), { afterCheck: 'sampled', during: 'full', after: 'counts' });
});

test("taskprof's own promises (a listing written while checking) are not counted as the app's", async () => {
  const { writeProfile, taskCounts, startTracking: start } = await import('taskprof');
  start({ mode: 'full' });
  const { Writable } = await import('node:stream');
  const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
  const created = () => taskCounts().find((c) => c.type === 'Promise')?.created ?? 0;
  const before = created();
  for (let i = 0; i < 20; i++) await writeProfile('tasks', sink, { debug: 1 });
  // The loop's own awaits are the test's (about two per round); writeProfile's are taskprof's.
  assert.ok(created() - before <= 60, `${created() - before} promises counted for 20 listings`);
});

test('a failed check unrefs what it reported: the test runner reports and exits by itself', { timeout: 60_000 }, async () => {
  const { spawn } = await import('node:child_process');
  // A runner of its own (not a subtest of this one).
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const child = spawn(process.execPath, ['--test', '--test-reporter=tap', 'test/fixtures/runner/leaks-and-exits.mjs'], { cwd: process.cwd(), env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const code = await new Promise((resolve) => child.on('exit', resolve));
  assert.equal(code, 1, output);
  assert.match(output, /not ok 1 - leaves an interval and a server behind/);
  assert.match(output, /2 tasks leaked/);
  assert.match(output, /leaks-and-exits\.mjs:9:/);
  assert.throws(() => startLeakCheck({ keepLeaked: 'no' }), /option "keepLeaked" must be true or false/);
});
