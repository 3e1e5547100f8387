// Who decides the tracker's settings: mounts, the API (startTracking) and
// leak checks, which hold tracking at `full` while they run. One owner, so
// that none of them reaches into another's state.
import { tracker } from './tracker.js';
import type { TrackerSettings } from './types.js';

let configured = false;

/**
 * While a leak check holds tracking at `full`, what mounts and the API ask
 * for is kept here and applied when the check ends (see src/testing/leak-check.ts).
 */
const hold: { active: boolean; deferred: TrackerSettings | undefined } = { active: false, deferred: undefined };

/** Applies tracker settings now, or after the leak check that holds tracking. */
export function configureTracking(settings: TrackerSettings): void {
  configured = true;
  if (hold.active) hold.deferred = { ...settings };
  else tracker.configure(settings);
}

/** Whether a mount or the API chose settings (a mount without `tracking` then keeps them). */
export function trackingChosen(): boolean {
  return configured || hold.deferred !== undefined;
}

/** The last mount closed: tracking stops, and the next mount's settings apply afresh. */
export function releaseTracking(): void {
  configureTracking({ ...tracker.settings, mode: 'off' });
  configured = false;
}

/** A leak check takes tracking to `full`; returns the settings to go back to. */
export function holdFullTracking(): TrackerSettings {
  const saved = { ...tracker.settings };
  hold.active = true;
  hold.deferred = undefined;
  if (saved.mode !== 'full') tracker.configure({ ...saved, mode: 'full' });
  return saved;
}

/** The last leak check ended: the settings asked for meanwhile, else `saved`, apply. */
export function releaseFullTracking(saved: TrackerSettings): void {
  const next = hold.deferred ?? saved;
  hold.active = false;
  hold.deferred = undefined;
  tracker.configure(next);
}
