// Express 4 and 5: app.use(taskprof(options)).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mount } from '../src/node.js';
import type { TaskprofOptions } from '../src/options.js';
import type { Labels } from '../src/labels.js';

export type { TaskprofOptions } from '../src/options.js';

interface ExpressRequest extends IncomingMessage {
  url: string;
  baseUrl?: string;
  route?: { path?: unknown };
}

// The route template is known only once Express has matched a route, so it
// is read late: when a task is recorded, and when a listing is made. Through a
// weak reference, so that a task outliving its request does not keep req alive.
function routeOf(ref: WeakRef<ExpressRequest>): Labels | undefined {
  const req = ref.deref();
  const path = req?.route?.path;
  if (typeof path !== 'string') return undefined;
  return { route: (req!.baseUrl ?? '') + path };
}

export interface TaskprofMiddleware {
  (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void): void;
  /**
   * Unmounts: aborts debug requests in flight and, when no other mount is
   * open, stops tracking and every timer, hook and listener taskprof started.
   */
  close(): Promise<void>;
}

export default function taskprof(options?: TaskprofOptions): TaskprofMiddleware {
  const taskprof = mount(options);
  const middleware = function taskprofMiddleware(req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void): void {
    const request = req as ExpressRequest;
    if (taskprof.handler.matches(request.url)) {
      taskprof.serve(request, res, request, request.url);
      return;
    }
    if (!taskprof.labelsEnabled()) return next();
    const ref = new WeakRef(request);
    taskprof.runLabelled({ method: request.method ?? 'GET' }, next, () => routeOf(ref));
  };
  return Object.assign(middleware, { close: () => taskprof.unmount() });
}
