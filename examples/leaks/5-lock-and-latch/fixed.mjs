// Story 5, fixed: the lock is released in `finally`, whatever the path; the
// latch counts the parts as each one starts, so it cannot expect more.
import express from 'express';
import taskprof from 'taskprof/express';
import { Mutex, Latch, buildPart } from './sync.mjs';
import { serveIfMain } from '../serve.mjs';

export function createApp(options) {
  const ledger = new Mutex();
  const reports = new Map();
  let balance = 100;
  let nextReport = 1;
  const app = express();
  app.use(taskprof(options));
  app.get('/transfer/:amount', async (req, res) => {
    await ledger.acquire();
    try {
      const amount = Number(req.params.amount);
      if (!(amount > 0)) return res.status(400).json({ error: 'bad amount' });
      balance -= amount;
      res.json({ balance });
    } finally {
      ledger.release(); // FIX: on every path
    }
  });
  app.get('/report', async (req, res) => {
    const parts = ['sales', 'refunds', 'fees'];
    const done = new Latch(0);
    const id = nextReport++;
    reports.set(id, done);
    const started = parts.map((part) => {
      done.add(); // FIX: one count per part, as it starts
      return buildPart(part).then(() => done.countDown());
    });
    await Promise.all([done.wait(), ...started]);
    reports.delete(id);
    res.json({ id, parts });
  });
  return app;
}

await serveIfMain(import.meta.url, createApp, { paths: ['/transfer/0', '/transfer/5', '/report'], note: 'The lock is released on every path; the latch counts what it waits for.' });
