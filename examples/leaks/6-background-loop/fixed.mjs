// Story 6, fixed: the loop takes an AbortSignal, and the request's end aborts it.
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify from 'fastify';
import taskprof from 'taskprof/fastify';
import { serveIfMain } from '../serve.mjs';

const lastSeen = new Map();

async function heartbeat(user, signal) {
  try {
    while (!signal.aborted) {
      lastSeen.set(user, Date.now());
      await sleep(1000, undefined, { signal });
    }
  } catch (error) {
    if (error.name !== 'AbortError') throw error;
  }
}

export async function createApp(options) {
  const app = Fastify();
  await app.register(taskprof, options);
  app.get('/hello/:user', async (request, reply) => {
    const stop = new AbortController();
    reply.raw.once('close', () => stop.abort()); // FIX: the loop lives as long as the request
    heartbeat(request.params.user, stop.signal);
    return `hello ${request.params.user}`;
  });
  return app;
}

await serveIfMain(import.meta.url, createApp, { paths: ['/hello/ann'], note: "Each heartbeat stops when its request's response closes." });
