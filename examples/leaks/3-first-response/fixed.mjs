// Story 3, fixed: once the first answer is in, an AbortController cancels
// the losers' sends (those already waiting, and those still to come), and
// the channel is closed.
import Fastify from 'fastify';
import taskprof from 'taskprof/fastify';
import { Channel, askBackend } from './channel.mjs';
import { serveIfMain } from '../serve.mjs';

export async function createApp(options) {
  const app = Fastify();
  await app.register(taskprof, options);
  app.get('/quote', async () => {
    const answers = new Channel();
    const losers = new AbortController();
    const sends = [];
    for (const [name, ms] of [['fast', 5], ['medium', 20], ['slow', 40]]) {
      // FIX: a backend that answers after the first one sends nothing (an
      // abort listener added once the signal has aborted would never fire).
      sends.push(askBackend(name, ms).then((quote) => (losers.signal.aborted ? undefined : answers.send(quote, { signal: losers.signal }))));
    }
    const first = await answers.receive();
    losers.abort(); // FIX: the slower answers are not wanted any more
    answers.close();
    // Let the losers end (their sends reject with the abort) without an unhandled rejection.
    Promise.allSettled(sends);
    return first;
  });
  return app;
}

await serveIfMain(import.meta.url, createApp, { paths: ['/quote'], note: 'The losers are cancelled once the first answer is in.' });
