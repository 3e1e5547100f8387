// Express 4 and 5: app.use(taskprof(options)).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mount } from '../src/http/mount.js';
import type { TaskprofOptions } from '../src/options.js';
import type { Labels } from '../src/labels/labels.js';

export type { TaskprofOptions } from '../src/options.js';

interface ExpressRoute {
  path?: unknown;
}

interface ExpressLayer {
  route?: ExpressRoute;
  handle?: { stack?: unknown };
  /** Express 5 (router 2): the path the layer was made with. */
  rawPath?: unknown;
  /** Express 4: the compiled path, and its parameters. */
  regexp?: RegExp;
  keys?: Array<{ name?: unknown }>;
}

interface ExpressApp {
  mountpath?: unknown;
  parent?: ExpressApp;
  router?: { stack?: unknown };
  _router?: { stack?: unknown };
}

interface ExpressRequest extends IncomingMessage {
  url: string;
  app?: ExpressApp;
  route?: ExpressRoute;
}

// Where the route template of a mount cannot be told (a RegExp or an array
// of paths): never the raw path, which may hold personal data and has no bound.
const unknownMount = '/(mount)';

// Express 4's compiled mount paths back to their templates: `/t/:tenant`
// compiles to ^\/t(?:\/([^/]+?))\/?(?=\/|$). Anything else is unknownMount.
function templateFromRegExp(layer: ExpressLayer): string {
  const regexp = layer.regexp;
  if (regexp === undefined) return unknownMount;
  if ((regexp as RegExp & { fast_slash?: boolean }).fast_slash === true) return '';
  let source = regexp.source.replace(/^\^/, '').replace(/\\\/\?\(\?=\\\/\|\$\)$/, '');
  const names = (layer.keys ?? []).map((key) => String(key.name));
  let index = 0;
  const param = (): string => `:${names[index++] ?? 'param'}`;
  // One pass, so that parameters are named in the order they appear.
  source = source
    .replace(/\(\?:\\\/\(\[\^\/\]\+\?\)\)|\(\?:\(\(\?:\(\?!\\\/\|.\)\.\)\+\?\)\)/g, (group) => (group.startsWith('(?:\\/') ? '/' : '') + param())
    .replace(/\\([/.\-])/g, '$1');
  return index === names.length && !/[()[\]*+?|\\^$]/.test(source) ? source : unknownMount;
}

function layerTemplate(layer: ExpressLayer): string {
  const raw = layer.rawPath;
  if (typeof raw === 'string') return raw === '/' ? '' : raw.replace(/\/$/, '');
  if (raw !== undefined) return unknownMount;
  return templateFromRegExp(layer);
}

// The templates of the routers between an app and `route`, outermost first.
function routerChain(stack: unknown, route: ExpressRoute, depth: number): string[] | undefined {
  if (!Array.isArray(stack) || depth > 32) return undefined;
  for (const layer of stack as ExpressLayer[]) {
    if (layer.route === route) return [];
    const inner = layer.handle?.stack;
    if (!Array.isArray(inner)) continue;
    const chain = routerChain(inner, route, depth + 1);
    if (chain !== undefined) return [layerTemplate(layer), ...chain];
  }
  return undefined;
}

// Express 4 keeps the router in _router (its app.router getter throws); Express 5 in router.
function routerStackOf(app: ExpressApp): unknown {
  if (app._router !== undefined) return app._router.stack;
  try {
    return app.router?.stack;
  } catch {
    return undefined;
  }
}

// Sub-apps' mount paths, outermost first.
function appChain(app: ExpressApp): string {
  let out = '';
  for (let at: ExpressApp | undefined = app; at?.parent !== undefined; at = at.parent) {
    const mountpath = at.mountpath;
    out = (typeof mountpath === 'string' ? (mountpath === '/' ? '' : mountpath.replace(/\/$/, '')) : unknownMount) + out;
  }
  return out;
}

// A route's full template (mount paths included), found once per route
// object: app.use('/t/:tenant', router) labels `/t/:tenant/orders/:order`,
// never the tenant's value.
const templates = new WeakMap<ExpressRoute, string>();

function templateOf(req: ExpressRequest, route: ExpressRoute, path: string): string {
  const known = templates.get(route);
  if (known !== undefined) return known;
  const app = req.app;
  const chain = app === undefined ? undefined : routerChain(routerStackOf(app), route, 0);
  if (chain === undefined) return unknownMount + path;
  const template = appChain(app!) + chain.join('') + path;
  templates.set(route, template);
  return template;
}

// The route template is known only once Express has matched a route, so it
// is read late: when a task is recorded, and when a listing is made. Through a
// weak reference, so that a task outliving its request does not keep req alive.
function routeOf(ref: WeakRef<ExpressRequest>): Labels | undefined {
  const req = ref.deref();
  const route = req?.route;
  const path = route?.path;
  if (typeof path !== 'string') return undefined;
  return { route: templateOf(req!, route!, path) };
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
