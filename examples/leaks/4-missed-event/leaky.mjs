// Story 4, waiting for an event that never comes (Node's receive on a nil
// channel): the database emits 'ready' once, at start-up. A handler that
// awaits once(db, 'ready') after that waits forever, and the long-lived
// emitter keeps its listener, and the request's promises, alive.
import { EventEmitter, once } from 'node:events';
import express from 'express';
import taskprof from 'taskprof/express';
import { serveIfMain } from '../serve.mjs';

class Database extends EventEmitter {
  connect() {
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
    await once(db, 'ready'); // LEAK: 'ready' fired at start-up; this waits forever
    res.json(db.query('select * from users'));
  });
  return app;
}

await serveIfMain(import.meta.url, createApp, { paths: ['/users'], note: "Each request waits for a 'ready' event that fired at start-up (curl gives up after 1 s)." });
