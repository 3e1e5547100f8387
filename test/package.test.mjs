// The package as npm would publish it: the LICENSE is in it, every source
// map carries its sources (no map points at a file left out), and
// installing it from the registry runs no script of ours.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const root = process.cwd();

function packedFiles() {
  return new Promise((resolve, reject) => {
    // --ignore-scripts: this lists what is there; the test command built it.
    execFile('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root }, (error, stdout) => {
      if (error) reject(error);
      else resolve(JSON.parse(stdout)[0].files.map((f) => f.path));
    });
  });
}

test('npm pack: LICENSE included, source maps self-contained, no install-time script', async () => {
  const files = await packedFiles();
  assert.ok(files.includes('LICENSE'), 'LICENSE is packed');
  assert.ok(files.includes('dist/src/index.js'));
  // npx taskprof after npm install taskprof: the bin is packed.
  assert.ok(files.includes('dist/src/cli/main.js'), 'the taskprof executable is packed');
  const maps = files.filter((f) => f.endsWith('.map'));
  assert.ok(maps.length > 10, `${maps.length} source maps`);
  for (const map of maps) {
    const { sources, sourcesContent } = JSON.parse(readFileSync(path.join(root, map), 'utf8'));
    for (const [i, source] of sources.entries()) {
      const packed = files.includes(path.posix.normalize(path.posix.join(path.posix.dirname(map), source)));
      assert.ok(packed || typeof sourcesContent?.[i] === 'string', `${map}: ${source} is neither packed nor inlined`);
    }
  }
  const { scripts } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  for (const hook of ['preinstall', 'install', 'postinstall', 'prepare']) {
    assert.equal(scripts[hook], undefined, `no "${hook}" script: installing from the registry runs nothing of ours`);
  }
  assert.match(scripts.prepack, /npm run build/, 'the tarball is built when packed');
});
