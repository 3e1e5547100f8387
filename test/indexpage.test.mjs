// The index page's trend chart in real headless Chromium: the page renders
// with no scripts and no external assets, the chart has a line per task type
// in the series colours, and the current suspects are listed. The screenshot
// is kept in test/output/ for a person to look at.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { startGrowthApp, steadyLoad, healthyPaths, leakyPaths } from './fixtures/growth-apps.mjs';
import { commandWorks, decodePng } from './helpers.mjs';

const run = promisify(execFile);
const outputDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'output');

let chromium;
for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
  if (await commandWorks(name)) {
    chromium = name;
    break;
  }
}
if (chromium === undefined) console.log('# SKIP index page in Chromium: no chromium on PATH (CI installs the Debian package chromium)');

function chromiumArgs(profileDir) {
  return ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', `--user-data-dir=${profileDir}`, '--window-size=1000,1000'];
}

test('the index page shows live tasks by type as an SVG chart and the suspects, in headless Chromium', { skip: chromium === undefined ? 'chromium is not installed (apt-get install chromium)' : false, timeout: 120_000 }, async () => {
  const app = await startGrowthApp({ leaky: true, options: { tracking: 'full', leakDetection: { intervalMs: 100, windowMs: 6000 } } });
  const stop = steadyLoad(app.base, [...healthyPaths, ...leakyPaths], 80);
  const profileDir = mkdtempSync(path.join(tmpdir(), 'taskprof-chromium-'));
  try {
    // Until both leaks are flagged (18 samples at most; see growth.test.mjs),
    // with room for a busy machine: the loop ends as soon as they are.
    const deadline = Date.now() + 40_000;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const body = await (await fetch(`${app.base}/debug/pprof/leaks?format=json`)).json();
      // Both leaks, not any two suspects: /report alone can be two growing
      // Promise groups before the TtlCache timer is flagged.
      const timer = body.suspects.some((s) => s.type === 'Timeout' && s.labels.route === '/users/:id');
      const promise = body.suspects.some((s) => s.type === 'Promise');
      if (timer && promise) break;
    }
    stop();
    const html = await (await fetch(`${app.base}/debug/pprof/`)).text();
    // Chromium renders this very page (saved: it has no external assets), not
    // a later one whose suspects may have changed since the load stopped.
    const url = pathToFileURL(path.join(profileDir, 'index.html')).href;
    writeFileSync(path.join(profileDir, 'index.html'), html);
    assert.doesNotMatch(html, /<script/i, 'no scripts');
    assert.doesNotMatch(html, /\b(src|href)="(https?:)?\/\//i, 'no external assets');

    // The DOM as Chromium parsed it.
    const { stdout: dom } = await run(chromium, [...chromiumArgs(profileDir), '--dump-dom', url], { maxBuffer: 16 * 1024 * 1024 });
    const lines = [...dom.matchAll(/<polyline class="series" data-type="([^"]+)" fill="none" stroke="(#[0-9a-f]{6})"[^>]* points="([^"]+)"/g)];
    const types = lines.map((m) => m[1]);
    assert.ok(types.includes('Timeout') && types.includes('Promise'), `series: ${types.join(', ')}`);
    for (const [, , , points] of lines) assert.ok(points.split(' ').length >= 10, 'a point per sample');
    assert.match(dom, /Leak suspects: [2-9] growing groups/);
    assert.match(dom, /Timeout growing \+[0-9.]+\/min for .* at new TtlCache examples\/demo\/ttl-cache\.mjs:7:\d+ \{method="GET", route="\/users\/:id"\}/);

    // The screenshot, kept; the Timeout line's colour must be on it.
    mkdirSync(outputDir, { recursive: true });
    const screenshot = path.join(outputDir, 'index-page.png');
    rmSync(screenshot, { force: true });
    await run(chromium, [...chromiumArgs(profileDir), `--screenshot=${screenshot}`, url]);
    const png = decodePng(readFileSync(screenshot));
    assert.ok(png.width >= 800 && png.height >= 600, `${png.width}x${png.height}`);
    const timeoutColour = lines.find((m) => m[1] === 'Timeout')[2];
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(timeoutColour.slice(i, i + 2), 16));
    let matching = 0;
    for (let i = 0; i < png.pixels.length; i += png.channels) {
      if (Math.abs(png.pixels[i] - r) < 8 && Math.abs(png.pixels[i + 1] - g) < 8 && Math.abs(png.pixels[i + 2] - b) < 8) matching++;
    }
    assert.ok(matching > 200, `${matching} pixels in the Timeout series colour ${timeoutColour}`);
    console.log(`# screenshot kept: ${path.relative(process.cwd(), screenshot)} (${png.width}x${png.height}, ${matching} pixels of the Timeout line)`);
  } finally {
    stop();
    await app.close();
    rmSync(profileDir, { recursive: true, force: true });
  }
});

test('the index page links every profile, as Chromium parses it, and every link answers', { skip: chromium === undefined ? 'chromium is not installed (apt-get install chromium)' : false, timeout: 60_000 }, async () => {
  const app = await startGrowthApp({ leaky: false, options: {} });
  const profileDir = mkdtempSync(path.join(tmpdir(), 'taskprof-chromium-'));
  try {
    const pprofRoot = `${app.base}/debug/pprof/`;
    writeFileSync(path.join(profileDir, 'index.html'), await (await fetch(pprofRoot)).text());
    const { stdout: dom } = await run(chromium, [...chromiumArgs(profileDir), '--dump-dom', pathToFileURL(path.join(profileDir, 'index.html')).href], { maxBuffer: 16 * 1024 * 1024 });
    const links = new Map([...dom.matchAll(/<li><div class="profile-name"><a href="([^"]+)">([^<]+)<\/a>: <\/div>([^<]*)<\/li>/g)].map((m) => [m[2], { href: m[1].replaceAll('&amp;', '&'), description: m[3] }]));
    const expected = { heap: 'heap?debug=1', profile: 'profile?seconds=30', allocs: 'allocs?debug=1', block: 'block?debug=1', mutex: 'mutex?debug=1', heapsnapshot: 'heapsnapshot', tasks: 'tasks?debug=1', leaks: 'leaks?debug=1' };
    for (const [name, href] of Object.entries(expected)) assert.equal(links.get(name)?.href, href, `${name} is linked`);
    assert.match(links.get('heapsnapshot').description, /Opt-in, and off here: set the heapSnapshot option/);
    // Each link, resolved as the browser does against the page's URL, answers (the snapshot says it is off; the CPU profile is not waited for).
    for (const [name, { href }] of links) {
      if (name === 'profile') continue;
      const res = await fetch(new URL(href, pprofRoot));
      await res.arrayBuffer();
      assert.equal(res.status, name === 'heapsnapshot' ? 403 : 200, `${name}: ${href}`);
    }
  } finally {
    await app.close();
    rmSync(profileDir, { recursive: true, force: true });
  }
});
