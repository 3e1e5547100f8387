// Story 7, fixed: every outbound call has a deadline (AbortSignal.timeout),
// and the handler answers 504 when it passes.
import http from 'node:http';
import express from 'express';
import taskprof from 'taskprof/express';
import { startSilentBackend } from './leaky.mjs';
import { serveIfMain } from '../serve.mjs';

function getJson(url, signal) {
  return new Promise((resolve, reject) => {
    http.get(url, { signal }, (res) => { // FIX: the signal ends the request and its socket
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve(JSON.parse(body)));
    }).on('error', reject);
  });
}

export async function createApp(options) {
  const backend = await startSilentBackend();
  const app = express();
  app.locals.backend = backend; // for whoever shuts the app down
  app.use(taskprof(options));
  app.get('/stock/:sku', async (req, res) => {
    try {
      const stock = await getJson(`http://127.0.0.1:${backend.address().port}/stock/${req.params.sku}`, AbortSignal.timeout(200));
      res.json(stock);
    } catch (error) {
      res.status(504).json({ error: `backend: ${error.name}` });
    }
  });
  return app;
}

await serveIfMain(import.meta.url, createApp, { paths: ['/stock/a1'], note: 'Each backend call gives up after 200 ms and the client gets 504.' });
