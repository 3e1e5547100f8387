// The task whose callback is running now, found through Node's execution
// resource (a timer's callback runs with its Timeout, say).
import asyncHooks from 'node:async_hooks';
import type { Session, TrackedTask } from './session.js';
import { promiseStamp, recordOf, resourceStamp } from './task-stamp.js';

export function runningRecord(session: Session): TrackedTask | undefined {
  const resource = asyncHooks.executionAsyncResource() as object | undefined;
  if (resource === undefined || resource === null || typeof resource !== 'object') return undefined;
  const record = recordOf(resourceStamp.get(resource) ?? promiseStamp.get(resource));
  return record !== undefined && record.live && record.id >= session.firstId ? record : undefined;
}
