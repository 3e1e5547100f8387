// The tracker through the public API: what it records, when tasks leave the
// listing, labels, sampling, caps, and clean stopping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import path from 'node:path';
import { startTracking, stopTracking, taskCount, taskCounts, trackingSettings, withLabels, writeProfile } from 'taskprof';
import { TtlMap, makeCache, waitForever } from './fixtures/leaky-app.mjs';
import { collectGarbage, fixturesDir, parseGroups, sourcePosition } from './helpers.mjs';

const fixture = path.join(fixturesDir, 'leaky-app.mjs');

async function listing(options = { debug: 1 }) {
  let text = '';
  const sink = new Writable({ write(chunk, _enc, done) { text += chunk; done(); } });
  await writeProfile('tasks', sink, options);
  return text;
}

function groupsAt(text, position) {
  return parseGroups(text).filter((g) => g.frames.includes(position));
}

test('an interval started in a constructor shows at its exact line, one per instance, and leaves when cleared', async () => {
  startTracking({ mode: 'full' });
  const caches = [];
  for (let i = 0; i < 7; i++) caches.push(makeCache());
  const intervalLine = sourcePosition(fixture, 'LEAK: interval', 'setInterval(');
  let groups = groupsAt(await listing(), intervalLine);
  assert.equal(groups.length, 1, 'one group for the interval site');
  assert.equal(groups[0].count, 7);
  assert.match(groups[0].head, /^7 @ Timeout setInterval\(60000ms\) oldest \d+ms$/);
  assert.equal(groups[0].functions[0], 'new TtlMap');
  assert.equal(groups[0].frames[1], sourcePosition(fixture, 'line 14', 'new TtlMap'));
  for (const cache of caches.slice(0, 4)) cache.close();
  groups = groupsAt(await listing(), intervalLine);
  assert.equal(groups[0].count, 3);
  for (const cache of caches.slice(4)) cache.close();
  assert.equal(groupsAt(await listing(), intervalLine).length, 0);
});

test('a pending promise awaited by three async functions is three flows parked at it, and leaves when it settles', async () => {
  startTracking({ mode: 'full' });
  let release;
  const gate = new Promise((resolve) => { release = resolve; }); // GATE
  async function waiter() {
    await gate; // AWAIT
  }
  const waiters = [waiter(), waiter(), waiter()];
  const text = await listing();
  const here = new URL(import.meta.url).pathname;
  const gateLine = sourcePosition(here, '// GATE', 'new Promise');
  const awaitLine = sourcePosition(here, '// AWAIT', 'await');
  // Three flows (README, "Flows"): each waiter, parked at its await of the gate,
  // which each shows and which none lists on its own (fan-in).
  const flows = parseGroups(text).filter((g) => g.parked[0] === gateLine);
  // (Three groups: each waiter() call is a column of its own.)
  assert.equal(flows.reduce((n, g) => n + g.count, 0), 3, text);
  for (const flow of flows) assert.deepEqual(flow.parked, [gateLine, awaitLine], text);
  assert.equal(parseGroups(text).filter((g) => (g.started[0] ?? g.frames[0]) === gateLine).length, 0, 'no task of its own for the gate');
  assert.ok(flows.every((g) => g.functions.at(-2) === 'waiter'), 'started by waiter');
  release();
  await Promise.all(waiters);
  const after = await listing();
  assert.equal(groupsAt(after, gateLine).length, 0);
  assert.equal(parseGroups(after).filter((g) => g.functions.includes('waiter')).length, 0);
});

test('a never-settled promise nobody references is counted abandoned, not live', async () => {
  startTracking({ mode: 'full' });
  const promiseLine = sourcePosition(fixture, 'LEAK: never settles', 'new Promise');
  (() => { for (let i = 0; i < 5; i++) waitForever(); })();
  assert.equal(groupsAt(await listing(), promiseLine)[0]?.count, 5);
  const abandonedBefore = taskCounts().find((c) => c.type === 'Promise').abandoned;
  await collectGarbage();
  assert.equal(groupsAt(await listing(), promiseLine).length, 0, 'collected promises are not live');
  const abandonedAfter = taskCounts().find((c) => c.type === 'Promise').abandoned;
  assert.ok(abandonedAfter - abandonedBefore >= 5, `abandoned grew by ${abandonedAfter - abandonedBefore}`);
});

test('an abandoned flow (nobody holds its promises) is collected whole: no longer listed, its promises counted abandoned', async () => {
  startTracking({ mode: 'full' });
  const promiseLine = sourcePosition(fixture, 'LEAK: never settles', 'new Promise');
  async function lost() {
    await waitForever(); // LOST AWAITS
  }
  (() => { for (let i = 0; i < 3; i++) lost(); })();
  const here = new URL(import.meta.url).pathname;
  const flows = () => parseGroups(text).filter((g) => g.parked[0] === promiseLine);
  let text = await listing();
  assert.deepEqual(flows().map((g) => [g.count, g.parked]), [[3, [promiseLine, sourcePosition(here, '// LOST AWAITS', 'waitForever(')]]], text);
  const abandonedBefore = taskCounts().find((c) => c.type === 'Promise').abandoned;
  await collectGarbage();
  text = await listing();
  assert.deepEqual(flows(), [], text);
  const abandonedAfter = taskCounts().find((c) => c.type === 'Promise').abandoned;
  assert.ok(abandonedAfter - abandonedBefore >= 6, `abandoned grew by ${abandonedAfter - abandonedBefore}: each flow's two promises`);
});

test('a cycle of awaits (each awaiting the other) is one flow', async () => {
  startTracking({ mode: 'full' });
  const here = new URL(import.meta.url).pathname;
  let second;
  const first = (async () => {
    await null;
    await second; // CYCLE FIRST
  })();
  second = (async () => {
    await first; // CYCLE SECOND
  })();
  await new Promise((resolve) => setImmediate(resolve));
  const lines = [sourcePosition(here, '// CYCLE FIRST', 'await'), sourcePosition(here, '// CYCLE SECOND', 'await')];
  const text = await listing();
  const cycle = parseGroups(text).filter((g) => g.parked.some((p) => lines.includes(p)));
  assert.equal(cycle.reduce((n, g) => n + g.count, 0), 1, text);
  // (Held here: a cycle nobody else references is garbage, and V8 collects it.)
  assert.ok(first && second);
});

test('a then chain 20,000 long on a stuck promise lists as one flow (no recursion through it)', async () => {
  startTracking({ mode: 'full' });
  const here = new URL(import.meta.url).pathname;
  let tail = new Promise(() => {}); // CHAIN HEAD
  const head = tail;
  for (let i = 0; i < 20_000; i++) tail = tail.then(() => {});
  const text = await listing();
  const flows = parseGroups(text).filter((g) => g.parked[0] === sourcePosition(here, '// CHAIN HEAD', 'new Promise'));
  assert.equal(flows.reduce((n, g) => n + g.count, 0), 1, text);
  assert.ok(head && tail);
});

test('the tracker does not keep a task object alive', async () => {
  startTracking({ mode: 'full' });
  let collected = 0;
  const registry = new FinalizationRegistry(() => collected++);
  (() => {
    const timer = setTimeout(() => {}, 1);
    registry.register(timer, 't');
    clearTimeout(timer);
    registry.register(waitForever(), 'p');
  })();
  await collectGarbage();
  await collectGarbage();
  assert.equal(collected, 2);
});

test('withLabels labels tasks created inside, through awaits and callbacks', async () => {
  startTracking({ mode: 'full' });
  const timers = [];
  await withLabels({ job: 'reindex' }, async () => {
    await null;
    await new Promise((resolve) => setImmediate(resolve));
    withLabels({ step: 'two' }, () => timers.push(setInterval(() => {}, 1000))); // LABELLED
  });
  const here = new URL(import.meta.url).pathname;
  const group = groupsAt(await listing(), sourcePosition(here, '// LABELLED', 'setInterval('))[0];
  assert.match(group.head, /\{job="reindex", step="two"\}$/);
  timers.forEach(clearInterval);
  assert.throws(() => withLabels({ n: 1 }, () => {}), /label "n" must be a string/);
});

test('debug=2 lists each task with its age, stack and creator; JSON shapes', async () => {
  startTracking({ mode: 'full' });
  const cache = new TtlMap(1234);
  const text = await listing({ debug: 2 });
  const block = text.split('\n\n').find((b) => b.includes('setInterval(1234ms)'));
  assert.match(block, /^task \d+ \[Timeout setInterval\(1234ms\), \d+ms\]:/);
  assert.match(block, /new TtlMap\(\.\.\.\)\n\ttest\/fixtures\/leaky-app\.mjs:\d+:\d+/);
  assert.match(block, /created by (task \d+ \[\w+\]( at \S+ \S+:\d+:\d+)?|\(no tracked task\))$/);
  const dump = JSON.parse(await listing({ debug: 2, json: true }));
  const task = dump.tasks.find((t) => t.detail === 'setInterval(1234ms)');
  assert.deepEqual(Object.keys(task).sort(), ['ageMs', 'detail', 'id', 'labels', 'parentId', 'stack', 'type']);
  assert.equal(task.stack[0].functionName, 'new TtlMap');
  assert.equal(task.stack[0].file, fixture);
  const grouped = JSON.parse(await listing({ debug: 1, json: true }));
  assert.deepEqual(Object.keys(grouped).sort(), ['byType', 'dropped', 'estimatedGroups', 'groups', 'promises', 'total', 'tracking', 'withoutStack']);
  assert.deepEqual(Object.keys(grouped.promises).sort(), ['estimated', 'flows', 'pending']);
  assert.equal(grouped.estimatedGroups, 0);
  const group = grouped.groups.find((g) => g.detail === 'setInterval(1234ms)');
  assert.deepEqual(Object.keys(group).sort(), ['count', 'detail', 'estimated', 'labels', 'oldestAgeMs', 'recorded', 'stack', 'type']);
  assert.equal(group.count, 1);
  assert.equal(group.estimated, false);
  cache.close();
});

test('over the stack budget, counts stay exact: sampled groups are estimated, say so, and add up to the total', async () => {
  // A budget of 0.1% of CPU time banks 20 ms, and the sampled stacks may
  // borrow as much: some hundreds of stacks, then sampling, even on a loaded
  // machine where a capture takes 100 µs.
  startTracking({ mode: 'sampled', stackBudget: 0.001 });
  const kept = [];
  for (let i = 0; i < 4000; i++) kept.push(waitForever());
  const promiseLine = sourcePosition(fixture, 'LEAK: never settles', 'new Promise');
  const text = await listing();
  const header = text.split('\n')[0];
  assert.match(header, /^tasks profile: total \d+; \d+ pending promises in \d+ flows \(estimated\); \d+ groups? estimated \(stack capture was over its budget: sampled stacks stand for the tasks of their kind made without one\); \d+ tasks? without a stack \(not captured: over the stack budget\)$/);
  const promises = groupsAt(text, promiseLine)[0];
  assert.match(promises.head, /^\d+ @ Promise waits for its resolver, held elsewhere, waiting \S+ oldest \S+ \(estimated from \d+ sampled stacks?\)$/);
  const json = JSON.parse(await listing({ debug: 1, json: true }));
  const groupSum = json.groups.filter((g) => g.type === 'Promise').reduce((n, g) => n + g.count, 0);
  assert.equal(groupSum, json.byType.Promise, 'the groups of a type add up to its exact count');
  assert.ok(json.byType.Promise >= 4000, `exact live count ${json.byType.Promise}`);
  const estimated = json.groups.find((g) => g.estimated && g.stack[0]?.line === Number(promiseLine.split(':')[1]));
  assert.ok(estimated.recorded < estimated.count, 'fewer records than tasks');
  // Never more than what was made there (give or take the sampling), and what
  // the samples cannot stand for (the budget ran out) is listed as no stack.
  assert.ok(estimated.count <= 4000 * 1.2, `the estimate ${estimated.count} of 4000`);
  const noStack = json.groups.filter((g) => g.type === 'Promise' && g.stack.length === 0).reduce((n, g) => n + g.count, 0);
  assert.ok(estimated.count + noStack >= 4000 * 0.8, `estimated ${estimated.count} and no stack ${noStack}: the 4000 are there`);
  kept.length = 0;
  startTracking({ mode: 'sampled', stackBudget: 0.01 });
});

test('counts mode lists counts by type without stacks', async () => {
  startTracking({ mode: 'counts' });
  const timers = Array.from({ length: 3 }, () => setInterval(() => {}, 5000));
  const text = await listing();
  const timeout = parseGroups(text).find((g) => / @ Timeout/.test(g.head));
  assert.ok(timeout.count >= 3);
  assert.equal(timeout.frames.length, 0);
  timers.forEach(clearInterval);
});

test('counts mode counts pending promises exactly, and sees them settle', async () => {
  startTracking({ mode: 'counts' });
  // The test runner's own promises come and go too, so look at differences.
  const promises = () => taskCounts().find((c) => c.type === 'Promise') ?? { live: 0, completed: 0 };
  const before = promises();
  const resolvers = [];
  const kept = Array.from({ length: 5 }, () => new Promise((resolve) => resolvers.push(resolve)));
  assert.equal(promises().live, before.live + 5, 'five more pending');
  resolvers.forEach((resolve) => resolve());
  await Promise.all(kept);
  const after = promises();
  assert.ok(after.completed >= before.completed + 5, `completed ${before.completed} -> ${after.completed}`);
  const rejected = Promise.reject(new Error('counted, not handled by taskprof'));
  rejected.catch(() => {});
  const settledCount = promises().completed;
  assert.ok(settledCount >= after.completed + 1, 'a rejected promise is not pending');
});

test('maxTasks caps the records and every listing shows the dropped count', async () => {
  startTracking({ mode: 'full', maxTasks: 10 });
  const kept = [];
  for (let i = 0; i < 50; i++) kept.push(waitForever());
  const text = await listing();
  assert.match(text.split('\n')[0], /; \d+ tasks without a stack \(not captured \(over the stack budget\), or maxTasks 10 records held\); dropped \d+ records \(maxTasks 10 reached\)$/);
  const dump = JSON.parse(await listing({ debug: 1, json: true }));
  assert.ok(dump.dropped >= 40);
  assert.ok(dump.withoutStack >= 40, 'the tasks without a record are still counted');
  assert.ok(taskCounts().find((c) => c.type === 'Promise').live >= 50, 'counts are not capped');
  kept.length = 0;
  startTracking({ mode: 'full', maxTasks: 200_000 });
});

test('stopping removes every hook; tracking settings round-trip', async () => {
  startTracking({ mode: 'full', stackBudget: 0.05 });
  assert.deepEqual(trackingSettings(), { mode: 'full', stackBudget: 0.05, maxTasks: 200_000 });
  stopTracking();
  assert.equal(trackingSettings().mode, 'off');
  const createdBefore = JSON.stringify(taskCounts());
  const kept = [waitForever(), setInterval(() => {}, 1000)];
  clearInterval(kept[1]);
  assert.equal(taskCount(), 0);
  assert.equal(JSON.stringify(taskCounts()), createdBefore, 'no hook counts anything after stop');
  assert.throws(() => startTracking({ mode: 'loud' }), /mode must be one of full, sampled, counts, off/);
});

test('counts are exact at every read: no duty cycle, no scaling, no sweep lag', async () => {
  startTracking({ mode: 'counts' });
  const created = () => taskCounts().find((c) => c.type === 'Promise')?.created ?? 0;
  const timers = () => taskCounts().find((c) => c.type === 'Timeout')?.live ?? 0;
  for (let round = 0; round < 3; round++) {
    const start = created();
    for (let i = 0; i < 100; i++) void Promise.resolve(i);
    assert.equal(created() - start, 100);
    const before = timers();
    const made = Array.from({ length: 7 }, () => setTimeout(() => {}, 60_000));
    assert.equal(timers(), before + 7);
    made.slice(0, 4).forEach(clearTimeout);
    assert.equal(timers(), before + 3, 'cleared timers leave at once');
    made.slice(4).forEach(clearTimeout);
    await new Promise((resolve) => setImmediate(resolve));
  }
  startTracking({ mode: 'full' });
});

test('full: a task never keeps its creating frames\' objects; a frozen task object is no crash', async () => {
  startTracking({ mode: 'full' });
  // A settled promise the app keeps, made by an object the app drops: the
  // stack is kept as text, never as call sites (which hold their receivers).
  class Session {
    constructor() {
      this.payload = new Array(10_000).fill(7);
    }
    load() {
      return Promise.resolve(42);
    }
  }
  const cache = [];
  let session;
  (() => {
    const s = new Session();
    session = new WeakRef(s);
    cache.push(s.load());
  })();
  await cache[0];
  await collectGarbage();
  await collectGarbage();
  assert.equal(session.deref(), undefined, 'the dropped Session is collected though its settled promise is kept');
  // A pending promise and a timer the app freezes after creating them.
  const frozen = Object.freeze(new Promise(() => {}));
  // (Node's own clearTimeout cannot clear a frozen timer: this one is unref'd and left.)
  const frozenTimer = Object.freeze(setTimeout(() => {}, 60_000).unref());
  const text = await listing();
  assert.match(text, /tasks profile: total \d+/);
  assert.ok(Object.isFrozen(frozenTimer));
  assert.ok(Object.isFrozen(frozen) && cache.length === 1);
});
