// Continuous profilers configured for Go, replayed: the exact requests of
// Grafana Alloy's pyroscope.scrape and of Parca with their default
// configurations, at their intervals shortened, for several cycles, against
// an app in its own process under steady load. Every answer must be what the
// scraper accepts (Alloy: 2xx, Content-Type application/octet-stream, gzip;
// Parca: exactly 200 and a body profile.ParseData reads), every body must
// decode as a profile (pprof-format here, and `go tool pprof -raw` where Go
// is installed), and the app must keep serving throughout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startGrowthApp, healthyPaths } from './fixtures/growth-apps.mjs';
import { commandWorks, decodePprof } from './helpers.mjs';

const run = promisify(execFile);
const hasGo = await commandWorks('go', ['version']);
if (!hasGo) console.log('# SKIP go tool pprof -raw on the scraped profiles: go is not on PATH (CI installs the Debian package golang-go)');

// The default configurations (grafana/alloy internal/component/pyroscope/scrape/scrape.go;
// parca-dev/parca pkg/config/config.go), with every duration divided by `speedup`.
const speedup = 5;
const alloy = {
  name: 'alloy',
  userAgent: 'Alloy/v1.11.0 (linux)',
  intervalMs: 15_000 / speedup,
  // Non-delta profiles time out at scrape_timeout (10 s); a request with
  // seconds= at timeout + interval - 1 s. Shortened, but never below 3 s
  // more than the profile lasts: a busy test machine does not speed up.
  timeoutMs: Math.max(10_000 / speedup, 3000),
  cpuTimeoutMs: Math.max((10_000 + 15_000 - 1000) / speedup, Math.round((15 - 1) / speedup) * 1000 + 3000),
  // delta_profiling_duration: interval - 1 s, as whole seconds.
  cpuSeconds: Math.max(1, Math.round((15 - 1) / speedup)),
  paths: ['/debug/pprof/allocs', '/debug/pprof/block', '/debug/pprof/goroutine', '/debug/pprof/mutex'],
  accepts: (res) => res.status >= 200 && res.status < 300 && /^application\/octet-stream/.test(res.headers['content-type'] ?? '') && res.body[0] === 0x1f && res.body[1] === 0x8b,
};
const parca = {
  name: 'parca',
  userAgent: 'conprof/v0.24.0',
  intervalMs: 10_000 / speedup,
  // timeout = interval + 3 s; the CPU profile's seconds = the whole interval,
  // so one cycle's CPU request overlaps the next one's.
  timeoutMs: 10_000 / speedup + 3000,
  cpuTimeoutMs: 10_000 / speedup + 3000,
  cpuSeconds: Math.max(1, Math.round(10 / speedup)),
  paths: ['/debug/pprof/allocs', '/debug/pprof/block', '/debug/pprof/goroutine', '/debug/pprof/mutex'],
  accepts: (res) => res.status === 200 && res.body.length > 0,
};

/** GET as the scraper sends it: its User-Agent, no Accept, no Accept-Encoding (prometheus/common disables compression). */
function scrape(base, urlPath, scraper, timeoutMs) {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = http.get(base + urlPath, { agent: false, headers: { 'User-Agent': scraper.userAgent }, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ path: urlPath, scraper: scraper.name, status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), ms: performance.now() - started }));
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', (error) => resolve({ path: urlPath, scraper: scraper.name, status: 0, headers: {}, body: Buffer.alloc(0), error: error.message, ms: performance.now() - started }));
  });
}

/** One scraper's loop: a cycle every interval (first at a random offset, as scrape loops spread targets), all its paths at once. */
function scrapeLoop(base, scraper, cycles) {
  const results = [];
  const started = performance.now() + Math.random() * 200;
  const pending = [];
  return new Promise((resolve) => {
    let cycle = 0;
    const tick = () => {
      pending.push(...scraper.paths.map((p) => scrape(base, p, scraper, scraper.timeoutMs)));
      pending.push(scrape(base, `/debug/pprof/profile?seconds=${scraper.cpuSeconds}`, scraper, scraper.cpuTimeoutMs));
      cycle++;
      if (cycle < cycles) setTimeout(tick, started + cycle * scraper.intervalMs - performance.now());
      else Promise.all(pending).then((all) => resolve(results.concat(all)));
    };
    setTimeout(tick, started - performance.now());
  });
}

/** Requests `paths` in turn and records every answer: the app must keep serving. */
function recordedLoad(base, paths, perSecond) {
  // A connection per request: a reused keep-alive socket that the server
  // closes as it idles out fails the request without the app failing to serve.
  const answers = { ok: 0, failed: 0, slowestMs: 0, failures: [] };
  let n = 0;
  const timer = setInterval(() => {
    const started = performance.now();
    const req = http.get(base + paths[n++ % paths.length], { agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode === 200) answers.ok++;
        else {
          answers.failed++;
          answers.failures.push(`${path}: status ${res.statusCode} after ${Math.round(performance.now() - started)} ms`);
        }
        answers.slowestMs = Math.max(answers.slowestMs, performance.now() - started);
      });
    });
    const path = paths[(n - 1) % paths.length];
    req.on('timeout', () => req.destroy(new Error('no answer in 5 s')));
    req.on('error', (error) => {
      answers.failed++;
      answers.failures.push(`${path}: ${error.message} after ${Math.round(performance.now() - started)} ms`);
    });
  }, 1000 / perSecond);
  return {
    answers,
    stop() {
      clearInterval(timer);
    },
  };
}

test('Alloy and Parca with their default configurations, at once, for several cycles: every scrape succeeds with a valid profile and the app keeps serving', { timeout: 120_000 }, async () => {
  const app = await startGrowthApp({ leaky: false, options: { leakDetection: false } });
  // Healthy traffic, and now and then 80 ms of synchronous work for block to find.
  const load = recordedLoad(app.base, [...healthyPaths, '/busy/80'], 40);
  const dir = mkdtempSync(path.join(tmpdir(), 'taskprof-scrapers-'));
  try {
    const [fromAlloy, fromParca] = await Promise.all([scrapeLoop(app.base, alloy, 4), scrapeLoop(app.base, parca, 6)]);
    load.stop();
    const all = [...fromAlloy, ...fromParca];
    assert.equal(all.length, 4 * 5 + 6 * 5);
    for (const res of all) {
      const scraper = res.scraper === 'alloy' ? alloy : parca;
      assert.ok(scraper.accepts(res), `${res.scraper} ${res.path}: ${res.status} ${res.headers['content-type']} ${res.error ?? res.body.toString().slice(0, 200)}`);
      assert.equal(res.headers['content-type'], 'application/octet-stream');
      const name = res.path.split('/').pop().split('?')[0];
      assert.equal(res.headers['content-disposition'], `attachment; filename="${name}"`, res.path);
      const { types, periodType, profile } = decodePprof(res.body);
      const expectedTypes = {
        allocs: ['inuse_objects/count', 'inuse_space/bytes'],
        block: ['contentions/count', 'delay/nanoseconds'],
        mutex: ['contentions/count', 'delay/nanoseconds'],
        goroutine: ['tasks/count'],
        profile: ['samples/count', 'cpu/nanoseconds'],
      }[name];
      assert.deepEqual(types, expectedTypes, res.path);
      if (name === 'block' || name === 'mutex') assert.equal(periodType, 'contentions/count', 'Go\'s period type');
      if (name === 'profile') {
        const seconds = Number(profile.durationNanos) / 1e9;
        assert.ok(Math.abs(seconds - scraper.cpuSeconds) < 0.5, `a ${scraper.cpuSeconds} s profile lasted ${seconds} s`);
        assert.ok(profile.sample.length > 0, 'the CPU profile has samples');
      }
    }
    // Parca's overlapping CPU requests and Alloy's were all served, none refused.
    assert.equal(all.filter((r) => r.path.includes('/profile') && r.status === 200).length, 4 + 6);
    // Block lists the synchronous work, read from the CPU profiles the scrapers took.
    const lastBlock = fromAlloy.filter((r) => r.path.endsWith('/block')).pop();
    const blocked = decodePprof(lastBlock.body);
    const busy = blocked.profile.sample.filter((s) => blocked.stack(s).some((f) => f.file.endsWith('growth-apps.mjs')));
    assert.ok(busy.length > 0, 'the /busy handler is in block');
    for (const s of busy) assert.ok(Number(s.value[1]) / Number(s.value[0]) >= 50e6, 'each long run held the loop at least 50 ms');
    // The app kept serving: every request answered, none failed.
    assert.ok(load.answers.ok > 40 * 6, `${load.answers.ok} requests answered`);
    assert.equal(load.answers.failed, 0, `the app failed requests: ${load.answers.failures.join('; ')}`);
    console.log(`# ${all.length} scrapes answered; app served ${load.answers.ok} requests meanwhile (slowest ${Math.round(load.answers.slowestMs)} ms, /busy/80 included)`);

    if (hasGo) {
      for (const name of ['allocs', 'block', 'mutex', 'goroutine', 'profile']) {
        const res = all.find((r) => r.path.includes(`/${name}`));
        const file = path.join(dir, name);
        writeFileSync(file, res.body);
        const { stdout } = await run('go', ['tool', 'pprof', '-raw', file], { maxBuffer: 32 * 1024 * 1024 });
        assert.match(stdout, /PeriodType: /, `go tool pprof reads ${name}`);
        assert.match(stdout, /Samples:/, name);
      }
    }
  } finally {
    load.stop();
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a person asking for a CPU profile while the scrapers profile gets one of the length asked for', { timeout: 60_000 }, async () => {
  const app = await startGrowthApp({ leaky: false, options: { leakDetection: false } });
  try {
    // Parca's CPU requests cover the next 6 s back to back: the person's 3 s overlap them.
    const scraping = scrapeLoop(app.base, parca, 3);
    const person = await scrape(app.base, '/debug/pprof/profile?seconds=3', { name: 'curl', userAgent: 'curl/8.5.0' }, 10_000);
    assert.equal(person.status, 200, person.body.toString());
    const seconds = Number(decodePprof(person.body).profile.durationNanos) / 1e9;
    assert.ok(seconds > 2.5 && seconds < 3.5, `3 s asked for, ${seconds} s given`);
    for (const res of await scraping) assert.equal(res.status, 200, `${res.path}: ${res.body.toString().slice(0, 200)}`);
  } finally {
    await app.close();
  }
});
