// Story 1, fixed: the cache has close(), and whoever makes one closes it.
import express from 'express';
import taskprof from 'taskprof/express';
import { serveIfMain } from '../serve.mjs';

export class TtlCache {
  constructor(ttlMs) {
    this.ttlMs = ttlMs;
    this.entries = new Map();
    this.sweeper = setInterval(() => this.sweep(), ttlMs);
  }

  get(key) {
    const entry = this.entries.get(key);
    return entry && entry.expires > Date.now() ? entry.value : undefined;
  }

  set(key, value) {
    this.entries.set(key, { value, expires: Date.now() + this.ttlMs });
  }

  sweep() {
    const now = Date.now();
    for (const [key, entry] of this.entries) if (entry.expires <= now) this.entries.delete(key);
  }

  /** Stops the sweeper; the cache is unusable after. */
  close() {
    clearInterval(this.sweeper);
    this.entries.clear();
  }
}

export function createApp(options) {
  const app = express();
  app.use(taskprof(options));
  app.get('/price/:sku', (req, res) => {
    const cache = new TtlCache(60_000);
    try {
      cache.set(req.params.sku, { sku: req.params.sku, price: 42 });
      res.json(cache.get(req.params.sku));
    } finally {
      cache.close(); // FIX
    }
  });
  return app;
}

await serveIfMain(import.meta.url, createApp, { paths: ['/price/a1'], note: 'Each request closes the cache it made.' });
