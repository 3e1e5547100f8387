// Fastify 4 and 5: await app.register(taskprof, options). Register it before
// your routes so that their tasks get method and route labels.
import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { mount } from '../src/http/mount.js';
import type { TaskprofOptions } from '../src/options.js';

export type { TaskprofOptions } from '../src/options.js';

function routeOf(request: FastifyRequest): string | undefined {
  const legacy = request as unknown as { routerPath?: string };
  return request.routeOptions?.url ?? legacy.routerPath;
}

const plugin: FastifyPluginCallback<TaskprofOptions> = (fastify: FastifyInstance, options, done) => {
  const taskprof = mount(options);

  fastify.addHook('onRequest', (request, _reply, next) => {
    taskprof.runRouted(request.method, routeOf(request), () => next());
  });

  // Registered inside a prefixed plugin, the routes are under its prefix:
  // taskprof's own paths are relative to it.
  const mountPrefix = fastify.prefix ?? '';
  const serve = (request: FastifyRequest, reply: FastifyReply): void => {
    reply.hijack();
    const url = request.raw.url ?? '/';
    taskprof.serve(request.raw, reply.raw, request, mountPrefix !== '' && url.startsWith(mountPrefix) ? url.slice(mountPrefix.length) : url);
  };
  // A CPU profile in flight must not hold the app's close for its full length:
  // preClose runs before Fastify waits for requests in flight.
  fastify.addHook('preClose', (closing) => {
    taskprof.abortInFlight();
    closing();
  });
  fastify.addHook('onClose', async () => taskprof.unmount());

  // Only taskprof's own paths, so the app keeps the rest of the prefix.
  for (const path of taskprof.handler.routes) fastify.all(path, serve);
  done();
};

export default fastifyPlugin(plugin, { name: 'taskprof', fastify: '4.x || 5.x' });
