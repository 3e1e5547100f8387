// Runs one leak example as a server on 127.0.0.1 (PORT, default 3000) and
// prints what to curl. Every example exports createApp(options), so that
// tests can start it on port 0 with their own taskprof options.
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** Listens on 127.0.0.1 (a Fastify instance or an Express app); resolves to the base URL. */
export async function listenApp(app, port) {
  if (typeof app.ready === 'function') {
    await app.listen({ port, host: '127.0.0.1' });
    return `http://127.0.0.1:${app.server.address().port}`;
  }
  const server = await new Promise((resolve) => {
    const s = app.listen(port, '127.0.0.1', () => resolve(s));
  });
  return `http://127.0.0.1:${server.address().port}`;
}

/**
 * Starts `createApp()` when `moduleUrl` is the file node was asked to run.
 * TASKPROF_OPTIONS (JSON) is passed to taskprof: the tests set
 * '{"tracking":"full"}' for exact counts.
 */
export async function serveIfMain(moduleUrl, createApp, { paths, note }) {
  if (process.argv[1] !== fileURLToPath(moduleUrl)) return;
  const app = await createApp(JSON.parse(process.env.TASKPROF_OPTIONS ?? '{}'));
  const base = await listenApp(app, Number(process.env.PORT ?? 3000));
  const name = path.relative(process.cwd(), fileURLToPath(moduleUrl));
  console.log(`${name} on ${base}
${note}
  ${paths.map((p) => `curl -m 1 '${base}${p}'`).join('\n  ')}      (a few times)
  curl '${base}/debug/pprof/tasks?debug=1'      the leaking line, with a count that grows per request
Ctrl-C to stop.`);
}
