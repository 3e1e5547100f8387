// Story 3, the forgotten senders: a request asks three backends and answers
// with the fastest. The two slower ones finish later and wait to hand over a
// result nobody will ever receive.
import Fastify from 'fastify';
import taskprof from 'taskprof/fastify';
import { Channel, askBackend } from './channel.mjs';
import { serveIfMain } from '../serve.mjs';

export async function createApp(options) {
  const app = Fastify();
  await app.register(taskprof, options);
  app.get('/quote', async () => {
    const answers = new Channel();
    for (const [name, ms] of [['fast', 5], ['medium', 20], ['slow', 40]]) {
      askBackend(name, ms).then((quote) => answers.send(quote)); // LEAK: the losers wait in send() forever
    }
    return answers.receive();
  });
  return app;
}

await serveIfMain(import.meta.url, createApp, { paths: ['/quote'], note: 'Each request leaves two senders waiting on a channel nobody reads.' });
