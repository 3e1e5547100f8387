// Async flows: a chain of pending promises linked by awaiting is one task,
// listed where it is parked (innermost first), where it started, and what
// it waits for; on Express, Fastify and node:http, in `full` and the default mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { flowAdapters } from './fixtures/flow-app.mjs';
import { commandWorks, eventually, fixturesDir, parseGroups, sourcePosition, startChildApp } from './helpers.mjs';

const run = promisify(execFile);
const fixture = path.join(fixturesDir, 'flow-app.mjs');
const at = (marker, callee) => sourcePosition(fixture, marker, callee);
const parked = [at('PARKED HERE', 'new Promise'), at('TAKEJOB AWAITS', 'nextJob()'), at('WORKER AWAITS', 'takeJob()')];
// The position of `callee` on the line after `position`'s.
function nextLine(position, callee) {
  const line = Number(position.split(':').at(-2));
  const text = readFileSync(fixture, 'utf8').split('\n')[line];
  return `${path.relative(process.cwd(), fixture)}:${line + 1}:${text.indexOf(callee) + 1}`;
}
// An async function's own promise is made on entry: V8 places that frame at its parameter list.
const started = [at('export async function worker', '()'), at('STARTED HERE', 'fn()')];
const modes = [
  ['full', { tracking: 'full' }],
  ['the default mode', {}],
];

// Plain requests on fresh connections: fetch's own pending work (undici's) would be this process's flows too.
function get(url) {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

async function stuckGroup(url, n) {
  return eventually(async () => {
    const text = await get(`${url}/debug/pprof/goroutine?debug=1`);
    const group = parseGroups(text).find((g) => g.parked[0] === parked[0]);
    return group !== undefined && group.count === n ? { group, text } : undefined;
  }, 5000);
}

for (const adapter of flowAdapters) {
  for (const [modeName, options] of modes) {
    test(`${adapter.name}, ${modeName}: N workers stuck three awaits deep are N tasks, parked at each await line, started where they were called`, async () => {
      const app = await adapter.start(options);
      try {
        let made = 0;
        for (const n of [1, 3, 7]) {
          for (; made < n; made++) await get(`${app.url}/stuck`);
          const found = await stuckGroup(app.url, n);
          assert.ok(found, `no group of ${n} stuck workers`);
          const { group, text } = found;
          assert.deepEqual(group.parked, parked, text);
          assert.deepEqual(group.started.slice(0, 2), started, text);
          assert.match(group.head, /^\d+ @ Promise waits for its resolver, held elsewhere, waiting \S+ oldest \S+/);
          // Nothing else of the flow is listed on its own.
          assert.equal(parseGroups(text).filter((g) => g.parked.includes(parked[0]) || g.started[0] === parked[0]).length, 1, text);
        }
        const dump = await get(`${app.url}/debug/pprof/goroutine?debug=2`);
        const entries = dump.split('\n\n').filter((e) => e.includes(`\t${parked[0]}\n`));
        assert.equal(entries.length, 7, dump);
        for (const entry of entries) {
          assert.match(entry, /^task \d+ \[Promise waits for its resolver, held elsewhere, waiting \S+, \S+\]:/);
          const [parkedPart, startedPart] = entry.split('\nstarted at:\n');
          assert.deepEqual(parkedPart.split('\n').filter((l) => l.startsWith('\t')).map((l) => l.slice(1)), parked, entry);
          assert.deepEqual(startedPart.split('\n').filter((l) => l.startsWith('\t')).slice(0, 2).map((l) => l.slice(1)), started, entry);
          assert.match(entry, /\ncreated by /);
        }
        const json = JSON.parse(await get(`${app.url}/debug/pprof/goroutine?format=json`));
        const jsonGroup = json.groups.find((g) => g.flow?.parkedAt[0] && `${path.relative(process.cwd(), g.flow.parkedAt[0].file)}:${g.flow.parkedAt[0].line}:${g.flow.parkedAt[0].column}` === parked[0]);
        assert.equal(jsonGroup.count, 7);
        assert.equal(jsonGroup.flow.waitsFor, 'its resolver, held elsewhere');
        assert.equal(jsonGroup.flow.parkedAt.length, 3);
        assert.ok(json.promises.pending >= json.promises.flows + 14, JSON.stringify(json.promises));
      } finally {
        await app.close();
      }
    });
  }
}

for (const [modeName, options] of modes) {
  test(`${modeName}: each flow says what it waits for: a held resolver, once(), a timer, a socket read, an outbound request`, async () => {
    const app = await flowAdapters[0].start(options);
    try {
      for (const flow of ['stuck', 'event', 'timer', 'socket', 'request']) await get(`${app.url}/${flow}`);
      const expected = [
        [parked[0], /^1 @ Promise waits for its resolver, held elsewhere/],
        [at('ONCE HERE', 'once('), /^1 @ Promise waits for an event \(events\.once\)/],
        // Made and awaited on one line: the line, at the await's call (the catch's).
        [at('TIMER HERE', '(() =>'), /^1 @ Promise waits for a timer \(timers\/promises setTimeout\): a timer setTimeout\(600000ms\) unref, waiting/],
        // V8 places a for await's await of next() at the loop variable.
        [at('SOCKET HERE', 'chunk'), /^1 @ Promise waits for a stream read/],
        [nextLine(at('REQUEST HERE', 'REQUEST'), 'new Promise'), /^1 @ Promise waits for an outbound request GET 127\.0\.0\.1, waiting/],
      ];
      const missing = (listing) => {
        const groups = parseGroups(listing);
        return expected.filter(([position, head]) => !groups.some((g) => g.parked[0] === position && head.test(g.head)));
      };
      const text = await eventually(async () => {
        const listing = await get(`${app.url}/debug/pprof/goroutine?debug=1`);
        return missing(listing).length === 0 ? listing : undefined;
      }, 5000);
      const last = await get(`${app.url}/debug/pprof/goroutine?debug=1`);
      assert.ok(text, `not listed: ${missing(last).map(([position, head]) => `${head} at ${position}`).join('; ')}\n${last}`);
      // debug=2 names the task each waits on (a group's text does not: its
      // flows wait on tasks of their own); this process's own get() is a flow
      // waiting on a request too, so each is found by the function it is parked in.
      const dump = await get(`${app.url}/debug/pprof/goroutine?debug=2`);
      const entryOf = (fn) => dump.split('\n\n').find((e) => e.includes('\nparked at:\n') && e.split('\nstarted at:\n')[0].includes(`\n${fn}(...)\n`)) ?? '';
      const timer = entryOf('waitForTimer').match(/^task \d+ \[Promise waits for a timer \(timers\/promises setTimeout\): a timer setTimeout\(600000ms\) unref \(task (\d+)\), waiting/);
      assert.ok(timer, dump);
      assert.match(dump, new RegExp(`\ntask ${timer[1]} \\[Timeout setTimeout\\(600000ms\\) unref, `));
      const request = entryOf('callOut').match(/^task \d+ \[Promise waits for an outbound request GET 127\.0\.0\.1 \(task (\d+)\), waiting/);
      assert.ok(request, dump);
      assert.match(dump, new RegExp(`\ntask ${request[1]} \\[HTTPCLIENTREQUEST GET 127\\.0\\.0\\.1/silent, `));
    } finally {
      await app.close();
    }
  });

  test(`${modeName}: fan-in and Promise.all: a promise two flows await is in both, counted once; Promise.all is one flow parked at its first pending element`, async () => {
    const app = await flowAdapters[0].start(options);
    try {
      await get(`${app.url}/fanin`);
      await get(`${app.url}/fanin`);
      await get(`${app.url}/all`);
      const shared = at('SHARED HERE', 'new Promise');
      const found = await eventually(async () => {
        const text = await get(`${app.url}/debug/pprof/goroutine?debug=1`);
        const groups = parseGroups(text);
        const fan = groups.find((g) => g.parked[0] === shared);
        const all = groups.find((g) => g.parked.at(-1) === at('ALL AWAITS', 'all('));
        return fan?.count === 2 && all !== undefined ? { text, groups, fan, all } : undefined;
      }, 5000);
      assert.ok(found, await get(`${app.url}/debug/pprof/goroutine?debug=1`));
      assert.deepEqual(found.fan.parked, [shared, at('FANIN AWAITS', 'await')]);
      // The shared promise heads no flow of its own.
      assert.equal(found.groups.filter((g) => g.parked.includes(shared)).length, 1, found.text);
      assert.match(found.all.head, /^1 @ Promise waits for Promise\.all on 2 of 2 promises/);
      assert.deepEqual(found.all.parked, [parked[0], at('ALL AWAITS', 'all(')]);
    } finally {
      await app.close();
    }
  });
}

for (const [modeName, options] of modes) {
  test(`${modeName}: a recursive retry and a new Promise wrapping a then are one flow each, parked at the stuck promise`, async () => {
    const app = await flowAdapters[0].start(options);
    try {
      for (let i = 0; i < 3; i++) {
        await get(`${app.url}/recursive`);
        await get(`${app.url}/wrapped`);
      }
      const retryStart = at('async function retry', '(n)');
      const wrappedStart = at('async function wrapped', '()');
      const found = await eventually(async () => {
        const text = await get(`${app.url}/debug/pprof/goroutine?debug=1`);
        const groups = parseGroups(text);
        const recursive = groups.filter((g) => g.started.includes(retryStart));
        const wrappedFlows = groups.filter((g) => g.started[0] === wrappedStart || g.parked.includes(at('WRAPPED AWAITS', 'wrap(')));
        const count = (list) => list.reduce((n, g) => n + g.count, 0);
        return count(recursive) === 3 && count(wrappedFlows) === 3 ? { text, recursive, wrappedFlows } : undefined;
      }, 5000);
      assert.ok(found, await get(`${app.url}/debug/pprof/goroutine?debug=1`));
      // Each retry(2) is one flow: the outermost call's, parked at the promise the last call returned.
      for (const group of found.recursive) assert.equal(group.parked[0], parked[0], found.text);
      assert.ok(found.recursive.every((g) => g.started[0] === retryStart), found.text);
      for (const group of found.wrappedFlows) {
        assert.equal(group.started[0], wrappedStart, found.text);
        assert.equal(group.parked[0], parked[0], found.text);
        assert.equal(group.parked.at(-1), at('WRAPPED AWAITS', 'wrap('), found.text);
      }
    } finally {
      await app.close();
    }
  });
}

const hasGo = await commandWorks('go', ['version']);
if (!hasGo) console.log('# SKIP go tool pprof flow test: `go` is not on PATH here (CI installs the Debian package golang-go)');

test('go tool pprof -top on debug=0 puts the function where flows are parked first', { skip: hasGo ? false : 'go is not installed (apt-get install golang-go)' }, async () => {
  // In a process of its own: the test runner's pending promises are not the app's.
  const child = await startChildApp(fixture, ['express', '{}']);
  const app = { url: child.base, close: () => child.close() };
  const scratch = mkdtempSync(path.join(tmpdir(), 'taskprof-go-'));
  const env = { ...process.env, PPROF_TMPDIR: scratch, HOME: scratch, GOCACHE: path.join(scratch, 'gocache') };
  try {
    for (let i = 0; i < 7; i++) await get(`${app.url}/stuck`);
    assert.ok(await stuckGroup(app.url, 7));
    const top = await run('go', ['tool', 'pprof', '-top', `${app.url}/debug/pprof/goroutine`], { env });
    const rows = top.stdout.split('\n').filter((l) => /^\s+\d+\s+[\d.]+%/.test(l));
    assert.match(rows[0] ?? '', /^\s+7\s+[\d.]+%\s+[\d.]+%\s+7\s+[\d.]+%\s+nextJob$/, top.stdout);
    const raw = await run('go', ['tool', 'pprof', '-raw', `${app.url}/debug/pprof/goroutine`], { env });
    assert.match(raw.stdout, /waits_for:\[its resolver, held elsewhere\]/);
  } finally {
    await app.close();
    rmSync(scratch, { recursive: true, force: true });
  }
});

// taskprof_flows, scraped from an app in its own process: it grows by
// exactly one per stuck flow, however deep, while taskprof_tasks{type="Promise"}
// grows by each flow's three promises; `counts` links nothing: no sample.
async function scrape(base) {
  const text = await get(`${base}/debug/metrics`);
  const value = (pattern) => Number(text.match(pattern)?.[1]);
  return { flows: value(/^taskprof_flows (\S+)$/m), promises: value(/^taskprof_tasks\{type="Promise"\} (\S+)$/m) };
}

for (const [modeName, options] of modes) {
  test(`${modeName}: taskprof_flows counts 1, 3 and 7 stuck workers exactly, one each`, async () => {
    const child = await startChildApp(fixture, ['express', JSON.stringify(options)]);
    try {
      const before = await scrape(child.base);
      assert.ok(Number.isInteger(before.flows), JSON.stringify(before));
      let made = 0;
      for (const n of [1, 3, 7]) {
        for (; made < n; made++) await get(`${child.base}/stuck`);
        // A worker reaches its third await a few turns after its request is answered.
        const now = await eventually(async () => {
          const read = await scrape(child.base);
          return read.promises === before.promises + 3 * n ? read : undefined;
        }, 5000);
        assert.ok(now, `pending promises for ${n} workers: ${JSON.stringify(await scrape(child.base))} (before ${JSON.stringify(before)})`);
        assert.equal(now.flows, before.flows + n, `flows for ${n} stuck workers`);
      }
    } finally {
      await child.close();
    }
  });
}

test('counts: taskprof_flows has no sample, and the listing says promises are not linked', async () => {
  const child = await startChildApp(fixture, ['express', JSON.stringify({ tracking: 'counts' })]);
  try {
    await get(`${child.base}/stuck`);
    const text = await get(`${child.base}/debug/metrics`);
    assert.match(text, /^# TYPE taskprof_flows gauge$/m);
    assert.doesNotMatch(text, /^taskprof_flows /m);
    assert.match(await get(`${child.base}/debug/pprof/goroutine?debug=1`), /^tasks profile: total \d+; tracking "counts": counts by type, no stacks, promises not linked into flows/);
  } finally {
    await child.close();
  }
});
