// Shared test helpers: where a marker sits in a fixture, a real GC, polling.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import zlib from 'node:zlib';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { Readable } from 'node:stream';
import { Profile } from 'pprof-format';

export const fixturesDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

/** `file:line:column` (relative to cwd, as text listings show it) of `callee` on the line holding `marker`. */
export function sourcePosition(file, marker, callee) {
  const lines = readFileSync(file, 'utf8').split('\n');
  const index = lines.findIndex((l) => l.includes(marker));
  if (index === -1) throw new Error(`marker ${marker} not in ${file}`);
  const column = lines[index].indexOf(callee);
  if (column === -1) throw new Error(`${callee} not on the marker line in ${file}`);
  return `${path.relative(process.cwd(), file)}:${index + 1}:${column + 1}`;
}

v8.setFlagsFromString('--expose-gc');
const gcFunction = vm.runInNewContext('gc');

/** A full garbage collection, then a turn for FinalizationRegistry callbacks. */
export async function collectGarbage() {
  for (let i = 0; i < 3; i++) {
    gcFunction();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Groups of a debug=1 text listing: [{ count, head, frames: [position...] }]. */
export function parseGroups(text) {
  const groups = [];
  for (const block of text.split('\n\n').slice(0)) {
    const lines = block.split('\n').filter(Boolean);
    const headIndex = lines.findIndex((l) => /^\d+ @ /.test(l));
    if (headIndex === -1) continue;
    const head = lines[headIndex];
    const body = lines.slice(headIndex + 1);
    const positions = (part) => part.filter((l) => l.startsWith('#\t')).map((l) => l.split('\t')[2]);
    // A group of flows lists where they are parked, then where they started.
    const parkedAt = body.indexOf('# parked at');
    const startedAt = body.indexOf('# started at');
    groups.push({
      count: Number(head.split(' ')[0]),
      head,
      frames: positions(body),
      functions: body.filter((l) => l.startsWith('#\t')).map((l) => l.split('\t')[1]),
      parked: parkedAt < 0 ? [] : positions(body.slice(parkedAt, startedAt)),
      started: startedAt < 0 ? [] : positions(body.slice(startedAt)),
    });
  }
  return groups;
}

/** Polls `check` until it returns a truthy value or `ms` pass. */
export async function eventually(check, ms = 2000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A gzipped profile.proto body: the profile, its sample types, comments and each sample's stack (leaf first). */
export function decodePprof(body) {
  const profile = Profile.decode(zlib.gunzipSync(body));
  const str = (i) => profile.stringTable.strings[Number(i)];
  const fn = (id) => profile.function.find((f) => Number(f.id) === Number(id));
  const loc = (id) => profile.location.find((l) => Number(l.id) === Number(id));
  const stack = (sample) => sample.locationId.map((id) => fn(loc(id).line[0].functionId)).map((f) => ({ name: str(f.name), file: str(f.filename) }));
  return {
    profile,
    str,
    stack,
    types: profile.sampleType.map((t) => `${str(t.type)}/${str(t.unit)}`),
    periodType: `${str(profile.periodType?.type)}/${str(profile.periodType?.unit)}`,
    comments: profile.comment.map(str),
  };
}

/** supertest parser that keeps a binary body as a Buffer. */
export function binaryParser(res, callback) {
  const chunks = [];
  res.on('data', (c) => chunks.push(c));
  res.on('end', () => callback(null, Buffer.concat(chunks)));
}

/**
 * Decodes an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium's
 * --screenshot writes) into { width, height, channels, pixels }.
 */
export function decodePng(buffer) {
  const { inflateSync } = zlib;
  if (buffer.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG');
  let offset = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat = [];
  while (offset < buffer.length) {
    const length = buffer.readUInt32BE(offset);
    const type = buffer.toString('ascii', offset + 4, offset + 8);
    const data = buffer.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const [depth, colorType, , , interlace] = data.subarray(8);
      if (depth !== 8 || interlace !== 0 || (colorType !== 2 && colorType !== 6)) throw new Error(`unsupported PNG (depth ${depth}, colour type ${colorType})`);
      channels = colorType === 6 ? 4 : 3;
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    offset += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const pixels = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const left = x >= channels ? pixels[y * stride + x - channels] : 0;
      const up = y > 0 ? pixels[(y - 1) * stride + x] : 0;
      const upLeft = y > 0 && x >= channels ? pixels[(y - 1) * stride + x - channels] : 0;
      let value = line[x];
      if (filter === 1) value += left;
      else if (filter === 2) value += up;
      else if (filter === 3) value += (left + up) >> 1;
      else if (filter === 4) {
        const p = left + up - upLeft;
        const pa = Math.abs(p - left);
        const pb = Math.abs(p - up);
        const pc = Math.abs(p - upLeft);
        value += pa <= pb && pa <= pc ? left : pb <= pc ? up : upLeft;
      }
      pixels[y * stride + x] = value & 0xff;
    }
  }
  return { width, height, channels, pixels };
}

/** Whether `command args` runs (a tool a test needs, which CI installs); never throws. */
export function commandWorks(command, args = ['--version']) {
  return new Promise((resolve) => {
    execFile(command, args, (error) => resolve(error === null));
  });
}

/** GET without keep-alive; a request the server does not answer is given up after 300 ms. Resolves to the status or "gave up". */
export function hit(base, urlPath) {
  return new Promise((resolve) => {
    const req = http.get(base + urlPath, { agent: false, timeout: 300 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve('gave up'));
  });
}

/** A request with its path sent exactly as written (fetch and supertest normalise dot segments); resolves to { status, headers, body }. */
export function rawRequest(base, path, { method = 'GET', headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(base), { method, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The text of a core handler response's body: a stream read to its end, a string, or bytes. */
export async function bodyText(body) {
  if (body instanceof Readable) {
    let text = '';
    for await (const chunk of body) text += chunk;
    return text;
  }
  return typeof body === 'string' ? body : body === undefined ? '' : Buffer.from(body).toString();
}

/**
 * Runs a fixture app in its own process (its tasks then are its own, not
 * the test runner's too): `script` prints its base URL on its first line and
 * exits when its stdin closes.
 */
export async function startChildApp(script, args) {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdout.setEncoding('utf8');
  let output = '';
  for await (const chunk of child.stdout) {
    output += chunk;
    if (output.includes('\n')) break;
  }
  const base = output.trim();
  if (!base.startsWith('http://')) throw new Error(`${path.basename(script)} did not start: ${output}`);
  return {
    base,
    async close() {
      // Its leaks keep it alive by design: closing stdin tells it to exit.
      child.stdin.end();
      if (child.exitCode === null) await once(child, 'exit');
    },
  };
}

/** The other half of startChildApp, in the fixture: prints the base URL and exits when stdin closes. */
export function serveUntilStdinCloses(base) {
  process.stdout.write(base + '\n');
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

/** A loopback port free now (for a tool that cannot listen on port 0 and say which it took). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}
