// Story 7, I/O without a timeout: the handler calls a backend that accepts
// the connection and never answers. With no timeout, the request, its socket
// and the handler wait forever. The silent backend runs in the same process.
import http from 'node:http';
import net from 'node:net';
import express from 'express';
import taskprof from 'taskprof/express';
import { serveIfMain } from '../serve.mjs';

/** A backend that accepts connections and never writes a byte. */
export async function startSilentBackend() {
  // It reads (and ignores) what comes, so that it sees a client hang up and closes its side.
  const server = net.createServer((socket) => socket.resume());
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function getJson(url) {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => { // LEAK: no timeout; the backend never answers
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve(JSON.parse(body)));
    }).on('error', reject);
  });
}

export async function createApp(options) {
  const backend = await startSilentBackend();
  const app = express();
  app.use(taskprof(options));
  app.get('/stock/:sku', async (req, res) => {
    const stock = await getJson(`http://127.0.0.1:${backend.address().port}/stock/${req.params.sku}`);
    res.json(stock);
  });
  return app;
}

await serveIfMain(import.meta.url, createApp, { paths: ['/stock/a1'], note: 'Each request waits forever on a backend that never answers (curl gives up after 1 s).' });
