// Grafana Alloy's default scrape loop, run by bench/overhead.mjs against a
// `/scraped` variant's server (see overhead.mjs's header for the method).
import http from 'node:http';
import { median } from './harness.mjs';

// The continuous profiler: Grafana Alloy's pyroscope.scrape, default config
// (grafana/alloy internal/component/pyroscope/scrape: scrape_interval 15 s,
// scrape_timeout 10 s, delta_profiling_duration interval - 1 s; the CPU request
// may take timeout + interval - 1 s), as replayed in test/scrapers.test.mjs.
export const alloy = {
  intervalMs: 15_000,
  userAgent: 'Alloy/v1.11.0 (linux)',
  paths: ['/debug/pprof/allocs', '/debug/pprof/block', '/debug/pprof/goroutine', '/debug/pprof/mutex'],
  cpuPath: '/debug/pprof/profile?seconds=14',
  timeoutMs: 10_000,
  cpuTimeoutMs: 24_000,
};

export function isScraped(variant) {
  return variant.split('/').slice(1).includes('scraped');
}

// The same variant unscraped, at the default rate: `sampled/scraped/hz25` -> `sampled`.
export function unscrapedTwin(variant) {
  const [spec, ...flags] = variant.split('/');
  return [spec, ...flags.filter((f) => f !== 'scraped' && !/^hz\d+$/.test(f))].join('/');
}

// Scrape answers per variant, over all its processes.
const scrapeTallies = new Map();
export function scrapeTally(variant) {
  if (!scrapeTallies.has(variant)) scrapeTallies.set(variant, { cycles: 0, byPath: {}, errors: [] });
  return scrapeTallies.get(variant);
}

/** Every intervalMs from now (absolute schedule, no drift), all of Alloy's requests at once, each on its own socket. */
export function startScrapeLoop(port, tally) {
  const started = performance.now();
  const inFlight = new Set();
  let cycles = 0;
  let stopped = false;
  let timer;
  const entry = (path) => (tally.byPath[path] ??= { requests: 0, statuses: {}, contentTypes: {}, bytes: 0, ms: [] });
  const scrape = (path, timeoutMs) => {
    const t0 = performance.now();
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, headers: { 'User-Agent': alloy.userAgent }, timeout: timeoutMs }, (res) => {
      let bytes = 0;
      res.on('data', (chunk) => (bytes += chunk.length));
      res.on('end', () => {
        inFlight.delete(req);
        const e = entry(path);
        e.requests++;
        e.statuses[res.statusCode] = (e.statuses[res.statusCode] ?? 0) + 1;
        const type = res.headers['content-type'] ?? '';
        e.contentTypes[type] = (e.contentTypes[type] ?? 0) + 1;
        e.bytes += bytes;
        e.ms.push(performance.now() - t0);
      });
    });
    inFlight.add(req);
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', (error) => {
      inFlight.delete(req);
      if (!stopped && tally.errors.length < 20) tally.errors.push(`${path}: ${error.message}`);
    });
  };
  const tick = () => {
    if (stopped) return;
    cycles++;
    tally.cycles++;
    for (const path of alloy.paths) scrape(path, alloy.timeoutMs);
    scrape(alloy.cpuPath, alloy.cpuTimeoutMs);
    timer = setTimeout(tick, started + cycles * alloy.intervalMs - performance.now());
  };
  tick();
  return {
    stop() {
      // Requests still open (the CPU profile, mostly) are dropped: the child is about to exit.
      stopped = true;
      clearTimeout(timer);
      for (const req of inFlight) req.destroy();
    },
  };
}

export function scrapeSummary(tally) {
  if (!tally) return undefined;
  const byPath = {};
  for (const [path, e] of Object.entries(tally.byPath)) {
    byPath[path] = { requests: e.requests, statuses: e.statuses, contentTypes: e.contentTypes, meanBytes: Math.round(e.bytes / Math.max(1, e.requests)), medianMs: e.ms.length ? median(e.ms) : undefined, maxMs: e.ms.length ? Math.max(...e.ms) : undefined };
  }
  return { cycles: tally.cycles, byPath, errors: tally.errors };
}
