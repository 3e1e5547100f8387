// Shared test helpers: where a marker sits in a fixture, a real GC, polling.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';

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
    groups.push({
      count: Number(head.split(' ')[0]),
      head,
      frames: lines.slice(headIndex + 1).filter((l) => l.startsWith('#\t')).map((l) => l.split('\t')[2]),
      functions: lines.slice(headIndex + 1).filter((l) => l.startsWith('#\t')).map((l) => l.split('\t')[1]),
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

/** supertest parser that keeps a binary body as a Buffer. */
export function binaryParser(res, callback) {
  const chunks = [];
  res.on('data', (c) => chunks.push(c));
  res.on('end', () => callback(null, Buffer.concat(chunks)));
}
