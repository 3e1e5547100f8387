// Story 4, fixed: readiness is a promise made when connecting, which every
// handler can await at any time, before or after the event.
import { EventEmitter, once } from 'node:events';
import express from 'express';
import taskprof from 'taskprof/express';
import { serveIfMain } from '../serve.mjs';

class Database extends EventEmitter {
  connect() {
    this.ready = once(this, 'ready'); // FIX: remembered, not missed
    setImmediate(() => this.emit('ready'));
  }

  query(sql) {
    return [{ sql, rows: 1 }];
  }
}

export function createApp(options) {
  const db = new Database();
  db.connect();
  const app = express();
  app.use(taskprof(options));
  app.get('/users', async (req, res) => {
    await db.ready;
    res.json(db.query('select * from users'));
  });
  return app;
}

await serveIfMain(import.meta.url, createApp, { paths: ['/users'], note: 'Handlers await a readiness promise made at start-up.' });
