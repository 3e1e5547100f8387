// What differs between Node versions, found at run time rather than read
// from the version number (docs/design.md, Node versions).
import asyncHooks from 'node:async_hooks';

let seesPromises: boolean | undefined;

/**
 * Whether an async_hooks hook made with `trackPromises: false` is still
 * called for promises: Node 24 honours the option, 20 and 22 ignore it (then
 * such a hook sees every promise, and its before/after run around every
 * promise continuation). Probed when `full` first starts, not on import:
 * enabling any hook, even for a moment, slows the process's promises for
 * good (V8 drops a fast path; docs/design.md).
 */
export function resourceHookSeesPromises(): boolean {
  if (seesPromises !== undefined) return seesPromises;
  let seen = false;
  const probe = asyncHooks.createHook({
    init: (_id: number, type: string) => {
      if (type === 'PROMISE') seen = true;
    },
    trackPromises: false,
  } as asyncHooks.HookCallbacks);
  probe.enable();
  void Promise.resolve();
  probe.disable();
  seesPromises = seen;
  return seen;
}
