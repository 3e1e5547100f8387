// With source maps on, stacks name the TypeScript source, not the compiled file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { fixturesDir, sourcePosition } from './helpers.mjs';

const run = promisify(execFile);

test('a task created in compiled TypeScript is listed at its .ts line', async () => {
  // Inside the package, so that `import 'taskprof'` resolves to this checkout.
  const out = path.join(process.cwd(), 'test-output', `sourcemap-${process.pid}`);
  mkdirSync(out, { recursive: true });
  try {
    const source = path.join(fixturesDir, 'ts', 'scheduler.ts');
    const tsc = path.join(process.cwd(), 'node_modules', 'typescript', 'bin', 'tsc');
    await run(process.execPath, [tsc, '--sourceMap', '--module', 'nodenext', '--target', 'es2022', '--types', 'node', '--outDir', out, source]);
    writeFileSync(
      path.join(out, 'main.js'),
      `import { startTracking, writeProfile } from 'taskprof';
import { Scheduler } from './scheduler.js';
startTracking({ mode: 'full' });
const s = new Scheduler();
s.schedule({ name: 'a', everyMs: 1000 });
await writeProfile('tasks', process.stdout, { debug: 1 });
s.stop();
`,
    );
    const { stdout } = await run(process.execPath, ['--enable-source-maps', path.join(out, 'main.js')]);
    const expected = sourcePosition(source, '// SCHEDULE', 'setInterval(');
    const frame = stdout.split('\n').find((line) => line.includes('scheduler.'));
    assert.equal(frame, `#\tschedule\t${expected}`, stdout);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
