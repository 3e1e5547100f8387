// The code's shape: no runtime import cycle among the compiled modules of
// src/ and middleware/ (type-only imports are erased by tsc, so what dist/
// imports is what runs), src/ never imports middleware/, and no source file
// is over 500 lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const root = process.cwd();

function files(dir, ending) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...files(full, ending));
    else if (entry.name.endsWith(ending) && !entry.name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

/** Static imports and re-exports of a compiled module, resolved to files. */
function importsOf(file) {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/^\s*(?:import|export)\b[^'";]*?(?:from\s*)?['"](\.{1,2}\/[^'"]+)['"]/gm)].map((m) => m[1]);
  return specifiers.map((s) => path.resolve(path.dirname(file), s));
}

/** Every cycle, each as the list of files around it (one rotation per cycle). */
function findCycles(graph) {
  const cycles = new Map();
  const state = new Map();
  const stack = [];
  const visit = (node) => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') {
        const cycle = stack.slice(stack.indexOf(next));
        const start = cycle.indexOf([...cycle].sort()[0]);
        const key = [...cycle.slice(start), ...cycle.slice(0, start)];
        cycles.set(key.join(' → '), key);
      } else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of graph.keys()) if (!state.has(node)) visit(node);
  return [...cycles.values()];
}

test('the checker finds a cycle', () => {
  const graph = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a', 'd']],
    ['d', []],
  ]);
  assert.deepEqual(findCycles(graph), [['a', 'b', 'c']]);
});

test('no runtime import cycle in src/ and middleware/, and src/ never imports middleware/', () => {
  const modules = [...files(path.join(root, 'dist', 'src'), '.js'), ...files(path.join(root, 'dist', 'middleware'), '.js')];
  assert.ok(modules.length > 30, `${modules.length} modules`);
  const graph = new Map(modules.map((file) => [file, importsOf(file)]));
  const rel = (file) => path.relative(path.join(root, 'dist'), file);
  const cycles = findCycles(graph).map((cycle) => cycle.map(rel).join(' → '));
  assert.deepEqual(cycles, []);
  for (const [file, imports] of graph) {
    if (!rel(file).startsWith('src')) continue;
    for (const imported of imports) assert.ok(!rel(imported).startsWith('middleware'), `${rel(file)} imports ${rel(imported)}`);
  }
});

test('no source file over 500 lines', () => {
  const sources = [...files(path.join(root, 'src'), '.ts'), ...files(path.join(root, 'middleware'), '.ts')];
  const long = sources.map((file) => [path.relative(root, file), readFileSync(file, 'utf8').split('\n').length]).filter(([, lines]) => lines > 500);
  assert.deepEqual(long, []);
});
