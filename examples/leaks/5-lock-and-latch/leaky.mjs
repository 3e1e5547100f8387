// Story 5, the mutex and WaitGroup stories:
// - /transfer takes a lock and returns early on a bad amount without
//   releasing it: every later transfer waits for the lock forever.
// - /report waits on a latch set to four parts while only three run.
//   Reports in progress are listed in `reports` (for a status page).
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
    await ledger.acquire(); // LEAK: waits forever once a bad amount returned without release()
    const amount = Number(req.params.amount);
    if (!(amount > 0)) return res.status(400).json({ error: 'bad amount' });
    balance -= amount;
    ledger.release();
    res.json({ balance });
  });
  app.get('/report', async (req, res) => {
    const parts = ['sales', 'refunds', 'fees'];
    const done = new Latch(4); // expects four parts; only three run
    const id = nextReport++;
    reports.set(id, done);
    for (const part of parts) buildPart(part).then(() => done.countDown());
    await done.wait(); // LEAK: the count never reaches zero
    reports.delete(id);
    res.json({ id, parts });
  });
  return app;
}

await serveIfMain(import.meta.url, createApp, {
  paths: ['/transfer/0', '/transfer/5', '/report'],
  note: 'A bad amount leaves the ledger locked; every report waits on a latch that never opens.',
});
