// The core handler driven with plain request objects: status, headers and
// body pinned for every error, access rule and profile format.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { Profile } from 'pprof-format';
import { createDebugHandler } from '../dist/src/http/handler.js';
import { MSG_METHOD, MSG_UNKNOWN_PROFILE } from '../dist/src/errors.js';
import { MSG_BAD_TOKEN, MSG_NOT_AUTHORIZED, MSG_NOT_LOCAL } from '../dist/src/errors.js';
import { resolveOptions } from '../dist/src/options.js';
import { createRegistry } from '../dist/src/profiles/registry.js';
import { loadEngine } from '../dist/src/v8/engine.js';
import { startTracking } from 'taskprof';
import { makeCache } from './fixtures/leaky-app.mjs';
import { bodyText } from './helpers.mjs';
import { errorCases } from './fixtures/error-cases.mjs';

startTracking({ mode: 'full' });

const escapeHtml = (text) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function handlerFor(options = {}) {
  return createDebugHandler(resolveOptions(options));
}

function request(url, overrides = {}) {
  return {
    method: 'GET',
    url,
    headers: {},
    remoteAddress: '127.0.0.1',
    native: undefined,
    signal: new AbortController().signal,
    ...overrides,
  };
}

for (const { name, path, method, headers, remoteAddress, status, body, allow } of errorCases) {
  test(`error: ${name} -> ${status}`, async () => {
    const overrides = { ...(method && { method }), ...(headers && { headers }), ...(remoteAddress !== undefined && { remoteAddress: remoteAddress ?? undefined }) };
    const response = await handlerFor({ maxProfileSeconds: 300 }).handle(request(path, overrides));
    assert.equal(response.status, status);
    assert.equal(await bodyText(response.body), body);
    assert.equal(response.headers['Content-Type'], 'text/plain; charset=utf-8');
    assert.equal(response.headers['Cache-Control'], 'no-store');
    assert.equal(response.headers['X-Content-Type-Options'], 'nosniff');
    assert.equal(response.headers['Content-Disposition'], undefined);
    assert.equal(response.headers.Allow, allow);
  });
}

test('loopback addresses are allowed: IPv4, IPv6 and IPv4-mapped', async () => {
  for (const remoteAddress of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) {
    const response = await handlerFor().handle(request('/debug/pprof/', { remoteAddress }));
    assert.equal(response.status, 200, remoteAddress);
  }
});

test('token: a matching bearer is allowed from anywhere; otherwise 401, even on loopback', async () => {
  const handler = handlerFor({ token: 's3cret' });
  const remote = { remoteAddress: '10.0.0.9' };
  assert.equal((await handler.handle(request('/debug/pprof/', { ...remote, headers: { authorization: 'Bearer s3cret' } }))).status, 200);
  for (const authorization of [undefined, 'Bearer wrong', 'Basic czNjcmV0', 'Bearer s3cret2', 'Bearer ']) {
    const response = await handler.handle(request('/debug/pprof/', { headers: authorization ? { authorization } : {} }));
    assert.equal(response.status, 401, String(authorization));
    assert.equal(await bodyText(response.body), MSG_BAD_TOKEN);
    assert.equal(response.headers['WWW-Authenticate'], 'Bearer realm="taskprof"');
  }
});

test('authorize decides, is given the request, and a throwing callback denies', async () => {
  const seen = [];
  const handler = handlerFor({
    authorize: (req) => {
      seen.push(req);
      if (req.headers['x-boom']) throw new Error('boom');
      return req.headers['x-admin'] === 'yes';
    },
  });
  assert.equal((await handler.handle(request('/debug/pprof/', { remoteAddress: '10.0.0.1', headers: { 'x-admin': 'yes' } }))).status, 200);
  const denied = await handler.handle(request('/debug/pprof/'));
  assert.equal(denied.status, 403);
  assert.equal(await bodyText(denied.body), MSG_NOT_AUTHORIZED);
  assert.equal((await handler.handle(request('/debug/pprof/', { headers: { 'x-boom': '1', 'x-admin': 'yes' } }))).status, 403);
  assert.equal(seen[0].url, '/debug/pprof/');
  const asyncHandler = handlerFor({ authorize: async () => true });
  assert.equal((await asyncHandler.handle(request('/debug/pprof/', { remoteAddress: '8.8.8.8' }))).status, 200);
});

test('the prefix option moves every path, and only known paths are claimed', () => {
  const handler = handlerFor({ prefix: '/ops/' });
  assert.equal(handler.matches('/ops/pprof/tasks?debug=1'), true);
  assert.equal(handler.matches('/ops/pprof'), true);
  assert.equal(handler.matches('/debug/pprof/tasks'), false);
  assert.equal(handler.matches('/ops/health'), false, 'other paths under the prefix belong to the app');
  assert.equal(handler.matches('/ops/pprofx'), false);
});

test('index page: every profile with its count, link and description; redirect without slash', async () => {
  const handler = handlerFor();
  const response = await handler.handle(request('/debug/pprof/'));
  assert.equal(response.headers['Content-Type'], 'text/html; charset=utf-8');
  const html = await bodyText(response.body);
  for (const profile of handler.registry.profiles) {
    assert.ok(profile.description.length > 10, `${profile.name} has a description`);
    // Profiles with a count are in the table; every profile is linked in the descriptions.
    assert.equal(html.includes(`</td><td><a href="${profile.name}?debug=1">${profile.name}</a></td></tr>`), profile.count !== undefined, profile.name);
    const link = profile.link ?? (profile.debugLevels.includes(1) ? `${profile.name}?debug=1` : profile.name);
    assert.ok(html.includes(`<a href="${escapeHtml(link)}">${profile.name}</a>: </div> ${escapeHtml(profile.description)}`), profile.name);
  }
  assert.match(html, /<tr><td>\d+<\/td><td><a href="tasks\?debug=1">tasks<\/a><\/td><\/tr>/);
  assert.ok(html.includes('<a href="tasks?debug=2">full task stack dump</a>'));
  assert.ok(html.includes('<a href="cmdline">cmdline</a>: </div>'));
  assert.ok(html.includes('<a href="../vars">vars</a>: </div>'));
  const redirect = await handler.handle(request('/debug/pprof'));
  assert.equal(redirect.status, 301);
  assert.equal(redirect.headers.Location, 'pprof/');
});

test('every registered profile has a description (the index is built from the registry)', () => {
  for (const profile of createRegistry(resolveOptions(), loadEngine('inspector')).profiles) {
    assert.equal(typeof profile.description, 'string');
    assert.ok(profile.description.trim().length > 0, profile.name);
  }
});

test('cmdline is process.argv joined by NUL', async () => {
  const response = await handlerFor().handle(request('/debug/pprof/cmdline'));
  assert.equal(await bodyText(response.body), process.argv.join('\0'));
});

test('debug=0 is a gzipped profile.proto with tasks/count samples, type and labels', async () => {
  const cache = makeCache();
  const response = await handlerFor().handle(request('/debug/pprof/goroutine'));
  assert.equal(response.status, 200);
  assert.equal(response.headers['Content-Type'], 'application/octet-stream');
  assert.equal(response.headers['Content-Disposition'], 'attachment; filename="goroutine"');
  const profile = Profile.decode(gunzipSync(response.body));
  const str = (i) => profile.stringTable.strings[Number(i)];
  assert.deepEqual(profile.sampleType.map((t) => [str(t.type), str(t.unit)]), [['tasks', 'count']]);
  const sample = profile.sample.find((s) =>
    s.label.some((l) => str(l.key) === 'detail' && str(l.str) === 'setInterval(60000ms)'),
  );
  assert.ok(sample, 'the interval is a sample');
  assert.ok(Number(sample.value[0]) >= 1);
  assert.equal(str(sample.label.find((l) => str(l.key) === 'type').str), 'Timeout');
  const leaf = profile.location.find((l) => Number(l.id) === Number(sample.locationId[0]));
  const fn = profile.function.find((f) => Number(f.id) === Number(leaf.line[0].functionId));
  assert.equal(str(fn.name), 'new TtlMap');
  assert.match(str(fn.filename), /test\/fixtures\/leaky-app\.mjs$/);
  cache.close();
});

test('Accept: application/json gives JSON; HEAD-able content types', async () => {
  const response = await handlerFor().handle(request('/debug/pprof/tasks?debug=1', { headers: { accept: 'application/json' } }));
  assert.equal(response.headers['Content-Type'], 'application/json; charset=utf-8');
  const parsed = JSON.parse(await bodyText(response.body));
  assert.equal(typeof parsed.total, 'number');
  assert.ok(Array.isArray(parsed.groups));
  const dump = await handlerFor().handle(request('/debug/pprof/tasks?debug=2&format=json'));
  assert.ok(Array.isArray(JSON.parse(await bodyText(dump.body)).tasks));
});

test('debug=2 is streamed and capped with a closing line', async () => {
  const caches = Array.from({ length: 200 }, () => makeCache());
  const handler = handlerFor({ maxDumpBytes: 4096 });
  const response = await handler.handle(request('/debug/pprof/tasks?debug=2'));
  assert.ok(response.body instanceof Readable);
  const text = await bodyText(response.body);
  assert.ok(text.length <= 4096 + 200, `length ${text.length}`);
  assert.match(text, /\.\.\. \d+ more tasks not shown: output capped at 4096 bytes\n$/);
  caches.forEach((c) => c.close());
});

test('bad options throw a TypeError naming the option', () => {
  assert.throws(() => resolveOptions({ prefix: 'debug' }), { name: 'TypeError', message: /option "prefix"/ });
  assert.throws(() => resolveOptions({ tracking: 'most' }), { name: 'TypeError', message: /option "tracking" must be one of full, sampled, counts, off/ });
  assert.throws(() => resolveOptions({ token: '' }), { name: 'TypeError', message: /option "token"/ });
  assert.throws(() => resolveOptions({ authorize: 'yes' }), { name: 'TypeError', message: /option "authorize"/ });
  assert.throws(() => resolveOptions({ stackBudget: 2 }), { name: 'TypeError', message: /option "stackBudget" must be a share of CPU time from 0 to 1/ });
  assert.throws(() => resolveOptions({ samplingInterval: 16 }), { name: 'TypeError', message: /option "samplingInterval" is gone: counts are exact, and stacks are captured within "stackBudget"/ });
  assert.throws(() => resolveOptions({ maxTasks: 1.5 }), { name: 'TypeError', message: /option "maxTasks"/ });
  assert.throws(() => resolveOptions({ cpuProfileHz: 0 }), { name: 'TypeError', message: /option "cpuProfileHz" must be an integer >= 1, got 0/ });
  assert.throws(() => resolveOptions({ cpuProfileHz: 5000 }), { name: 'TypeError', message: /option "cpuProfileHz" must be an integer from 1 to 1000, got 5000/ });
  assert.throws(() => resolveOptions({ blockThresholdMs: 0.5 }), { name: 'TypeError', message: /option "blockThresholdMs" must be an integer >= 1/ });
  assert.throws(() => resolveOptions({ discovery: 'no' }), { name: 'TypeError', message: /option "discovery"/ });
  const options = { prefix: '/x/' };
  resolveOptions(options);
  assert.deepEqual(options, { prefix: '/x/' }, 'the caller object is not written');
});
