// Property-based: any path under the prefix and any query (known parameters
// with wild values, repeated parameters, unknown ones, unicode,
// percent-encoding, huge values) gets an answer below 500, and every 4xx
// names what was wrong. The core handler is driven directly; a request whose
// wait (CPU profile, delta) would outlast the test is aborted as a client
// that leaves, and its answer is not judged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createDebugHandler } from '../dist/src/http/handler.js';
import { resolveOptions } from '../dist/src/options.js';
import { startTracking } from 'taskprof';
import { makeCache } from './fixtures/leaky-app.mjs';
import { bodyText } from './helpers.mjs';

startTracking({ mode: 'full' });
const cache = makeCache();
const handler = createDebugHandler(resolveOptions({ maxProfileSeconds: 2, leakDetection: { intervalMs: 1000, windowMs: 60_000 } }));

const names = [
  '', 'tasks', 'goroutine', 'leaks', 'goroutineleak', 'heap', 'allocs', 'block', 'mutex', 'profile', 'heapsnapshot', 'cmdline', 'nosuch', 'tasks/extra',
  // Dot segments and encodings: each must be refused (400), never served as another endpoint.
  '..', '%2e%2e', '.', './tasks', 'tasks/../cmdline', 'tasks/%2e%2e/heapsnapshot', 'tasks/.%2e/cmdline', '../../vars', 'cmd%6Cine', '%74asks', 'tasks%2f..%2fcmdline', 'tasks\\..\\cmdline', '/tasks', 'tasks/',
];
const params = ['debug', 'format', 'seconds', 'gc', 'x', 'DEBUG', 'débug', ''];
const wildValue = fc.oneof(
  fc.constantFrom('0', '1', '2', '3', '-1', '1e3', '0x10', '', ' 1', '1 ', 'json', 'text', 'cpuprofile', 'NaN', 'Infinity', '99999999999999999999', '%', '%zz', '%00', '\u00e9', '\ud83d\ude00'),
  fc.string({ maxLength: 20 }),
  fc.integer({ min: -5, max: 400 }).map(String),
);

const query = fc.array(fc.tuple(fc.constantFrom(...params), wildValue), { maxLength: 4 }).map((pairs) =>
  pairs.map(([k, v]) => `${encodeURIComponent(k)}=${Math.random() < 0.5 ? encodeURIComponent(v) : v}`).join('&'),
);

const url = fc
  .tuple(fc.constantFrom('/debug/pprof/', '/debug/pprof', '/debug/vars', '/debug/metrics', '/debug/pprof//'), fc.constantFrom(...names), query, fc.string({ maxLength: 8 }))
  .map(([base, name, q, junk]) => base + (base.endsWith('/') ? name : '') + (Math.random() < 0.2 ? encodeURIComponent(junk) : '') + (q ? '?' + q : ''));

test('every path and query: no 5xx, and every 4xx says what is wrong', async () => {
  const seen = new Map();
  await fc.assert(
    fc.asyncProperty(url, fc.constantFrom('GET', 'HEAD', 'POST', 'DELETE'), async (target, method) => {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 300);
      try {
        const response = await handler.handle({ method, url: target, headers: {}, remoteAddress: '127.0.0.1', native: undefined, signal: controller.signal });
        const body = await bodyText(response.body);
        if (controller.signal.aborted) return; // a client that left: nobody reads the answer
        seen.set(response.status, (seen.get(response.status) ?? 0) + 1);
        assert.ok(response.status < 500, `${method} ${target} -> ${response.status} ${body}`);
        // A non-canonical spelling is refused, whatever it would decode to.
        const path = target.split('?')[0];
        if (/%|\\|\/\.\.?(\/|$)|\/\/./.test(path)) assert.equal(response.status, 400, `${method} ${target} -> ${response.status} ${body}`);
        if (response.status >= 400) {
          assert.match(
            body,
            /^(Bad path: |invalid value for "[^"]+" - must be |parameter "[^"]*" may be given only once|"seconds" parameter is not supported|seconds and debug params are incompatible|Unknown profile|Method not allowed|Forbidden|heapsnapshot is off|heap is not available|leaks is not available|Too many requests)/,
            `${method} ${target} -> ${response.status} ${body}`,
          );
          assert.equal(response.headers['X-Go-Pprof'], '1');
        }
      } finally {
        clearTimeout(timer);
      }
    }),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 400), seed: Number(process.env.FUZZ_SEED ?? 42) },
  );
  // The run reached both answers and refusals.
  console.log(`# statuses: ${JSON.stringify(Object.fromEntries([...seen].sort((a, b) => a[0] - b[0])))}`);
  assert.ok((seen.get(200) ?? 0) > 10 && [...seen.keys()].some((s) => s >= 400), JSON.stringify([...seen]));
  cache.close();
});
