// Plain node:http: a handler that serves the debug paths and hands every
// other request on, and listen() for a debug server on its own port.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { mount } from '../src/http/mount.js';
import type { TaskprofOptions } from '../src/options.js';

export type { TaskprofOptions } from '../src/options.js';

export type NextHandler = () => void;

/**
 * `const debug = taskprof(options)`, then in your server:
 * `debug(req, res, () => app(req, res))`. Without `next`, other paths get 404.
 */
export interface TaskprofHandler {
  (req: IncomingMessage, res: ServerResponse, next?: NextHandler): void;
  /**
   * Unmounts: aborts debug requests in flight and, when no other mount is
   * open, stops tracking and every timer, hook and listener taskprof started.
   */
  close(): Promise<void>;
}

export default function taskprof(options?: TaskprofOptions): TaskprofHandler {
  const taskprof = mount(options);
  const handler = function taskprofHandler(req: IncomingMessage, res: ServerResponse, next?: NextHandler): void {
    if (taskprof.handler.matches(req.url ?? '/')) {
      taskprof.serve(req, res, req);
      return;
    }
    if (next === undefined) {
      taskprof.notFound(res);
      return;
    }
    taskprof.runLabelled({ method: req.method ?? 'GET' }, next);
  };
  return Object.assign(handler, { close: () => taskprof.unmount() });
}

export interface ListenOptions extends TaskprofOptions {
  /** Default 0: a free port (read it from server.address()). */
  port?: number;
  /** Default 127.0.0.1, like Go's habit of a separate localhost listener. */
  host?: string;
}

/** Serves the debug endpoints on their own port; resolves once listening. Closing the server unmounts. */
export function listen(options: ListenOptions = {}): Promise<http.Server> {
  const { port = 0, host = '127.0.0.1', ...taskprofOptions } = options;
  const handler = taskprof(taskprofOptions);
  const server = http.createServer((req, res) => handler(req, res));
  server.once('close', () => void handler.close());
  return new Promise((resolve, reject) => {
    const failed = (error: Error): void => {
      // Never listening, so never closed: unmount now.
      void handler.close();
      reject(error);
    };
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve(server);
    });
  });
}
