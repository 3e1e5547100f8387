// npm run demo: an Express app with two real leaks and taskprof mounted.
// It sends itself a little traffic so the leaks show at once; curl the URLs it prints.
import express from 'express';
import taskprof from 'taskprof/express';
import { TtlCache } from './demo/ttl-cache.mjs';

const app = express();
// The default mode (exact counts, every stack while capturing them stays
// within 1% of the CPU), with the growth detector sampling every 2 s (not
// 10) so that /debug/pprof/leaks flags both leaks in about half a minute.
app.use(taskprof({ leakDetection: { intervalMs: 2000 } }));

// Leak 1: a new cache (and so a new interval) per request.
app.get('/users/:id', (req, res) => {
  const cache = new TtlCache(60_000);
  cache.set(req.params.id, { id: req.params.id });
  res.json(cache.get(req.params.id));
});

// Leak 2: waits for a reply that never comes; the client gives up, the handler never does.
const neverAnswered = new Set();
function askBackend() {
  return new Promise((resolve) => neverAnswered.add(resolve)); // nobody ever calls resolve
}
app.get('/report', async (req, res) => {
  const report = await askBackend();
  res.json(report);
});

app.get('/', (req, res) => res.send('taskprof demo: see the console for URLs\n'));

const port = Number(process.env.PORT ?? 3000);
const server = app.listen(port, '127.0.0.1', () => {
  const base = `http://127.0.0.1:${server.address().port}`;
  console.log(`taskprof demo listening on ${base}

  curl '${base}/debug/pprof/tasks?debug=1'      live tasks grouped by creation stack
  curl '${base}/debug/pprof/tasks?debug=2'      every task, with who created it
  curl '${base}/debug/pprof/tasks?debug=1&format=json'
  curl '${base}/debug/pprof/tasks?debug=1&seconds=10'   what changed in 10 s
  curl '${base}/debug/pprof/leaks?debug=1'      groups growing steadily (after ~30 s)
  curl '${base}/debug/metrics'                  Prometheus metrics
  go tool pprof -top '${base}/debug/pprof/tasks'
  open ${base}/debug/pprof/ in a browser        (a chart of live tasks by type)

The demo calls /users/:id and /report on itself every 200 ms, so both leaks grow. Ctrl-C to stop.`);
  let n = 0;
  const traffic = setInterval(() => {
    n++;
    fetch(`${base}/users/${n}`).then((r) => r.text(), () => {});
    const controller = new AbortController();
    fetch(`${base}/report`, { signal: controller.signal }).catch(() => {});
    setTimeout(() => controller.abort(), 100);
  }, 200);
  process.once('SIGINT', () => {
    clearInterval(traffic);
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
});
