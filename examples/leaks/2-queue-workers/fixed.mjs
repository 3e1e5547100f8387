// Story 2, fixed: the producer closes the queue when the batch is in, and
// every `for await` over it ends.
import express from 'express';
import taskprof from 'taskprof/express';
import { AsyncQueue } from './queue.mjs';
import { serveIfMain } from '../serve.mjs';

async function worker(queue, results) {
  for await (const job of queue) results.push(job * 2);
}

export function createApp(options) {
  const app = express();
  app.use(taskprof(options));
  app.get('/batch/:size', async (req, res) => {
    const size = Number(req.params.size) || 3;
    const queue = new AsyncQueue();
    const results = [];
    const workers = [];
    for (let i = 0; i < 3; i++) workers.push(worker(queue, results));
    for (let i = 0; i < size; i++) queue.push(i);
    queue.close(); // FIX: no more items; the workers finish what is queued and stop
    await Promise.all(workers);
    res.json(results);
  });
  return app;
}

await serveIfMain(import.meta.url, createApp, { paths: ['/batch/6'], note: 'The queue is closed once the batch is in; the workers end.' });
