// Compiled (not run) by `npm test`: the public types work as users write them.
import express from 'express';
import Fastify from 'fastify';
import http from 'node:http';
import taskprofExpress from 'taskprof/express';
import taskprofFastify from 'taskprof/fastify';
import taskprofHttp, { listen } from 'taskprof/http';
import { startTracking, stopTracking, taskCount, taskCounts, withLabels, writeProfile, type TaskprofOptions } from 'taskprof';
import { Registry, register as defaultRegister, collectDefaultMetrics } from 'prom-client';
import { expectNoLeaks, startLeakCheck, LeakError, type LeakCheckOptions } from 'taskprof/testing';

const options: TaskprofOptions = {
  prefix: '/debug',
  tracking: 'sampled',
  token: 'secret',
  authorize: (request) => request.headers['x-admin'] === 'yes' && request.method === 'GET',
  heapSnapshot: false,
  maxProfileSeconds: 60,
  engine: 'inspector',
  heapSampling: 'inuse',
  leakDetection: { intervalMs: 10_000, windowMs: 30 * 60_000, minSamples: 12, minGrowth: 10 },
  metricsPrefix: 'taskprof_',
  maxRoutes: 100,
  dumpOnSignal: 'SIGUSR2',
  dumpPath: '/tmp/tasks.txt',
};

// The app's own registry (either content type) or prom-client's default one.
const appRegistry = new Registry();
collectDefaultMetrics({ register: appRegistry });
taskprofExpress({ register: appRegistry, leakDetection: false });
taskprofExpress({ register: defaultRegister });
// @ts-expect-error: not a registry
taskprofExpress({ register: 'default' });

const app = express();
const middleware = taskprofExpress(options);
app.use(middleware);
const closed: Promise<void> = middleware.close();

const fastify = Fastify();
await fastify.register(taskprofFastify, { prefix: '/ops', tracking: 'counts' });

const debug = taskprofHttp();
http.createServer((req, res) => debug(req, res, () => res.end('app')));
await debug.close();
await closed;
const server: http.Server = await listen({ port: 6060, host: '127.0.0.1' });
server.close();

const n: number = taskCount();
const types: string[] = taskCounts().map((c) => c.type);
const result: Promise<number> = withLabels({ job: 'x' }, async () => n + types.length);
await writeProfile('tasks', process.stdout, { debug: 1 });
startTracking({ mode: 'full', stackBudget: 0.02 });
stopTracking();
await result;

// @ts-expect-error: not a tracking mode
startTracking({ mode: 'loud' });
// @ts-expect-error: not an option value
taskprofExpress({ tracking: 'sometimes' });

// taskprof/testing
const checkOptions: LeakCheckOptions = { timeoutMs: 500, ignore: ['pool.js', /keepalive/], ignoreTypes: ['TCPWRAP'], ignoreCreatedBy: ['startServer'], ignoreCurrent: true };
const check = startLeakCheck(checkOptions);
await check.verify();
const out: number = await expectNoLeaks(async () => 1, { timeoutMs: 100 });
try {
  await expectNoLeaks(() => {});
} catch (error) {
  if (error instanceof LeakError) console.log(error.leaks.map((l) => l.stack[0]?.file).join(), out);
}
// @ts-expect-error: not a signal
taskprofExpress({ dumpOnSignal: 'SIGNOPE' });
