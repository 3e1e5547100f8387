// GET <prefix>/pprof/allocs: not served, and the answer says why.
import { ProfileError, type ProfileDefinition } from './profile.js';

export const MSG_ALLOCS =
  'allocs is not available: V8 runs one sampling heap profiler per process, and taskprof keeps it sampling live objects for the heap profile ' +
  '(sampling collected objects too would turn heap into an allocation profile). Use heap, or a CPU profile to find allocation-heavy code';

export function createAllocsProfile(): ProfileDefinition {
  return {
    name: 'allocs',
    aliases: [],
    description: 'A sampling of all past memory allocations: not available in Node (one sampling heap profiler per process, used by heap)',
    debugLevels: [0, 1],
    formats: [],
    write() {
      throw new ProfileError(404, MSG_ALLOCS);
    },
  };
}
