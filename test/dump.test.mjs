// dumpOnSignal: the debug=2 listing on a signal, to stderr or to a file;
// off by default; SIGUSR1 refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import taskprof from 'taskprof/http';
import { fixturesDir, sourcePosition, eventually } from './helpers.mjs';

const app = path.join(fixturesDir, 'dump-app.mjs');
const intervalLine = sourcePosition(app, 'DUMPED interval', 'setInterval(');

async function start(options) {
  const child = spawn(process.execPath, [app, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  await eventually(() => stdout.includes('ready'), 5000);
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    async stop() {
      child.stdin.end();
      if (child.exitCode === null) await once(child, 'exit');
    },
  };
}

test('SIGUSR2 writes the debug=2 listing to stderr, and the process keeps running', async () => {
  const proc = await start({ tracking: 'full', dumpOnSignal: 'SIGUSR2' });
  try {
    proc.child.kill('SIGUSR2');
    const text = await eventually(() => (proc.stderr().includes(intervalLine) ? proc.stderr() : undefined), 5000);
    assert.ok(text, proc.stderr());
    assert.match(text, /^taskprof: task dump on SIGUSR2 at \d{4}-\d\d-\d\dT[\d:.]+Z, pid \d+\ntasks profile: total \d+\n\n/);
    assert.match(text, /task \d+ \[Timeout setInterval\(4242ms\), \d+m?s\]:\n<anonymous>\(\.\.\.\)\n\ttest\/fixtures\/dump-app\.mjs:\d+:\d+/);
    // Still alive, and a second signal dumps again.
    assert.equal(proc.child.exitCode, null);
    proc.child.kill('SIGUSR2');
    assert.ok(await eventually(() => proc.stderr().split('taskprof: task dump on SIGUSR2').length === 3, 5000));
  } finally {
    await proc.stop();
  }
});

test('dumpPath: the dump goes to that file, replaced at each signal', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'taskprof-dump-'));
  const file = path.join(dir, 'tasks.txt');
  const proc = await start({ tracking: 'full', dumpOnSignal: 'SIGUSR2', dumpPath: file });
  try {
    proc.child.kill('SIGUSR2');
    assert.ok(await eventually(() => existsSync(file), 5000));
    const text = readFileSync(file, 'utf8');
    assert.match(text, /^taskprof: task dump on SIGUSR2 at /);
    assert.ok(text.includes(intervalLine), text);
    assert.equal(proc.stderr(), '');
  } finally {
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('off by default: no signal listener; a signal name is checked, SIGUSR1 refused', async () => {
  const proc = await start({});
  try {
    assert.match(proc.stdout(), /^ready 0$/m);
  } finally {
    await proc.stop();
  }
  assert.throws(() => taskprof({ dumpOnSignal: 'SIGUSR1' }), /option "dumpOnSignal" must be a signal name .*not SIGUSR1, SIGKILL, SIGSTOP, SIGTERM, SIGINT, SIGHUP: SIGUSR1 starts Node's inspector/);
  assert.throws(() => taskprof({ dumpOnSignal: 'SIGNOPE' }), /option "dumpOnSignal" must be a signal name/);
  // A listener would stop these ending the process (an orchestrator's SIGTERM, Ctrl-C).
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) assert.throws(() => taskprof({ dumpOnSignal: signal }), /must keep ending the process/);
  assert.throws(() => taskprof({ dumpPath: '/tmp/x' }), /option "dumpPath" needs "dumpOnSignal"/);
});
