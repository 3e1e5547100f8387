// GET <prefix>/pprof/leaks: the task groups the growth detector finds growing
// steadily, and abandoned tasks (collected without ever settling) by site.
import { growthDetector as defaultDetector, type GrowthDetector, type Suspect } from '../detect/growth.js';
import { tracker as defaultTracker, type Tracker } from '../tracker/tracker.js';
import { framesOf } from '../stacks/stack.js';
import { emptyLabels, formatLabels } from '../labels/labels.js';
import { flowParts, formatAge, frameLines, groupFrameLines } from '../format/text.js';
import { PPROF, encodePprof } from '../format/pprof.js';
import { MSG_LEAKS_OFF, ProfileError } from '../errors.js';
import { type ProfileDefinition, type ProfileOutput, type ProfileQuery } from './profile.js';
import { JSON_TYPE, TEXT, pprofStack } from './tasks.js';


function rate(perMinute: number): string {
  return perMinute >= 10 ? perMinute.toFixed(0) : perMinute.toFixed(1);
}

function headerText(detector: GrowthDetector, suspects: readonly Suspect[], tracker: Tracker): string {
  const settings = detector.settings!;
  const samples = detector.sampleCount;
  let out = `leaks profile: ${suspects.length} growing group${suspects.length === 1 ? '' : 's'}`;
  out += `; sampled every ${formatAge(settings.intervalMs)}, ${samples} sample${samples === 1 ? '' : 's'} in a window of ${formatAge(settings.windowMs)}`;
  out += `; a group is flagged after growing by ${settings.minGrowth}+ tasks over ${settings.minSamples}+ samples`;
  if (samples < settings.minSamples) out += ` (too few samples yet: first verdict after ${formatAge(settings.minSamples * settings.intervalMs)})`;
  if (suspects.some((s) => s.estimated)) out += '; counts marked (estimated) come from stacks the stack budget sampled';
  if (detector.unfollowed > 0) out += `; ${detector.unfollowed} groups not followed (maxGroups ${settings.maxGroups})`;
  return out + '\n';
}

function leaksText(detector: GrowthDetector, tracker: Tracker, now: number): string {
  const suspects = detector.suspects();
  let out = headerText(detector, suspects, tracker);
  for (const s of suspects) {
    const labels = formatLabels(s.labels);
    out += `${Math.round(s.count)} @ ${s.type} growing +${rate(s.growthPerMinute)}/min for ${formatAge(now - s.since)}`;
    out += Number.isNaN(s.oldestAgeMs) ? '' : `, oldest ${formatAge(s.oldestAgeMs)}`;
    out += s.waitsFor ? `, waiting for ${s.waitsFor}` : '';
    out += (labels ? ' ' + labels : '') + (s.estimated ? ' (estimated)' : '') + '\n';
    out += s.stack === undefined ? `#\t(no stack: ${tracker.mode === 'counts' ? 'tracking mode counts' : 'tasks without a record'})\n` : groupFrameLines(s.stack, s.parkedFrames);
    out += '\n';
  }
  const { sites, unsited } = tracker.abandonedSites();
  if (!tracker.abandonedCounted) {
    out += 'abandoned tasks (garbage collected without ever settling) are not counted: tracking is off\n';
  } else if (sites.length > 0 || unsited > 0) {
    out += 'abandoned tasks (garbage collected without ever settling), by creation site:\n';
    for (const site of sites) {
      const labels = formatLabels(site.labels?.values ?? emptyLabels);
      out += `${Math.round(site.count)} @ ${site.type} last ${formatAge(now - site.lastAt)} ago${labels ? ' ' + labels : ''}\n`;
      out += site.stack === undefined ? '#\t(no stack)\n' : frameLines(framesOf(site.stack));
      out += '\n';
    }
    if (unsited > 0) out += `${Math.round(unsited)} more abandoned without a site (their stacks were not captured, or too many sites)\n`;
  }
  return out;
}

function leaksJson(detector: GrowthDetector, tracker: Tracker, now: number): string {
  const settings = detector.settings!;
  const { sites, unsited } = tracker.abandonedSites();
  return JSON.stringify({
    settings,
    samples: detector.sampleCount,
    unfollowedGroups: detector.unfollowed,
    suspects: detector.suspects().map((s) => ({
      type: s.type,
      count: Math.round(s.count),
      estimated: s.estimated,
      growthPerMinute: s.growthPerMinute,
      since: new Date(s.since).toISOString(),
      growingForMs: now - s.since,
      oldestAgeMs: Number.isNaN(s.oldestAgeMs) ? null : s.oldestAgeMs,
      labels: s.labels,
      stack: s.stack ?? [],
      ...(s.parkedFrames === 0 ? {} : { flow: { waitsFor: s.waitsFor, ...flowParts(s.stack!, s.parkedFrames) } }),
    })),
    abandoned: sites.map((site) => ({
      type: site.type,
      count: Math.round(site.count),
      lastAgoMs: now - site.lastAt,
      labels: site.labels?.values ?? emptyLabels,
      stack: site.stack === undefined ? [] : framesOf(site.stack),
    })),
    abandonedWithoutSite: Math.round(unsited),
    abandonedCounted: tracker.abandonedCounted,
  });
}

function leaksPprof(detector: GrowthDetector): Uint8Array {
  return encodePprof({
    sampleTypes: [{ type: 'leaked_tasks', unit: 'count' }],
    periodType: { type: 'tasks', unit: 'count' },
    period: 1,
    samples: detector.suspects().map((s) => ({
      values: [Math.round(s.count)],
      frames: pprofStack(s.type, s.stack ?? []),
      labels: { ...s.labels, type: s.type, growth_per_minute: rate(s.growthPerMinute), ...(s.waitsFor ? { waits_for: s.waitsFor } : {}) },
    })),
  });
}

export function createLeaksProfile(
  enabled: boolean,
  detector: GrowthDetector = defaultDetector,
  tracker: Tracker = defaultTracker,
): ProfileDefinition {
  return {
    name: 'leaks',
    aliases: ['goroutineleak'],
    description:
      'Task groups (creation site and labels) whose live count keeps growing, from samples taken while mounted, and tasks garbage collected without ever settling, by site' +
      (enabled ? '' : ' (off: leakDetection is false)'),
    debugLevels: [0, 1],
    formats: ['json'],
    count: () => (enabled ? detector.suspects().length : 0),
    unavailable(): ProfileError | undefined {
      return !enabled || detector.settings === undefined ? new ProfileError(404, MSG_LEAKS_OFF) : undefined;
    },
    write(query: ProfileQuery): ProfileOutput {
      const off = this.unavailable?.();
      if (off !== undefined) throw off;
      const now = Date.now();
      if (query.json) return { contentType: JSON_TYPE, body: leaksJson(detector, tracker, now) };
      if (query.debug === 1) return { contentType: TEXT, body: leaksText(detector, tracker, now) };
      return { contentType: PPROF, filename: 'leaks', body: leaksPprof(detector) };
    },
  };
}
