// Overhead per request in instructions: the same servers as bench/overhead.mjs,
// each run under valgrind's callgrind, which counts the instructions the
// server executes. Other tenants of the machine change how long an
// instruction takes, not how many there are, so this resolves differences
// that CPU time on a noisy VM cannot (it is not time: a cache miss counts as
// one instruction, and JIT code runs under valgrind's translation).
//
//   npm run build && node bench/instructions.mjs [--framework fastify|express]
//       [--app hello|realistic] [--variants counts,sampled] [--warmup 15000]
//       [--requests 3000] [--reps 3] [--parallel 2]
//
// Method:
// - One fresh server process per (variant, rep): `node --single-threaded
//   --hash-seed=1 --random-seed=1 --expose-gc bench/overhead.mjs --child`
//   under `valgrind --tool=callgrind --instr-atstart=no`. After --warmup
//   requests the server runs a full collection, serves 2,000 more (a
//   collection resets inline caches), and only then is counting turned on,
//   for --requests requests (keep-alive, 4 in flight); the total is divided
//   by them. With V8's compiler and collector on background threads, random
//   seeds and no collection before the window, processes of one variant
//   differed by 5 to 10% (a major collection fell inside the window or not);
//   this way `none` repeats within 0.1%, and a variant now and then shows
//   one collection more (reported as its max).
// - What it overweights: under valgrind a request takes some 50 times
//   longer, so work done per second (the growth detector's sample every
//   10 s, the tracker's 100 ms tick, the stack budget's guaranteed stacks
//   per second) lands on 50 times fewer requests than in real time. The
//   `/nodetect` variants leave the detector out for that reason; `sampled`
//   with stacks is overstated (its guarantee of 64 stacks a second per
//   class is a few per request here, one per 250 requests at full speed).
//   About half of the counted instructions are V8's optimizing compiler,
//   still at work after this warm-up in every variant.
// - Medians over --reps processes per variant; the overhead is the ratio of
//   medians to `none`, with the spread between processes.
import { spawn, execFileSync } from 'node:child_process';
import http from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    framework: { type: 'string', default: 'fastify' },
    app: { type: 'string', default: 'hello' },
    variants: { type: 'string', default: 'counts,sampled' },
    warmup: { type: 'string', default: '15000' },
    requests: { type: 'string', default: '3000' },
    reps: { type: 'string', default: '3' },
    parallel: { type: 'string', default: '2' },
  },
});
const variants = ['none', ...values.variants.split(',').filter((v) => v && v !== 'none')];
const warmup = Number(values.warmup);
const requests = Number(values.requests);
const reps = Number(values.reps);

try {
  execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
} catch {
  console.error('valgrind is not installed: apt-get install valgrind');
  process.exit(2);
}

function drive(port, total) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  let sent = 0;
  const one = () =>
    new Promise((resolve, reject) => {
      http
        .get({ agent, port, host: '127.0.0.1', path: '/' }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
        })
        .on('error', reject);
    });
  return Promise.all(Array.from({ length: 4 }, async () => {
    while (sent < total) {
      sent++;
      await one();
    }
  })).finally(() => agent.destroy());
}

async function measure(variant) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'taskprof-cg-'));
  const proc = spawn(
    'valgrind',
    ['--tool=callgrind', '--instr-atstart=no', '--smc-check=all-non-file', `--callgrind-out-file=${dir}/cg.%p`, process.execPath, '--single-threaded', '--hash-seed=1', '--random-seed=1', '--expose-gc', path.join(here, 'overhead.mjs'), '--child', values.framework, variant, values.app],
    { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] },
  );
  let stderr = '';
  proc.stderr.on('data', (chunk) => (stderr += chunk));
  try {
    const port = await new Promise((resolve, reject) => {
      proc.on('message', (message) => message.type === 'ready' && resolve(message.port));
      proc.on('exit', (code) => reject(new Error(`${variant}: exited ${code}\n${stderr.slice(-2000)}`)));
    });
    await drive(port, warmup);
    await new Promise((resolve) => {
      proc.on('message', (message) => message.id === 'gc' && resolve());
      proc.send({ type: 'gc', id: 'gc' });
    });
    // A full collection resets inline caches and may flush code: warm again.
    await drive(port, 2000);
    execFileSync('callgrind_control', ['-i', 'on', String(proc.pid)], { stdio: 'ignore' });
    await drive(port, requests);
    execFileSync('callgrind_control', ['-i', 'off', String(proc.pid)], { stdio: 'ignore' });
    execFileSync('callgrind_control', ['-d', String(proc.pid)], { stdio: 'ignore' });
    let total = 0;
    for (const file of readdirSync(dir)) total += Number(readFileSync(path.join(dir, file), 'utf8').match(/^totals: (\d+)/m)?.[1] ?? 0);
    return total / requests;
  } finally {
    proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (list) => {
  const sorted = [...list].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const jobs = [];
for (let rep = 0; rep < reps; rep++) for (const variant of variants) jobs.push(variant);
const results = Object.fromEntries(variants.map((v) => [v, []]));
const started = Date.now();
await Promise.all(
  Array.from({ length: Number(values.parallel) }, async () => {
    while (jobs.length > 0) {
      const variant = jobs.shift();
      const perRequest = await measure(variant);
      results[variant].push(perRequest);
      console.error(`[${values.framework}/${values.app}] ${variant}: ${Math.round(perRequest)} instructions/request`);
    }
  }),
);

const base = median(results.none);
const lines = [
  `# Instructions per request (callgrind), ${values.framework}, ${values.app}`,
  '',
  `${new Date().toISOString().slice(0, 10)}, Node ${process.version}; ${reps} processes per variant, ${warmup} warm-up requests, ${requests} counted; ${Math.round((Date.now() - started) / 1000)} s.`,
  '',
  '| variant | instructions/request (median) | min – max | overhead |',
  '|---|---:|---:|---:|',
];
for (const variant of variants) {
  const list = results[variant];
  const m = median(list);
  const overhead = variant === 'none' ? '—' : `${m >= base ? '+' : ''}${(((m - base) / base) * 100).toFixed(1)}%`;
  lines.push(`| ${variant} | ${Math.round(m)} | ${Math.round(Math.min(...list))} – ${Math.round(Math.max(...list))} | ${overhead} |`);
}
const text = lines.join('\n') + '\n';
process.stdout.write(text);
mkdirSync(path.join(here, 'results'), { recursive: true });
const name = `instructions-${values.framework}-${values.app}`;
writeFileSync(path.join(here, 'results', `${name}.md`), text);
writeFileSync(path.join(here, 'results', `${name}.json`), JSON.stringify({ date: new Date().toISOString(), node: process.version, warmup, requests, reps, results }, null, 2) + '\n');
