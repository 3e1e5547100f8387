// Memory a heap snapshot costs through taskprof, beyond what V8's own costs.
//
//   npm run build && node bench/heapsnapshot.mjs [--objects 750000] [--strings 75000]
//       [--rounds 2] [--variants v8-file,v8-stream,fast,slow,stream-fast,stream-slow] [--timeout SECONDS]
//   node bench/heapsnapshot.mjs --render    # the tables again from bench/results/heapsnapshot.json
//
// Goal (issue): a heap snapshot's extra memory beyond V8's own is at most 10 MB
// (it is streamed).
//
// Method, and why:
// - Each measurement is a fresh server process (node --expose-gc, plain
//   node:http with taskprof/http mounted with heapSnapshot: true) holding the
//   same heap: --objects small objects (an id, a short string, a number) and
//   --strings distinct 1,000-character strings. A fresh process for each, so
//   that memory freed by one snapshot (which the allocator may keep) does not
//   lower the peak of the next.
// - Resident memory is read by the parent, from /proc/<pid>/status: VmRSS
//   every 2 ms, and VmHWM (the kernel's own peak, reset first by writing 5 to
//   /proc/<pid>/clear_refs, so that nothing between samples is missed). The
//   server cannot sample itself: V8 takes and writes the snapshot
//   synchronously, with the event loop held.
// - Variants:
//   v8-file:   v8.writeHeapSnapshot() to a file in os.tmpdir() (V8's own cost; what taskprof does before streaming)
//   v8-stream: v8.getHeapSnapshot() piped to a stream that discards the data (V8's other API, for comparison)
//   fast:      GET /debug/pprof/heapsnapshot read by a client that discards the data as fast as it comes
//   slow:      the same read by a client that takes at most 64 KB every 10 ms (back-pressure)
//   stream-fast, stream-slow: the same two, with v8.writeHeapSnapshot replaced
//              in the server by a copy of a snapshot file written earlier by
//              another process of the same heap. taskprof's own code path
//              (handler, file stream, response) runs unchanged, but without the
//              memory V8 frees just before, which the allocator keeps and the
//              stream's buffers then reuse: that hides the stream's own cost
//              in the RSS of `fast` and `slow`. These show it.
//   For the HTTP variants the peak is also split at the moment the response
//   headers arrive: before, V8 writes the snapshot to its file (taskprof's
//   handler calls v8.writeHeapSnapshot); after, taskprof streams the file. The
//   server samples process.memoryUsage() every 5 ms during the stream (its
//   event loop is free then): `external` (which includes every Buffer) is where stream buffers live.
// - Reported: the rise of the peak RSS over the RSS just before (after gc),
//   the snapshot size, the durations; "extra beyond V8's own" is the fast and
//   slow figures minus v8-file's, medians over --rounds.
//
// Results: a markdown table on stdout and bench/results/heapsnapshot.md, raw
// data in bench/results/heapsnapshot.json.
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Writable, pipeline } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { canPin, forkServer, pinToCpu, provenance, readSlowly, rssWatch } from './harness.mjs';
import v8 from 'node:v8';
import { snapshotMemoryFactor } from '../dist/src/profiles/heapsnapshot.js';

const here = path.dirname(fileURLToPath(import.meta.url));

const VARIANTS = ['v8-file', 'v8-stream', 'fast', 'slow', 'stream-fast', 'stream-slow'];

// ---------------------------------------------------------------------------
// Child: one server, one heap. Talks to the parent over IPC only.

async function child(objects, strings, snapshotFile, streamOnly) {
  process.on('disconnect', () => process.exit(0));
  if (streamOnly) {
    // taskprof's handler calls v8.writeHeapSnapshot(file): give it a copy of a snapshot taken earlier.
    v8.writeHeapSnapshot = (target) => {
      copyFileSync(snapshotFile, target);
      return target;
    };
  }
  const { default: taskprof } = await import('taskprof/http');
  const debug = taskprof({ heapSnapshot: true });
  // The response being written, so that the sampler can read what is queued in it.
  let current;
  const server = http.createServer((req, res) => {
    current = res;
    debug(req, res, () => res.end('ok\n'));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));

  // The app's heap: many small objects, and some longer strings.
  const keep = [];
  globalThis.keep = keep;
  for (let i = 0; i < objects; i++) keep.push({ id: i, name: `item-${i}`, score: (i % 97) * 1.5 });
  for (let i = 0; i < strings; i++) keep.push(randomBytes(500).toString('hex'));

  const gcHeap = async () => {
    for (let i = 0; i < 3; i++) {
      global.gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
    return process.memoryUsage();
  };

  // Stream buffers count in `external` (arrayBuffers is a part of it); sampled while the loop is free.
  let sampler;
  const startSampler = () => {
    const base = process.memoryUsage();
    const state = { base, peakExternal: 0, peakHeapUsed: base.heapUsed, samples: 0, last: undefined, drops: 0, dropped: 0, peakQueued: 0 };
    state.timer = setInterval(() => {
      // Bytes written but not yet taken by the kernel: the response's and its socket's buffers.
      if (current !== undefined) state.peakQueued = Math.max(state.peakQueued, current.writableLength + (current.socket?.writableLength ?? 0));
      const m = process.memoryUsage();
      const external = m.external;
      state.samples++;
      state.peakExternal = Math.max(state.peakExternal, external);
      state.peakHeapUsed = Math.max(state.peakHeapUsed, m.heapUsed);
      // A fall of more than 1 MiB between two samples: a GC freed buffers no longer used.
      if (state.last !== undefined && state.last - external > 1024 * 1024) {
        state.drops++;
        state.dropped += state.last - external;
      }
      state.last = external;
    }, 5);
    sampler = state;
  };
  const stopSampler = () => {
    if (sampler === undefined) return undefined;
    clearInterval(sampler.timer);
    const s = sampler;
    sampler = undefined;
    return {
      samples: s.samples,
      externalRise: s.samples > 0 ? s.peakExternal - s.base.external : 0,
      peakQueued: s.peakQueued,
      externalDrops: s.drops,
      externalDropped: s.dropped,
      heapUsedRise: s.peakHeapUsed - s.base.heapUsed,
    };
  };

  process.on('message', async (message) => {
    const reply = (data) => process.send({ id: message.id, ...data });
    switch (message.type) {
      case 'gc':
        return reply({ memory: await gcHeap(), heap: v8.getHeapStatistics() });
      case 'v8-file': {
        const dir = mkdtempSync(path.join(os.tmpdir(), 'taskprof-bench-'));
        try {
          const started = performance.now();
          const file = v8.writeHeapSnapshot(path.join(dir, 'heap.heapsnapshot'));
          const ms = performance.now() - started;
          return reply({ ms, bytes: statSync(file).size });
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }
      case 'keep': {
        // The snapshot the stream-only variants serve.
        const started = performance.now();
        v8.writeHeapSnapshot(snapshotFile);
        return reply({ ms: performance.now() - started, bytes: statSync(snapshotFile).size });
      }
      case 'v8-stream': {
        const started = performance.now();
        const snapshot = v8.getHeapSnapshot();
        const takenMs = performance.now() - started;
        let bytes = 0;
        const sink = new Writable({
          write(chunk, encoding, callback) {
            bytes += chunk.length;
            callback();
          },
        });
        pipeline(snapshot, sink, (error) => {
          if (error) return reply({ error: error.message });
          reply({ ms: performance.now() - started, takenMs, bytes });
        });
        return;
      }
      case 'sample-start':
        startSampler();
        return reply({});
      case 'sample-stop':
        return reply({ sample: stopSampler() });
      case 'exit':
        process.exit(0);
    }
  });
  const memory = await gcHeap();
  process.send({ type: 'ready', port: server.address().port, memory, heap: v8.getHeapStatistics() });
}

// ---------------------------------------------------------------------------
// Parent.

const children = new Set();
function killChildren() {
  for (const proc of children) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
}

const median = (values) => {
  const sorted = values.filter((v) => typeof v === 'number' && !Number.isNaN(v)).sort((a, b) => a - b);
  const n = sorted.length;
  return n === 0 ? undefined : n % 2 ? sorted[n >> 1] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
};



function startServer(settings, streamOnly = false) {
  return forkServer({
    script: fileURLToPath(import.meta.url),
    args: ['--child', String(settings.objects), String(settings.strings), settings.snapshotFile, streamOnly ? 'stream-only' : 'real'],
    execArgv: ['--expose-gc', '--max-old-space-size=8192'],
    label: 'server',
    children,
    cpu: 0,
    readyTimeoutMs: 120_000,
    stopTimeoutMs: 5000,
  });
}

// GET the snapshot, discarding it; `slow` takes at most 64 KB every 10 ms.
// `onHeaders` runs when the response headers arrive.
function getSnapshot(port, slow, onHeaders) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const agent = new http.Agent({ keepAlive: false });
    http
      .get({ host: '127.0.0.1', port, path: '/debug/pprof/heapsnapshot', agent }, (res) => {
        const headersMs = performance.now() - started;
        onHeaders();
        let bytes = 0;
        let timer;
        if (slow) {
          timer = readSlowly(res, (chunk) => {
            bytes += chunk.length;
          });
        } else {
          res.on('data', (chunk) => (bytes += chunk.length));
        }
        res.on('end', () => {
          clearInterval(timer);
          agent.destroy();
          if (res.statusCode !== 200) return reject(new Error(`heapsnapshot: HTTP ${res.statusCode}`));
          resolve({ ms: performance.now() - started, headersMs, bytes, chunked: res.headers['transfer-encoding'] === 'chunked', contentType: res.headers['content-type'] });
        });
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

async function measure(variant, settings) {
  const server = await startServer(settings, variant.startsWith('stream-'));
  try {
    // Let the mount's start-up settle, then the RSS just before.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const before = await server.ask('gc');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const watch = rssWatch(server.pid);
    const row = {
      variant,
      heapUsed: before.memory.heapUsed,
      heapTotal: before.memory.heapTotal,
      startRss: watch.startRss,
      hwmReset: watch.hwmReset,
    };
    if (variant === 'v8-file' || variant === 'v8-stream') {
      const result = await server.ask(variant);
      if (result.error) throw new Error(`${variant}: ${result.error}`);
      const end = watch.stop();
      Object.assign(row, { ms: result.ms, takenMs: result.takenMs, bytes: result.bytes, peakRss: end.peakRss, sampledPeakRss: end.sampledPeakRss, rssAfter: end.rss, samples: end.samples });
    } else {
      await server.ask('sample-start');
      let writing;
      const result = await getSnapshot(server.port, variant.endsWith('slow'), () => {
        writing = watch.phase();
      });
      const streaming = watch.stop();
      const { sample } = await server.ask('sample-stop');
      Object.assign(row, {
        ms: result.ms,
        headersMs: result.headersMs,
        bytes: result.bytes,
        chunked: result.chunked,
        contentType: result.contentType,
        peakRss: Math.max(writing.peakRss, streaming.peakRss),
        sampledPeakRss: Math.max(writing.sampledPeakRss, streaming.sampledPeakRss),
        // Until the headers: V8 writing the snapshot file inside taskprof's handler.
        writingPeakRss: writing.peakRss,
        rssAtHeaders: writing.nextStartRss,
        // After: taskprof streaming the file.
        streamingPeakRss: streaming.peakRss,
        streamingRise: streaming.peakRss - writing.nextStartRss,
        rssAfter: streaming.rss,
        samples: writing.samples + streaming.samples,
        serverSamples: sample?.samples,
        serverExternalRise: sample?.externalRise,
        serverPeakQueued: sample?.peakQueued,
        serverExternalDrops: sample?.externalDrops,
        serverExternalDropped: sample?.externalDropped,
        serverHeapUsedRise: sample?.heapUsedRise,
      });
    }
    row.peakRise = row.peakRss - row.startRss;
    row.sampledPeakRise = row.sampledPeakRss - row.startRss;
    return row;
  } finally {
    await server.stop();
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      objects: { type: 'string', default: '750000' },
      strings: { type: 'string', default: '75000' },
      rounds: { type: 'string', default: '2' },
      variants: { type: 'string', default: VARIANTS.join(',') },
      timeout: { type: 'string', default: '900' },
    },
  });
  const snapshotDir = mkdtempSync(path.join(os.tmpdir(), 'taskprof-bench-'));
  const settings = { objects: Number(values.objects), strings: Number(values.strings), rounds: Number(values.rounds), snapshotFile: path.join(snapshotDir, 'kept.heapsnapshot') };
  const variants = values.variants.split(',');
  for (const v of variants) if (!VARIANTS.includes(v)) throw new Error(`unknown variant ${v}; known: ${VARIANTS.join(', ')}`);
  setTimeout(() => {
    console.error(`heapsnapshot bench: watchdog after ${values.timeout} s; killing the servers`);
    killChildren();
    process.exit(2);
  }, Number(values.timeout) * 1000).unref();
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => { killChildren(); process.exit(130); });
  process.on('exit', () => {
    killChildren();
    rmSync(snapshotDir, { recursive: true, force: true });
  });
  pinToCpu(process.pid, 1);

  const startedAt = Date.now();
  const build = provenance();
  if (variants.some((v) => v.startsWith('stream-'))) {
    const server = await startServer(settings);
    try {
      const kept = await server.ask('keep');
      console.error(`snapshot for the stream-only variants: ${kept.bytes} bytes in ${kept.ms.toFixed(0)} ms`);
    } finally {
      await server.stop();
    }
  }
  const all = [];
  for (let round = 0; round < settings.rounds; round++) {
    for (const variant of variants) {
      const row = await measure(variant, settings);
      row.round = round + 1;
      all.push(row);
      console.error(JSON.stringify(row));
    }
  }
  const buildAtEnd = provenance();
  const rebuilt = buildAtEnd.distBuilt !== build.distBuilt || buildAtEnd.commit !== build.commit;
  const meta = { date: new Date().toISOString().slice(0, 10), node: process.version, build, rebuiltDuringRun: rebuilt, buildAtEnd, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model.trim(), tmpdir: os.tmpdir(), runSeconds: (Date.now() - startedAt) / 1000 };
  const { snapshotFile, ...kept } = settings;
  report({ ...meta, settings: kept, variants, measurements: all });
}

// The tables, from the measurements (also `--render`: again from bench/results/heapsnapshot.json).
function report(data) {
  const { settings, variants, measurements: all } = data;
  const pick = (variant, key) => median(all.filter((r) => r.variant === variant).map((r) => r[key]));
  const summary = {};
  for (const variant of variants) {
    const rows = all.filter((r) => r.variant === variant);
    summary[variant] = {};
    for (const key of Object.keys(rows[0])) if (typeof rows[0][key] === 'number') summary[variant][key] = pick(variant, key);
    if (rows[0].writingPeakRss !== undefined) {
      summary[variant].writingRise = median(rows.map((r) => r.writingPeakRss - r.startRss));
      summary[variant].streamingPeakRise = median(rows.map((r) => r.streamingPeakRss - r.startRss));
      // How far streaming raised the peak above what V8 had already reached in the same process.
      summary[variant].streamingAboveWriting = median(rows.map((r) => Math.max(0, r.streamingPeakRss - r.writingPeakRss)));
    }
  }
  const v8own = summary['v8-file'];
  for (const variant of ['fast', 'slow']) {
    if (summary[variant] && v8own) summary[variant].extraBeyondV8 = summary[variant].peakRise - v8own.peakRise;
  }

  const mb = (v) => (v === undefined || Number.isNaN(v) ? '' : (v / 1024 / 1024).toFixed(1) + ' MiB');
  const sec = (v) => (v === undefined ? '' : (v / 1000).toFixed(2) + ' s');
  const heapUsed = median(all.map((r) => r.heapUsed));
  const startRss = median(all.map((r) => r.startRss));
  let out = `Heap snapshot memory, ${data.date}, Node ${data.node}, ${data.cpus} × ${data.cpuModel}, tmpdir ${data.tmpdir}.\n`;
  if (data.build) {
    out += `Commit ${data.build.commit}, dist/ built ${data.build.distBuilt}${data.rebuiltDuringRun ? ` — WARNING: dist/ was rebuilt during the run (now ${data.buildAtEnd.commit}, ${data.buildAtEnd.distBuilt}); the figures may mix versions` : ''}.\n`;
  }
  out += `Heap: ${settings.objects.toLocaleString('en-US')} small objects and ${settings.strings.toLocaleString('en-US')} strings of 1,000 characters; heapUsed after gc ${mb(heapUsed)}, RSS ${mb(startRss)}. A fresh server process per measurement; medians over ${settings.rounds} rounds. Peak RSS from /proc/<pid>/status (VmHWM reset through clear_refs${all.every((r) => r.hwmReset) ? '' : ' — NOT available here, 2 ms samples only'}, and VmRSS every 2 ms), as a rise over the RSS just before the request.\n\n`;
  out += '| variant | snapshot size | duration (to headers) | peak RSS rise | extra beyond V8\'s own: minus v8-file\'s peak rise | peak rise while V8 writes (to headers) | peak rise while streaming | streaming above the writing peak, same process | server `external` rise while streaming (Buffers included) | most bytes queued in the response and socket |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n';
  const names = {
    'v8-file': '(a) V8: v8.writeHeapSnapshot() to a file',
    'v8-stream': 'V8: v8.getHeapSnapshot() piped to a discarding stream',
    fast: '(b) taskprof endpoint, fast client',
    slow: '(c) taskprof endpoint, slow client (64 KB / 10 ms)',
    'stream-fast': 'taskprof endpoint, V8 replaced by a file copy (streaming alone), fast client',
    'stream-slow': 'taskprof endpoint, V8 replaced by a file copy (streaming alone), slow client',
  };
  for (const variant of variants) {
    const s = summary[variant];
    const duration = s.headersMs !== undefined ? `${sec(s.ms)} (${sec(s.headersMs)})` : sec(s.ms);
    const extra = s.extraBeyondV8 !== undefined ? mb(s.extraBeyondV8) : variant === 'v8-file' ? '(reference)' : variant.startsWith('stream-') ? 'no V8 snapshot' : mb(s.peakRise - (v8own?.peakRise ?? NaN));
    const cells = [
      names[variant],
      mb(s.bytes),
      duration,
      mb(s.peakRise),
      extra,
      mb(s.writingRise),
      mb(s.streamingPeakRise),
      mb(s.streamingAboveWriting),
      mb(s.serverExternalRise),
      s.serverPeakQueued !== undefined ? (s.serverPeakQueued / 1024).toFixed(0) + ' KiB' : '',
    ];
    out += `| ${cells.join(' | ')} |\n`;
  }
  const streamed = variants.filter((v) => summary[v].serverExternalRise !== undefined);
  if (streamed.length > 0) {
    out += `\nWhile streaming, the server's \`external\` memory (5 ms samples) fell by more than 1 MiB between two samples ${streamed.map((v) => `${median(all.filter((r) => r.variant === v).map((r) => r.serverExternalDrops))} times (${mb(median(all.filter((r) => r.variant === v).map((r) => r.serverExternalDropped)))} in all) for ${v}`).join(', ')}: read buffers already written, freed only when a GC runs; at most ${(Math.max(...streamed.map((v) => summary[v].serverPeakQueued)) / 1024).toFixed(0)} KiB was ever queued unwritten.\n`;
  }
  if (v8own) {
    out += `\ntaskprof refuses a snapshot (507) when less than ${snapshotMemoryFactor} × the used heap is available: ${mb(snapshotMemoryFactor * v8own.heapUsed)} here; V8's own peak rise was ${mb(v8own.peakRise)} (${(v8own.peakRise / v8own.heapUsed).toFixed(1)} × the used heap).\n`;
  }
  out += `\nPer measurement (peak RSS rise; the 2 ms samples alone in brackets):\n\n`;
  for (const r of all) {
    const phases = r.writingPeakRss !== undefined ? `; while V8 writes ${mb(r.writingPeakRss - r.startRss)}, RSS at headers ${mb(r.rssAtHeaders - r.startRss)}, while streaming ${mb(r.streamingPeakRss - r.startRss)}` : '';
    out += `- round ${r.round}, ${r.variant}: ${mb(r.peakRise)} (${mb(r.sampledPeakRise)})${phases}; ${sec(r.ms)}\n`;
  }
  out += `\nRun time ${data.runSeconds.toFixed(0)} s. Raw: bench/results/heapsnapshot.json.\n`;
  console.log(out);
  mkdirSync(path.join(here, 'results'), { recursive: true });
  writeFileSync(path.join(here, 'results', 'heapsnapshot.md'), out);
  writeFileSync(path.join(here, 'results', 'heapsnapshot.json'), JSON.stringify({ ...data, summary }, null, 2) + '\n');
}

if (process.argv[2] === '--child') {
  await child(Number(process.argv[3]), Number(process.argv[4]), process.argv[5], process.argv[6] === 'stream-only');
} else if (process.argv[2] === '--render') {
  const { summary, ...data } = JSON.parse(readFileSync(path.join(here, 'results', 'heapsnapshot.json'), 'utf8'));
  report(data);
} else {
  try {
    await main();
  } catch (error) {
    console.error(error);
    killChildren();
    process.exit(1);
  }
}
