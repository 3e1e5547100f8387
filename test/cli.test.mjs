// The taskprof command line, run as a user runs it (node dist/src/cli/main.js,
// the package's bin): dump and ps against apps in their own processes, top
// inside a real terminal (tmux: send-keys to type, capture-pane to read the
// screen), and attach to a plain app that never imported taskprof.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { steadyLoad } from './fixtures/growth-apps.mjs';
import { commandWorks, eventually, fixturesDir, sourcePosition, freePort, startChildApp } from './helpers.mjs';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const hasTmux = await commandWorks('tmux', ['-V']);
if (!hasTmux) console.log('# SKIP taskprof top in a terminal: tmux is not on PATH (CI installs the Debian package tmux)');

/** Runs the CLI; resolves to { code, stdout, stderr } whatever the exit code. */
async function taskprof(args, env = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    return { code: error.code, stdout: error.stdout ?? '', stderr: error.stderr ?? '' };
  }
}

const fleetApp = path.join(fixturesDir, 'fleet-app.mjs');

test('dump prints the listing at debug 1 and 2 and as JSON; bad input and a wrong token say what is wrong', async () => {
  const app = await startChildApp(fleetApp, []);
  try {
    for (let i = 0; i < 3; i++) await (await fetch(`${app.base}/leak`)).text();
    const port = new URL(app.base).port;
    const text = await taskprof(['dump', `${app.base}/debug`]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^tasks profile: total \d+/);
    assert.match(text.stdout, /^3 @ Timeout setInterval\(60000ms\).*\{method="GET", route="\/leak"\}$/m);
    // A bare port is the default prefix on 127.0.0.1.
    const dump = await taskprof(['dump', port, '--debug', '2']);
    assert.equal(dump.code, 0, dump.stderr);
    assert.equal(dump.stdout.match(/^task \d+ \[Timeout/gm)?.filter(Boolean).length >= 3, true, dump.stdout.slice(0, 500));
    const json = JSON.parse((await taskprof(['dump', port, '--json'])).stdout);
    assert.equal(json.groups.find((g) => g.labels.route === '/leak').count, 3);
    const bad = await taskprof(['dump', port, '--debug', '3']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--debug must be 1 or 2, got 3/);
    const nothing = await taskprof(['dump', 'http://127.0.0.1:1/debug']);
    assert.equal(nothing.code, 1);
    assert.match(nothing.stderr, /127\.0\.0\.1:1\/debug\/pprof\/tasks: connect ECONNREFUSED/);
    assert.match((await taskprof(['nosuch'])).stderr, /unknown command nosuch/);
  } finally {
    await app.close();
  }
});

test('dump with a token: from --token or TASKPROF_TOKEN, never printed; without it the refusal says how', async () => {
  const app = await startChildApp(fleetApp, [JSON.stringify({ token: 'cli-secret-1' })]);
  try {
    const refused = await taskprof(['dump', `${app.base}/debug`]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /401 .*set --token or TASKPROF_TOKEN/);
    const fromEnv = await taskprof(['dump', `${app.base}/debug`], { TASKPROF_TOKEN: 'cli-secret-1' });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    assert.match(fromEnv.stdout, /^tasks profile: total/);
    const fromFlag = await taskprof(['dump', `${app.base}/debug`, '--token', 'cli-secret-1']);
    assert.equal(fromFlag.code, 0, fromFlag.stderr);
    for (const said of [refused, fromEnv, fromFlag]) assert.doesNotMatch(said.stdout + said.stderr, /cli-secret-1/, 'the token is never printed');
    const rows = JSON.parse((await taskprof(['ps', '--json'])).stdout);
    assert.equal(rows.find((r) => r.urls.includes(`${app.base}/debug`))?.guarded, true, 'ps says a token guards it (401 to its probe)');
  } finally {
    await app.close();
  }
});

test('a mount writes its discovery file (no token in it) and unmounting removes it; discovery: false writes none', async () => {
  const { discoveryDir } = await import('../dist/src/lifecycle/discovery.js');
  const { default: taskprofHttp } = await import('taskprof/http');
  const file = path.join(discoveryDir(), `${process.pid}.json`);
  const handler = taskprofHttp({ prefix: '/ops', token: 'not-in-the-file' });
  try {
    const entry = JSON.parse(readFileSync(file, 'utf8'));
    assert.equal(entry.pid, process.pid);
    assert.ok(entry.prefixes.includes('/ops'));
    assert.equal(entry.guarded, true);
    assert.doesNotMatch(readFileSync(file, 'utf8'), /not-in-the-file/);
  } finally {
    await handler.close();
  }
  assert.equal(existsSync(file), false, 'removed on unmount');
  const silent = taskprofHttp({ discovery: false });
  try {
    assert.equal(existsSync(file), false, 'discovery: false writes none');
  } finally {
    await silent.close();
  }
});

test('ps lists Node processes, marks the one with taskprof mounted with its URL; a file left by a process that died is removed', async () => {
  const app = await startChildApp(fleetApp, []);
  let pid;
  try {
    const rows = JSON.parse((await taskprof(['ps', '--json'])).stdout);
    const mine = rows.find((r) => r.urls.includes(`${app.base}/debug`));
    assert.ok(mine, `the app is listed with its URL: ${JSON.stringify(rows.filter((r) => r.taskprof))}`);
    assert.equal(mine.taskprof, true);
    assert.match(mine.command, /fleet-app\.mjs/);
    pid = mine.pid;
    const text = await taskprof(['ps']);
    // Piped, not a terminal: whole command lines, not cut to a width.
    assert.match(text.stdout, new RegExp(`^\\s*${pid}  yes\\s+${app.base.replaceAll('.', '\\.')}/debug\\s+\\S*node\\S* \\S*fleet-app\\.mjs$`, 'm'));
    // Node processes without taskprof are listed, unmarked: this test's own runner is one.
    assert.ok(rows.some((r) => !r.taskprof), 'processes without taskprof are listed too');
  } finally {
    await app.close();
  }
  // The app exited without unmounting: its file stays until ps sees the pid is gone.
  const { discoveryDir } = await import('../dist/src/lifecycle/discovery.js');
  const rows = JSON.parse((await taskprof(['ps', '--json'])).stdout);
  assert.equal(rows.some((r) => r.pid === pid), false);
  assert.equal(existsSync(path.join(discoveryDir(), `${pid}.json`)), false, 'ps removed the dead process\'s file');
});

test('top prints one plain snapshot when stdout is not a terminal', async () => {
  const app = await startChildApp(fleetApp, []);
  try {
    for (let i = 0; i < 4; i++) await (await fetch(`${app.base}/leak`)).text();
    const snapshot = await taskprof(['top', `${app.base}/debug`]);
    assert.equal(snapshot.code, 0, snapshot.stderr);
    assert.match(snapshot.stdout, /one snapshot: stdout is not a colour terminal/);
    assert.match(snapshot.stdout, /^\s+4\s+\S*\s+\S+\s+Timeout\s+GET \/leak\s+new TtlCache .*ttl-cache\.mjs:7:\d+/m);
    assert.doesNotMatch(snapshot.stdout, /\x1b\[/, 'no escape sequences');
  } finally {
    await app.close();
  }
});

function tmux(...args) {
  return run('tmux', ['-L', 'taskprof-test', ...args]).then((r) => r.stdout);
}

test('top in a real terminal: the leak and its growing count show, Enter shows its stack, q quits with the terminal restored', { skip: hasTmux ? false : 'tmux is not installed (apt-get install tmux)', timeout: 90_000 }, async () => {
  const app = await startChildApp(fleetApp, []);
  const stop = steadyLoad(app.base, ['/leak'], 10, 1000);
  const session = `top-${process.pid}`;
  try {
    // The shell prints top's exit status on the normal screen once it ends.
    await tmux('new-session', '-d', '-s', session, '-x', '180', '-y', '45', `${process.execPath} ${cli} top ${app.base}/debug --interval 300; echo "top exited: $?"; sleep 60`);
    const screen = () => tmux('capture-pane', '-p', '-t', session);
    const leakCount = async () => Number(/^\s*(\d+)\s+\S*\s+\S+\s+Timeout\s+GET \/leak\s+new TtlCache/m.exec(await screen())?.[1] ?? NaN);
    assert.ok(await eventually(async () => (await leakCount()) > 0, 20_000), `the leak's line shows:\n${await screen()}`);
    const first = await leakCount();
    assert.ok(await eventually(async () => (await leakCount()) >= first + 5, 20_000), `its count grows from ${first}:\n${await screen()}`);
    assert.ok(await eventually(async () => /\+\d+(\.\d)?\s+\S+\s+Timeout\s+GET \/leak/.test(await screen()), 20_000), `its growth per minute shows:\n${await screen()}`);
    assert.match(await tmux('display-message', '-p', '-t', session, '#{alternate_on}'), /^1/, 'full screen (alternate screen) while running');
    // The leak is the largest group, so the first row: Enter opens it.
    await tmux('send-keys', '-t', session, 'Enter');
    assert.ok(await eventually(async () => /created at:\n\s+new TtlCache \S*ttl-cache\.mjs:7:\d+\n\s+<anonymous> \S*fleet-app\.mjs/.test(await screen()), 15_000), `Enter shows its stack:\n${await screen()}`);
    assert.ok(await eventually(async () => /its tasks \(\d+/.test(await screen()), 15_000), `and its tasks:\n${await screen()}`);
    await tmux('send-keys', '-t', session, 'Escape');
    await tmux('send-keys', '-t', session, 'q');
    assert.ok(await eventually(async () => /top exited: 0/.test(await screen()), 10_000), `q quits with status 0:\n${await screen()}`);
    const state = await tmux('display-message', '-p', '-t', session, '#{alternate_on} #{cursor_flag}');
    assert.equal(state.trim(), '0 1', 'back on the normal screen, cursor shown');
    assert.doesNotMatch(await screen(), /COUNT\s+\+\/MIN/, 'the normal screen, not top\'s');
    // Ctrl-C restores it too.
    const again = `${session}-c`;
    await tmux('new-session', '-d', '-s', again, '-x', '180', '-y', '45', `${process.execPath} ${cli} top ${app.base}/debug --interval 300; echo "top exited: $?"; sleep 60`);
    const screenAgain = () => tmux('capture-pane', '-p', '-t', again);
    assert.ok(await eventually(async () => /GET \/leak/.test(await screenAgain()), 20_000), 'top runs again');
    await tmux('send-keys', '-t', again, 'C-c');
    assert.ok(await eventually(async () => /top exited: 0/.test(await screenAgain()), 10_000), `Ctrl-C quits:\n${await screenAgain()}`);
    assert.equal((await tmux('display-message', '-p', '-t', again, '#{alternate_on} #{cursor_flag}')).trim(), '0 1', 'and restores the terminal');
  } finally {
    stop();
    await tmux('kill-server').catch(() => undefined);
    await app.close();
  }
});


test('attach to a plain app that never imported taskprof: after 3 leaking requests the leak\'s line shows; detach closes its inspector and leaves it as it was', { timeout: 90_000 }, async () => {
  const inspectPort = await freePort();
  const child = spawn(process.execPath, [`--inspect-port=${inspectPort}`, path.join(fixturesDir, 'plain-app.mjs')], { stdio: ['pipe', 'pipe', 'pipe'] });
  let appErr = '';
  child.stderr.on('data', (c) => (appErr += c));
  try {
    const [line] = await once(child.stdout.setEncoding('utf8'), 'data');
    const base = line.trim();
    // Node's net opens process.stderr the first time a socket is destroyed
    // (node:net's Socket._destroy reads it): the app has closed one before
    // the state it is compared in, as any app that has served a while has.
    await (await fetch(`${base}/`, { headers: { connection: 'close' } })).text();
    const before = await (await fetch(`${base}/state`)).json();
    const attached = spawn(process.execPath, [cli, 'attach', String(child.pid)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let said = '';
    attached.stderr.on('data', (c) => (said += c));
    try {
      assert.ok(await eventually(() => /attached to \d+ .*: (http:\S+)\/pprof\//.test(said), 20_000), `attach says where: ${said}`);
      const url = /: (http:\S+)\/pprof\//.exec(said)[1];
      assert.match(said, /tasks created before attach have no stacks/);
      for (let i = 0; i < 3; i++) await (await fetch(`${base}/leak`)).text();
      const leakLine = sourcePosition(path.join(fixturesDir, 'plain-app.mjs'), 'ATTACH LEAK', 'Promise').split(':')[1];
      const listing = await taskprof(['dump', url]);
      assert.match(listing.stdout, /^3 @ Promise waits for its resolver/m, listing.stdout);
      assert.match(listing.stdout, new RegExp(`#\\tlookup\\t\\S*plain-app\\.mjs:${leakLine}:\\d+`), listing.stdout);
      // Ctrl-C detaches.
      attached.kill('SIGINT');
      const [code] = await once(attached, 'exit');
      assert.equal(code, 0, said);
      assert.match(said, /detached from \d+: .*its inspector is closed/);
    } finally {
      if (attached.exitCode === null) attached.kill('SIGKILL');
    }
    // The inspector is closed, and the app is as it was.
    const inspectorGone = await fetch(`http://127.0.0.1:${inspectPort}/json/list`).then(() => false, () => true);
    assert.ok(inspectorGone, 'the inspector is closed');
    assert.equal(await (await fetch(`${base}/`)).text(), 'ok\n');
    const after = await (await fetch(`${base}/state`)).json();
    // This test's own keep-alive connections to the app come and go.
    for (const state of [before, after]) state.resources = state.resources.filter((type) => type !== 'TCPSocketWrap');
    assert.deepEqual(after, before, `the same resources, globals and listeners as before attach; the app said: ${appErr}`);
    assert.doesNotMatch(appErr, /Error|Warning/i, appErr);
  } finally {
    child.stdin.end();
    if (child.exitCode === null) await once(child, 'exit');
  }
});

test('attach refuses a process that is not Node, and an inspector bound beyond loopback, saying why', async () => {
  const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
  // --inspect-port alone opens nothing: the flag says where an inspector would listen.
  const wide = spawn(process.execPath, ['--inspect-port=0.0.0.0:45678', '-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  try {
    const notNode = await taskprof(['attach', String(sleeper.pid)]);
    assert.equal(notNode.code, 1);
    assert.match(notNode.stderr, new RegExp(`process ${sleeper.pid} is not Node`));
    const open = await taskprof(['attach', String(wide.pid)]);
    assert.equal(open.code, 1);
    assert.match(open.stderr, /has its inspector on 0\.0\.0\.0 \(--inspect-port\).*refused/);
    const gone = await taskprof(['attach', '999999999']);
    assert.match(gone.stderr, /no process 999999999/);
    // Another user's process: as root, a process of nobody's; otherwise pid 1 if it is another user's.
    if (process.getuid() !== 0) {
      const pid1Uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync('/proc/1/status', 'utf8'))?.[1]);
      if (pid1Uid !== process.getuid()) assert.match((await taskprof(['attach', '1'])).stderr, /belongs to another user/);
      else console.log('# SKIP attach to another user\'s process: not root, and pid 1 is this user\'s');
    } else {
      const others = spawn('sleep', ['30'], { stdio: 'ignore', uid: 65534, gid: 65534 });
      try {
        assert.match((await taskprof(['attach', String(others.pid)])).stderr, /belongs to another user \(uid 65534\)/);
      } finally {
        others.kill();
      }
    }
  } finally {
    sleeper.kill();
    wide.kill();
  }
});

test('the package names the taskprof bin, and no module outside src/cli imports it (mounting taskprof loads none of it)', () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  assert.equal(pkg.bin.taskprof, './dist/src/cli/main.js');
  assert.match(readFileSync(cli, 'utf8'), /^#!\/usr\/bin\/env node\n/);
  const dist = fileURLToPath(new URL('../dist/', import.meta.url));
  const walk = (dir) => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.js') ? [path.join(dir, e.name)] : []));
  const files = walk(dist);
  assert.ok(files.some((f) => f.includes(`${path.sep}cli${path.sep}`)), 'the command line is built');
  for (const file of files) {
    if (file.includes(`${path.sep}cli${path.sep}`)) continue;
    assert.doesNotMatch(readFileSync(file, 'utf8'), /(from|import\()\s*['"][^'"]*\/cli\//, `${path.relative(dist, file)} imports the command line`);
  }
});
