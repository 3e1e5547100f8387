// Plain node:http: a handler that serves the debug paths and hands every
// other request on, and listen() for a debug server on its own port.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { mount } from '../src/node.js';
import type { TaskprofOptions } from '../src/options.js';

export type { TaskprofOptions } from '../src/options.js';

export type NextHandler = () => void;

/**
 * `const debug = taskprof(options)`, then in your server:
 * `debug(req, res, () => app(req, res))`. Without `next`, other paths get 404.
 */
export default function taskprof(options?: TaskprofOptions) {
  const taskprof = mount(options);
  return function taskprofHandler(req: IncomingMessage, res: ServerResponse, next?: NextHandler): void {
    if (taskprof.handler.matches(req.url ?? '/')) {
      taskprof.serve(req, res, req);
      return;
    }
    if (next === undefined) {
      res.statusCode = 404;
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.end('Not found\n');
      return;
    }
    taskprof.runLabelled({ method: req.method ?? 'GET' }, next);
  };
}

export interface ListenOptions extends TaskprofOptions {
  /** Default 0: a free port (read it from server.address()). */
  port?: number;
  /** Default 127.0.0.1, like Go's habit of a separate localhost listener. */
  host?: string;
}

/** Serves the debug endpoints on their own port; resolves once listening. */
export function listen(options: ListenOptions = {}): Promise<http.Server> {
  const { port = 0, host = '127.0.0.1', ...taskprofOptions } = options;
  const handler = taskprof(taskprofOptions);
  const server = http.createServer((req, res) => handler(req, res));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
