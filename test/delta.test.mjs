// Delta profiles: `seconds=N` on tasks and heap returns what changed over N
// seconds, as Go's delta profiles do; bad combinations get Go's 400s; a
// client that leaves ends the wait.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import express from 'express';
import { Profile } from 'pprof-format';
import taskprof from 'taskprof/express';
import { parseGroups } from './helpers.mjs';
import { MSG_SNAPSHOT_OFF } from '../dist/src/errors.js';
import { deltasInWait } from '../dist/src/profiles/profile.js';
import { workGateState } from '../dist/src/http/work-gate.js';
import { eventually } from './helpers.mjs';

const timers = [];
const retained = [];

function growTimers(n) {
  for (let i = 0; i < n; i++) timers.push(setInterval(() => {}, 12_345)); // DELTA TIMER
}

function retainDuringDelta() {
  // About 12 MB: some 23 samples of the 512 KiB sampler, so the site cannot be missed by chance.
  for (let i = 0; i < 1500; i++) retained.push(new Array(1000).fill(i)); // DELTA ALLOC
}

async function start() {
  const app = express();
  app.use(taskprof({ tracking: 'full', maxProfileSeconds: 30 }));
  app.get('/grow/:n', (req, res) => {
    growTimers(Number(req.params.n));
    res.send('ok');
  });
  app.get('/retain', (req, res) => {
    retainDuringDelta();
    res.send('ok');
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    base,
    close: () => {
      timers.splice(0).forEach(clearInterval);
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

const app = await start();
test.after(() => app.close());

/** Starts a delta request, runs `during` while it waits, returns the response. */
async function deltaWith(path, during) {
  const pending = fetch(app.base + path);
  // Its first read is taken: what happens now is in the delta.
  assert.ok(await eventually(() => deltasInWait() === 1, 10_000), 'the delta is waiting');
  await during();
  return pending;
}

test('tasks?seconds=1&debug=1 lists the groups that changed, with their change', async () => {
  await fetch(app.base + '/grow/2').then((r) => r.text());
  const res = await deltaWith('/debug/pprof/tasks?seconds=1&debug=1', () => fetch(app.base + '/grow/7').then((r) => r.text()));
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.match(text, /^tasks profile: total \d+; \d+ pending promises in \d+ flows; delta over 1s: \+\d+ -\d+ in \d+ changed groups\n/);
  const grown = text.split('\n\n').find((block) => block.includes('setInterval(12345ms)'));
  // Seven new in the wait; the two from before are not part of the change.
  assert.match(grown, /^\+7 @ Timeout setInterval\(12345ms\) now 9 oldest \S+ \{method="GET", route="\/grow\/:n"\}\n#\tgrowTimers\t\S+delta\.test\.mjs:\d+:\d+/m);
  // Groups that did not change are left out.
  assert.equal(parseGroups(text).filter((g) => g.head.includes('12345')).length, 0, 'signed heads are not plain counts');
});

test('goroutine?seconds=1 (debug=0) is a pprof delta named goroutine-delta, as Go names it; JSON too', async () => {
  const res = await deltaWith('/debug/pprof/goroutine?seconds=1', () => fetch(app.base + '/grow/3').then((r) => r.text()));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-disposition'), 'attachment; filename="goroutine-delta"');
  const profile = Profile.decode(gunzipSync(Buffer.from(await res.arrayBuffer())));
  const strings = profile.stringTable.strings;
  assert.equal(Number(profile.durationNanos), 1e9);
  const grown = profile.sample.find((s) => s.label.some((l) => strings[Number(l.str)] === 'setInterval(12345ms)'));
  assert.equal(Number(grown.value[0]), 3);

  const json = await deltaWith('/debug/pprof/tasks?seconds=1&format=json', () => fetch(app.base + '/grow/2').then((r) => r.text()));
  const body = await json.json();
  assert.equal(body.deltaSeconds, 1);
  const group = body.groups.find((g) => g.detail === 'setInterval(12345ms)');
  assert.equal(group.delta, 2);
  assert.equal(group.count, 9 + 3 + 2);
});

test('heap?seconds=1 shows what was allocated and kept during the wait', async () => {
  const res = await deltaWith('/debug/pprof/heap?seconds=1&debug=1', () => fetch(app.base + '/retain').then((r) => r.text()));
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.match(text, /^heap profile: -?\d+ objects, -?\d+ bytes in use \(sampled, estimates, change over 1s\)/);
  assert.match(text, /#\tretainDuringDelta\t\S+delta\.test\.mjs:/);
  const pprof = await deltaWith('/debug/pprof/heap?seconds=1', () => fetch(app.base + '/retain').then((r) => r.text()));
  assert.equal(pprof.headers.get('content-disposition'), 'attachment; filename="heap-delta"');
});

test('bad seconds and combinations get 400 with Go\'s wording', async () => {
  const cases = [
    ['/debug/pprof/tasks?seconds=1&debug=2', 'seconds and debug params are incompatible: debug=2 lists single tasks, not a difference; use debug=0 or debug=1\n'],
    ['/debug/pprof/tasks?seconds=0', 'invalid value for "seconds" - must be an integer from 1 to 30 (maxProfileSeconds)\n'],
    ['/debug/pprof/tasks?seconds=31', 'invalid value for "seconds" - must be an integer from 1 to 30 (maxProfileSeconds)\n'],
    ['/debug/pprof/tasks?seconds=1e3', 'invalid value for "seconds" - must be an integer from 1 to 30 (maxProfileSeconds)\n'],
    ['/debug/pprof/tasks?seconds=', 'invalid value for "seconds" - must be an integer from 1 to 30 (maxProfileSeconds)\n'],
    ['/debug/pprof/tasks?seconds=1&seconds=2', 'parameter "seconds" may be given only once\n'],
    ['/debug/pprof/leaks?seconds=1', '"seconds" parameter is not supported for this profile type\n'],
    // A switched-off profile says so first: no other parameter can help it.
    ['/debug/pprof/heapsnapshot?seconds=1', MSG_SNAPSHOT_OFF, 403],
  ];
  for (const [path, message, status = 400] of cases) {
    const res = await fetch(app.base + path);
    assert.equal(res.status, status, path);
    assert.equal(res.headers.get('x-go-pprof'), '1');
    assert.equal(await res.text(), message, path);
  }
});

test('a client that leaves ends the wait, and waits are bounded', async () => {
  // Eight clients start 30 s deltas and leave after 200 ms.
  const requests = [];
  for (let i = 0; i < 8; i++) {
    const req = http.get(app.base + '/debug/pprof/tasks?seconds=30', { agent: false });
    req.on('error', () => {});
    requests.push(req);
  }
  assert.ok(await eventually(() => deltasInWait() === 8, 10_000), 'the eight wait');
  // While all eight wait, a ninth is refused with 429 and Retry-After.
  const busy = await fetch(app.base + '/debug/pprof/tasks?seconds=5');
  assert.equal(busy.status, 429);
  assert.equal(busy.headers.get('retry-after'), '5');
  // A profile that is switched off says so, not "busy, retry" (heap snapshots are opt-in).
  const off = await fetch(app.base + '/debug/pprof/heapsnapshot?seconds=5');
  assert.equal(off.status, 403);
  assert.match(await off.text(), /"heapSnapshot: true"/);
  for (const req of requests) req.destroy();
  assert.ok(await eventually(() => workGateState().deltas === 0, 10_000), 'their slots are free');
  // Their waits ended with them: a new delta is accepted and answers after its own second.
  const started = Date.now();
  const res = await fetch(app.base + '/debug/pprof/tasks?seconds=1&debug=1');
  assert.equal(res.status, 200);
  await res.text();
  assert.ok(Date.now() - started < 5000);
});
