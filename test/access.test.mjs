// Access control on real servers: authorize is asked about exactly what is
// served (no spelling of a path reaches another endpoint), proxy headers
// make a request non-local, and options that can never work are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import express from 'express';
import taskprof from 'taskprof/express';
import { listen } from 'taskprof/http';
import { MSG_NOT_LOCAL } from '../dist/src/errors.js';
import { rawRequest } from './helpers.mjs';

async function expressServer(options) {
  const app = express();
  const middleware = taskprof(options);
  app.use(middleware);
  app.get('/app', (_req, res) => res.send('app'));
  const server = http.createServer(app);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    async close() {
      await middleware.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

test('an allow-list authorize cannot be walked out of with dot segments or encoding', async () => {
  const asked = [];
  const server = await expressServer({
    authorize: (req) => {
      asked.push(req);
      return req.url.startsWith('/debug/pprof/tasks');
    },
  });
  try {
    for (const path of [
      '/debug/pprof/tasks/../cmdline',
      '/debug/pprof/tasks/%2e%2e/heapsnapshot',
      '/debug/pprof/tasks/.%2e/cmdline',
      '/debug/pprof/tasks/../../vars',
      '/debug/pprof/tasks/%2E%2E/%2E%2E/vars',
      '/debug/pprof/tasks/..%2fcmdline',
      '/debug/pprof/tasks/..\\cmdline',
    ]) {
      const res = await rawRequest(`http://127.0.0.1:${server.port}`, path);
      assert.equal(res.status, 400, `${path}: ${res.status} ${res.body}`);
      assert.match(res.body, /^Bad path: .+; send the canonical path \(such as \/debug\/pprof\/tasks\)\n$/, path);
    }
    // The canonical path is served, and authorize is told what it is.
    const ok = await rawRequest(`http://127.0.0.1:${server.port}`, '/debug/pprof/tasks?debug=1');
    assert.equal(ok.status, 200);
    const last = asked.at(-1);
    assert.equal(last.endpoint, 'tasks');
    assert.equal(last.path, '/debug/pprof/tasks');
    assert.equal(last.url, '/debug/pprof/tasks?debug=1');
  } finally {
    await server.close();
  }
});

test('a deny-list authorize cannot be passed by encoding or ./, and ../ never reaches the index', async () => {
  const server = await expressServer({ authorize: (req) => !req.url.includes('cmdline') });
  try {
    for (const path of ['/debug/pprof/cmd%6Cine', '/debug/pprof/./cmdline', '/debug/pprof/../../anything', '/debug/pprof//cmdline']) {
      const res = await rawRequest(`http://127.0.0.1:${server.port}`, path);
      assert.equal(res.status, 400, `${path}: ${res.status} ${res.body}`);
    }
    assert.equal((await rawRequest(`http://127.0.0.1:${server.port}`, '/debug/pprof/cmdline')).status, 403);
    assert.equal((await rawRequest(`http://127.0.0.1:${server.port}`, '/debug/pprof/tasks')).status, 200);
  } finally {
    await server.close();
  }
});

test('authorize by endpoint: aliases are given their profile\'s name; unknown paths have none', async () => {
  const asked = [];
  const server = await expressServer({
    authorize: (req) => {
      asked.push([req.path, req.endpoint]);
      return req.endpoint === 'tasks' || req.endpoint === undefined;
    },
  });
  try {
    assert.equal((await rawRequest(`http://127.0.0.1:${server.port}`, '/debug/pprof/goroutine?debug=1')).status, 200);
    assert.equal((await rawRequest(`http://127.0.0.1:${server.port}`, '/debug/pprof/tasks')).status, 200);
    assert.equal((await rawRequest(`http://127.0.0.1:${server.port}`, '/debug/pprof/cmdline')).status, 403);
    assert.equal((await rawRequest(`http://127.0.0.1:${server.port}`, '/debug/vars')).status, 403);
    assert.equal((await rawRequest(`http://127.0.0.1:${server.port}`, '/debug/metrics')).status, 403);
    assert.equal((await rawRequest(`http://127.0.0.1:${server.port}`, '/debug/pprof/')).status, 403);
    assert.equal((await rawRequest(`http://127.0.0.1:${server.port}`, '/debug/pprof/nosuch')).status, 404);
    assert.deepEqual(asked, [
      ['/debug/pprof/goroutine', 'tasks'],
      ['/debug/pprof/tasks', 'tasks'],
      ['/debug/pprof/cmdline', 'cmdline'],
      ['/debug/vars', 'vars'],
      ['/debug/metrics', 'metrics'],
      ['/debug/pprof/', 'index'],
      ['/debug/pprof/nosuch', undefined],
    ]);
  } finally {
    await server.close();
  }
});

test('every proxy header makes a loopback request non-local', async () => {
  const server = await listen();
  const { port } = server.address();
  try {
    assert.equal((await rawRequest(`http://127.0.0.1:${port}`, '/debug/pprof/cmdline')).status, 200, 'a plain loopback request is local');
    for (const header of [
      'forwarded',
      'x-forwarded-for',
      'x-forwarded-host',
      'x-forwarded-proto',
      'x-real-ip',
      'via',
      'true-client-ip',
      'cf-connecting-ip',
      'x-client-ip',
      'x-cluster-client-ip',
      'fastly-client-ip',
    ]) {
      const res = await rawRequest(`http://127.0.0.1:${port}`, '/debug/pprof/cmdline', { headers: { [header]: header === 'via' ? '1.1 nginx' : '127.0.0.1' } });
      assert.equal(res.status, 403, header);
      assert.equal(res.body, MSG_NOT_LOCAL, header);
    }
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

test('a token that no request could match is refused when mounting, naming the option', () => {
  for (const token of [' secret', 'secret ', 'sec\nret', 'sec\tret', 'sécret', 'se cret', '']) {
    assert.throws(() => taskprof({ token }), { name: 'TypeError', message: /option "token"/ }, JSON.stringify(token));
  }
  const ok = taskprof({ token: 'Abc-123._~+/=' });
  return ok.close();
});

test('an unknown option is a TypeError naming it and the known ones', () => {
  assert.throws(() => taskprof({ prefx: '/x' }), { name: 'TypeError', message: /unknown option "prefx"; the options are prefix, tracking, / });
});
