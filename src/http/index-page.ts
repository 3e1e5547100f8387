// GET <prefix>/pprof/ : the index page, in the shape of Go's.
import type { ProfileRegistry } from '../profiles/registry.js';
import { otherEndpoints } from '../profiles/registry.js';
import { growthDetector, type GrowthDetector } from '../detect/growth.js';
import { formatLabels } from '../labels/labels.js';
import { formatAge, formatPosition } from '../format/text.js';

// Series colours (Tableau 10): told apart by most colour-blind readers.
const palette = ['#4e79a7', '#e15759', '#59a14f', '#f28e2b', '#b07aa1', '#76b7b2'];
const chartWidth = 720;
const chartHeight = 220;
const margin = { left: 56, right: 12, top: 12, bottom: 28 };

function niceMax(value: number): number {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

/** Live tasks by type over the detector's window, as inline SVG (no scripts, no external assets). */
export function trendChart(detector: GrowthDetector): string {
  const settings = detector.settings;
  const times = detector.times();
  const plotW = chartWidth - margin.left - margin.right;
  const plotH = chartHeight - margin.top - margin.bottom;
  const open = `<svg xmlns="http://www.w3.org/2000/svg" id="trend" width="${chartWidth}" height="${chartHeight}" viewBox="0 0 ${chartWidth} ${chartHeight}" role="img" aria-labelledby="trend-title">`;
  const title = `<title id="trend-title">Live tasks by type over time</title>`;
  const frame = `<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="#fafafa" stroke="#ccc"/>`;
  if (settings === undefined || times.length < 2) {
    const why = settings === undefined ? 'The growth detector is off (leakDetection: false).' : `Collecting: a sample every ${formatAge(settings.intervalMs)}; the chart starts after two.`;
    return `${open}${title}${frame}<text x="${chartWidth / 2}" y="${chartHeight / 2}" text-anchor="middle" font-size="13" fill="#555">${escapeHtml(why)}</text></svg>`;
  }
  const series = detector
    .typeSeries()
    .map((s) => ({ ...s, peak: s.values.reduce((a, b) => Math.max(a, b), 0), last: s.values[s.values.length - 1] ?? 0 }))
    .filter((s) => s.peak > 0)
    .sort((a, b) => b.peak - a.peak || a.type.localeCompare(b.type))
    .slice(0, palette.length);
  const yMax = niceMax(series.reduce((a, s) => Math.max(a, s.peak), 1));
  const t0 = times[0]!;
  const span = Math.max(1, times[times.length - 1]! - t0);
  const x = (t: number) => (margin.left + ((t - t0) / span) * plotW).toFixed(1);
  const y = (v: number) => (margin.top + plotH - (v / yMax) * plotH).toFixed(1);
  let body = '';
  for (const fraction of [0.5, 1]) {
    body += `<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${y(yMax * fraction)}" y2="${y(yMax * fraction)}" stroke="#e3e3e3"/>`;
    body += `<text x="${margin.left - 6}" y="${y(yMax * fraction)}" dy="4" text-anchor="end" font-size="11" fill="#555">${yMax * fraction}</text>`;
  }
  body += `<text x="${margin.left - 6}" y="${y(0)}" dy="4" text-anchor="end" font-size="11" fill="#555">0</text>`;
  body += `<text x="${margin.left}" y="${chartHeight - 8}" font-size="11" fill="#555">${escapeHtml(formatAge(span))} ago</text>`;
  body += `<text x="${margin.left + plotW}" y="${chartHeight - 8}" text-anchor="end" font-size="11" fill="#555">now</text>`;
  series.forEach((s, i) => {
    const points = s.values.map((v, j) => `${x(times[j]!)},${y(v)}`).join(' ');
    body += `<polyline class="series" data-type="${escapeHtml(s.type)}" fill="none" stroke="${palette[i]}" stroke-width="2" points="${points}"/>`;
  });
  const legend = series
    .map((s, i) => `<span class="legend"><span class="swatch" style="background:${palette[i]}"></span>${escapeHtml(s.type)} ${Math.round(s.last)}</span>`)
    .join(' ');
  return `${open}${title}${frame}${body}</svg>\n<div>${legend}</div>`;
}

function suspectsList(detector: GrowthDetector): string {
  if (detector.settings === undefined) return '';
  const suspects = detector.suspects();
  if (suspects.length === 0) return '<p id="suspects">No task group is growing steadily (<a href="leaks?debug=1">leaks</a>).</p>';
  const now = Date.now();
  const items = suspects.slice(0, 10).map((s) => {
    const top = s.stack?.[0];
    const where = top === undefined ? '' : ` at ${top.functionName} ${formatPosition(top)}`;
    const labels = formatLabels(s.labels);
    const rate = s.growthPerMinute >= 10 ? s.growthPerMinute.toFixed(0) : s.growthPerMinute.toFixed(1);
    return `<li>${Math.round(s.count)} ${escapeHtml(s.type)} growing +${rate}/min for ${escapeHtml(formatAge(now - s.since))}${escapeHtml(where)} ${escapeHtml(labels)}</li>`;
  });
  return `<div id="suspects"><p class="warning">Leak suspects: ${suspects.length} growing group${suspects.length === 1 ? '' : 's'} (<a href="leaks?debug=1">details</a>)</p><ul>${items.join('\n')}</ul></div>`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function indexPage(registry: ProfileRegistry, prefix: string, detector: GrowthDetector = growthDetector): string {
  const rows = registry.profiles
    .filter((p) => p.count !== undefined)
    .map((p) => `<tr><td>${p.count!()}</td><td><a href="${escapeHtml(p.name)}?debug=1">${escapeHtml(p.name)}</a></td></tr>`)
    .join('\n');
  const descriptions = [
    ...registry.profiles.map((p) => ({ name: p.name, href: p.link ?? (p.debugLevels.includes(1) ? `${p.name}?debug=1` : p.name), description: p.description })),
    ...otherEndpoints,
  ]
    .map((p) => {
      const name = `<a href="${escapeHtml(p.href)}">${escapeHtml(p.name)}</a>`;
      return `<li><div class="profile-name">${name}: </div> ${escapeHtml(p.description)}</li>`;
    })
    .join('\n');
  const title = escapeHtml(prefix + '/pprof/');
  return `<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>${title}</title>
<style>
body { font-family: sans-serif; margin: 1em 2em; }
table { border-collapse: collapse; }
td { padding: 0.2em 1em; }
thead td { font-weight: bold; }
.profile-name { display: inline-block; width: 8em; }
.legend { margin-right: 1.2em; font-size: 0.9em; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; margin-right: 0.3em; vertical-align: middle; }
.warning { color: #b00020; font-weight: bold; }
</style>
</head>
<body>
<h1>${title}</h1>
<p>Set debug=1 as a query parameter to export in text form; debug=0 (the default) gives a gzipped pprof profile for go tool pprof.</p>
<table>
<thead><tr><td>Count</td><td>Profile</td></tr></thead>
${rows}
</table>
<p><a href="tasks?debug=2">full task stack dump</a></p>
<h2>Live tasks by type</h2>
${trendChart(detector)}
${suspectsList(detector)}
<p>Profile Descriptions:</p>
<ul>
${descriptions}
</ul>
</body>
</html>
`;
}
