// GET <prefix>/pprof/ : the index page, in the shape of Go's.
import type { ProfileRegistry } from './registry.js';
import { otherEndpoints } from './registry.js';

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function indexPage(registry: ProfileRegistry, prefix: string): string {
  const rows = registry.profiles
    .filter((p) => p.count !== undefined)
    .map((p) => `<tr><td>${p.count!()}</td><td><a href="${escapeHtml(p.name)}?debug=1">${escapeHtml(p.name)}</a></td></tr>`)
    .join('\n');
  const descriptions = [
    ...registry.profiles.map((p) => ({ name: p.name, href: undefined, description: p.description })),
    ...otherEndpoints,
  ]
    .map((p) => {
      const name = p.href === undefined ? escapeHtml(p.name) : `<a href="${escapeHtml(p.href)}">${escapeHtml(p.name)}</a>`;
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
<p>Profile Descriptions:</p>
<ul>
${descriptions}
</ul>
</body>
</html>
`;
}
