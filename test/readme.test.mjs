// Every JavaScript snippet in the README runs as written: each is saved as a
// module inside the repository (so that `taskprof` resolves to this
// package) and run the way the README says: evaluated to its end (a server
// it starts is then let go), under `node --test`, or under Mocha. A snippet
// for a runner this repository does not install is parsed only, as its
// marker says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const root = process.cwd();
const dir = path.join(root, 'test', 'output', 'readme-snippets');

function snippets() {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const found = [];
  const pattern = /(?:<!-- snippet: ([^>]+?) -->\n)?```js\n([\s\S]*?)```/g;
  for (let match; (match = pattern.exec(readme)) !== null; ) {
    found.push({ line: readme.slice(0, match.index).split('\n').length, how: match[1] ?? 'run', code: match[2] });
  }
  return found;
}

function run(args, cwd = root) {
  return new Promise((resolve) => {
    // A runner of its own, not a subtest of this file's.
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    execFile(process.execPath, args, { cwd, env, timeout: 60_000 }, (error, stdout, stderr) => resolve({ code: error?.code ?? 0, output: stdout + stderr }));
  });
}

const found = snippets();

test('the README has its snippets', () => {
  assert.ok(found.length >= 10, `${found.length} snippets`);
});

rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
for (const snippet of found) {
  test(`README.md:${snippet.line} (${snippet.how}) runs as written`, async () => {
    const file = path.join(dir, `line-${snippet.line}.mjs`);
    writeFileSync(file, snippet.code);
    let result;
    if (snippet.how === 'run') {
      // Evaluated to its end, top-level awaits included; a server it starts
      // answers a request below 500 (and does not crash); then the process
      // is let go.
      const ports = [...snippet.code.matchAll(/listen\((\d{2,5})\b|port: (\d{2,5})\b/g)].map((m) => Number(m[1] ?? m[2]));
      const probe = `
        await import(${JSON.stringify('file://' + file)});
        for (const port of ${JSON.stringify(ports)}) {
          let res;
          for (const deadline = Date.now() + 10_000; res === undefined && Date.now() < deadline; ) {
            res = await fetch('http://127.0.0.1:' + port + '/').catch(() => new Promise((resolve) => setTimeout(resolve, 20)));
          }
          if (res === undefined || res.status >= 500) { console.error('port', port, res?.status); process.exit(1); }
          await res.text();
          await new Promise((resolve) => setImmediate(resolve));
        }
        process.exit(0);`;
      result = await run(['--input-type=module', '-e', probe]);
    } else if (snippet.how === 'node --test') {
      result = await run(['--test', file]);
    } else if (snippet.how === 'mocha') {
      result = await run([path.join(root, 'node_modules', 'mocha', 'bin', 'mocha.js'), file]);
    } else {
      assert.match(snippet.how, /^syntax only \(.+\)$/, 'a marker says how the snippet runs');
      result = await run(['--check', file]);
    }
    assert.equal(result.code, 0, `README.md:${snippet.line}\n${snippet.code}\n${result.output}`);
  });
}
