// Builds the optional v8-profiler-next addon from source for the engine tests,
// when npm's install did not (npm 11 may skip unapproved install scripts, and
// the addon's prebuilt binaries are downloaded from GitHub): node-pre-gyp,
// against the local Node headers when npm's nodedir says where they are.
// A failure (its releases support Node up to 21) is reported, not fatal: the
// engine tests then say they skipped.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
let dir;
try {
  dir = path.dirname(require.resolve('v8-profiler-next/package.json'));
} catch {
  console.log('v8-profiler-next is not installed; nothing to build');
  process.exit(0);
}
try {
  require('v8-profiler-next');
  console.log('v8-profiler-next already loads');
  process.exit(0);
} catch {
  // Build it below.
}
const preGyp = require.resolve('@xprofiler/node-pre-gyp/bin/node-pre-gyp');
let nodedir = process.env.npm_config_nodedir;
try {
  nodedir ??= execFileSync('npm', ['config', 'get', 'nodedir'], { encoding: 'utf8' }).trim();
} catch {
  // No npm config: node-gyp finds headers its own way.
}
const args = [preGyp, 'rebuild'];
if (nodedir && nodedir !== 'undefined' && nodedir !== 'null') args.push(`--nodedir=${nodedir}`);
try {
  execFileSync(process.execPath, args, { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  require('v8-profiler-next');
  console.log('v8-profiler-next built');
} catch (error) {
  console.log(`v8-profiler-next could not be built on Node ${process.version}: ${error.message.split('\n')[0]}`);
}
