// Story 2, the abandoned receivers: a batch is split over three workers that
// read a queue with `for await`. The handler waits for every result, answers,
// and never closes the queue: the workers wait for a next item forever.
import express from 'express';
import taskprof from 'taskprof/express';
import { AsyncQueue } from './queue.mjs';
import { serveIfMain } from '../serve.mjs';

async function worker(queue, results) {
  for await (const job of queue) { // LEAK: waits forever, the queue is never closed
    results.push(job * 2);
  }
}

export function createApp(options) {
  const app = express();
  app.use(taskprof(options));
  app.get('/batch/:size', async (req, res) => {
    const size = Number(req.params.size) || 3;
    const queue = new AsyncQueue();
    const results = [];
    for (let i = 0; i < 3; i++) worker(queue, results);
    for (let i = 0; i < size; i++) queue.push(i);
    while (results.length < size) await new Promise((resolve) => setImmediate(resolve));
    res.json(results);
  });
  return app;
}

await serveIfMain(import.meta.url, createApp, { paths: ['/batch/6'], note: 'Each batch leaves three workers waiting on a queue nobody closes.' });
