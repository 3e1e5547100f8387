// The growth detector at its default settings, in real time: how long until
// it flags each of the demo's two leaks under steady load, and whether it
// ever flags anything in the healthy app under the same load.
//
//   npm run build && node bench/leak-detection.mjs [--minutes 10] [--rate 100] [--tracking sampled,full]
//
// For each tracking mode, two app processes (test/fixtures/growth-apps.mjs):
// the leaky one (healthy routes plus /users/:id, which leaks a TtlCache
// interval per request, and /report, which awaits a promise nobody resolves)
// and the healthy one. Each gets --rate requests a second, spread evenly over
// its paths; /leaks is read every 10 s. Results: a markdown table on stdout
// and bench/results/leak-detection.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startGrowthApp, steadyLoad, healthyPaths, leakyPaths } from '../test/fixtures/growth-apps.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '100' },
    tracking: { type: 'string', default: 'sampled,full' },
  },
});
const minutes = Number(values.minutes);
const rate = Number(values.rate);
const modes = values.tracking.split(',');
const pollMs = 10_000;

const isTimerLeak = (s) => s.type === 'Timeout' && s.stack.some((f) => f.file.endsWith('ttl-cache.mjs'));
// The promise nobody resolves, and the /report handler awaiting it (its own promise never settles either).
const isPromiseLeak = (s) => s.type === 'Promise' && s.labels.route === '/report';

async function runMode(tracking) {
  const leaky = await startGrowthApp({ leaky: true, options: { tracking } });
  const healthy = await startGrowthApp({ leaky: false, options: { tracking } });
  const stops = [steadyLoad(leaky.base, [...healthyPaths, ...leakyPaths], rate), steadyLoad(healthy.base, healthyPaths, rate)];
  const started = Date.now();
  const result = { tracking, timerFlaggedAfterS: null, promiseFlaggedAfterS: null, otherFlaggedInLeakyApp: [], flaggedInHealthyApp: [], samples: 0, listings: [] };
  try {
    while (Date.now() - started < minutes * 60_000) {
      await new Promise((resolve) => setTimeout(resolve, pollMs));
      const elapsedS = Math.round((Date.now() - started) / 1000);
      const leaks = await (await fetch(`${leaky.base}/debug/pprof/leaks?format=json`)).json();
      const calm = await (await fetch(`${healthy.base}/debug/pprof/leaks?format=json`)).json();
      result.samples = calm.samples;
      if (result.timerFlaggedAfterS === null && leaks.suspects.some(isTimerLeak)) result.timerFlaggedAfterS = elapsedS;
      if (result.promiseFlaggedAfterS === null && leaks.suspects.some(isPromiseLeak)) result.promiseFlaggedAfterS = elapsedS;
      for (const s of leaks.suspects) {
        if (!isTimerLeak(s) && !isPromiseLeak(s)) result.otherFlaggedInLeakyApp.push({ atS: elapsedS, type: s.type, labels: s.labels, top: s.stack[0] });
      }
      for (const s of calm.suspects) result.flaggedInHealthyApp.push({ atS: elapsedS, type: s.type, labels: s.labels, top: s.stack[0] });
      // What the leaky app's listing shows: how many tasks have no stack,
      // how many of those no estimate could place, and the stack budget.
      const listing = await (await fetch(`${leaky.base}/debug/pprof/tasks?debug=1&format=json`)).json();
      const vars = await (await fetch(`${leaky.base}/debug/vars`)).json();
      const unplaced = listing.groups.filter((g) => g.stack.length === 0 && g.type !== 'Immediate');
      result.listings.push({
        atS: elapsedS,
        total: listing.total,
        withoutStack: listing.withoutStack,
        unplaced: unplaced.reduce((n, g) => n + g.count, 0),
        leakedIntervalsAtLine: listing.groups.filter(isTimerLeak).reduce((n, g) => n + g.count, 0),
        reportPromisesAtLines: listing.groups.filter((g) => isPromiseLeak(g) && g.stack.length > 0).reduce((n, g) => n + g.count, 0),
        stackBudget: vars.tasks.stackBudget,
      });
      console.error(`[${tracking}] ${elapsedS}s: leaky app ${leaks.suspects.length} suspects, healthy app ${calm.suspects.length}`);
    }
  } finally {
    stops.forEach((stop) => stop());
    await leaky.close();
    await healthy.close();
  }
  return result;
}

const results = await Promise.all(modes.map(runMode));
const date = new Date().toISOString().slice(0, 10);
let table = `Leak detection at the default settings (interval 10 s, window 30 min, minSamples 12, minGrowth 10), ${date}, Node ${process.version}\n`;
table += `Load: ${rate} requests/s per app, spread evenly over its paths (${healthyPaths.length + leakyPaths.length} in the leaky app, so ${(rate / (healthyPaths.length + leakyPaths.length)).toFixed(1)}/s per leak); ${minutes} minutes.\n\n`;
table += '| tracking | interval leak flagged after | promise leak flagged after | false alarms, leaky app | false alarms, healthy app |\n|---|---:|---:|---:|---:|\n';
for (const r of results) {
  const at = (s) => (s === null ? `not in ${minutes} min` : `${s} s`);
  table += `| ${r.tracking} | ${at(r.timerFlaggedAfterS)} | ${at(r.promiseFlaggedAfterS)} | ${r.otherFlaggedInLeakyApp.length} | ${r.flaggedInHealthyApp.length} |\n`;
}
table += '\nThe leaky app\'s listing (`tasks?debug=1`) during the run: live tasks, those without a stack, those no estimate placed (listed with no line), the leaks at their lines, and the stack budget.\n\n';
table += '| tracking | at | live | without a stack | placed nowhere | leaked intervals at their line | /report promises at their lines | stacks captured | ms | per class a second |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n';
for (const r of results) {
  for (const l of r.listings.filter((_, i, all) => i === 1 || i === 5 || i === all.length - 1)) {
    const b = l.stackBudget;
    table += `| ${r.tracking} | ${l.atS} s | ${l.total} | ${l.withoutStack} | ${l.unplaced} | ${l.leakedIntervalsAtLine} | ${l.reportPromisesAtLines} | ${b?.captures ?? '—'} | ${b?.captureMs?.toFixed(0) ?? '—'} | ${b?.stacksPerClass ?? 'all'} |\n`;
  }
}
console.log(table);
mkdirSync(path.join(here, 'results'), { recursive: true });
writeFileSync(path.join(here, 'results', 'leak-detection.json'), JSON.stringify({ date, node: process.version, rate, minutes, results }, null, 2) + '\n');
writeFileSync(path.join(here, 'results', 'leak-detection.md'), table);
