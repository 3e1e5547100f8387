// Story 6, the background loop that never stops (the sayHello story): each
// request starts a presence heartbeat for its user, and nothing ever stops it.
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify from 'fastify';
import taskprof from 'taskprof/fastify';
import { serveIfMain } from '../serve.mjs';

const lastSeen = new Map();

async function heartbeat(user) {
  for (;;) {
    lastSeen.set(user, Date.now());
    await sleep(1000); // LEAK: loops forever, one loop per request
  }
}

export async function createApp(options) {
  const app = Fastify();
  await app.register(taskprof, options);
  app.get('/hello/:user', async (request) => {
    heartbeat(request.params.user);
    return `hello ${request.params.user}`;
  });
  return app;
}

await serveIfMain(import.meta.url, createApp, { paths: ['/hello/ann'], note: 'Each request starts a heartbeat loop that never ends.' });
