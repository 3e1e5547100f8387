// Where a command points: `http://127.0.0.1:3000/debug`, a bare port (a
// `listen()` port, or an app's, with taskprof's default prefix), or a URL
// without a path (the default prefix). The token comes from --token or
// TASKPROF_TOKEN and is sent, never printed.
import http from 'node:http';
import https from 'node:https';

export interface Target {
  /** The prefix URL, without a trailing slash: http://127.0.0.1:3000/debug. */
  readonly base: string;
  readonly token: string | undefined;
}

export class CliError extends Error {}

const defaultPrefix = '/debug';

export function parseTarget(arg: string | undefined, token: string | undefined): Target {
  if (arg === undefined || arg === '') throw new CliError('a target is needed: a URL such as http://127.0.0.1:3000/debug, or a port');
  let url: URL;
  if (/^\d+$/.test(arg)) {
    if (Number(arg) < 1 || Number(arg) > 65535) throw new CliError(`a port is 1 to 65535, got ${arg}`);
    url = new URL(`http://127.0.0.1:${arg}${defaultPrefix}`);
  } else {
    try {
      url = new URL(/^[a-z]+:\/\//i.test(arg) ? arg : `http://${arg}`);
    } catch {
      throw new CliError(`not a URL or a port: ${arg}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CliError(`only http and https URLs are served: ${arg}`);
    if (url.pathname === '/' || url.pathname === '') url.pathname = defaultPrefix;
  }
  // A URL of a taskprof page is taken to its prefix: .../debug/pprof/tasks -> .../debug.
  const pprof = url.pathname.search(/\/pprof(\/|$)/);
  const prefix = (pprof === -1 ? url.pathname : url.pathname.slice(0, pprof)).replace(/\/+$/, '');
  return { base: `${url.protocol}//${url.host}${prefix}`, token: token === '' ? undefined : token };
}

export interface Fetched {
  status: number;
  contentType: string;
  body: Buffer;
}

/** GET `path` (under the prefix) with the token; rejects with a CliError saying what failed. */
export function get(target: Target, path: string, timeoutMs = 30_000, accept?: string): Promise<Fetched> {
  const url = new URL(target.base + path);
  const headers: Record<string, string> = { 'User-Agent': 'taskprof-cli' };
  if (target.token !== undefined) headers.Authorization = `Bearer ${target.token}`;
  if (accept !== undefined) headers.Accept = accept;
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.get(url, { headers, timeout: timeoutMs, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks) }));
      res.on('error', (error) => reject(new CliError(`${url.href}: ${error.message}`)));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', (error) => reject(new CliError(`${url.origin}${url.pathname}: ${error.message}`)));
  });
}

/** GET and require 200; a refusal says what the server said (401/403 hint at the token). */
export async function getOk(target: Target, path: string, timeoutMs?: number): Promise<Fetched> {
  const res = await get(target, path, timeoutMs);
  if (res.status === 200) return res;
  const said = res.body.toString('utf8').trim().split('\n')[0] ?? '';
  const hint = res.status === 401 || res.status === 403 ? ' (set --token or TASKPROF_TOKEN, or run on the host: taskprof answers loopback clients without a token)' : '';
  throw new CliError(`${target.base}${path.split('?')[0]}: ${res.status} ${said}${hint}`);
}

export async function getJson<T>(target: Target, path: string, timeoutMs?: number): Promise<T> {
  const res = await getOk(target, path, timeoutMs);
  try {
    return JSON.parse(res.body.toString('utf8')) as T;
  } catch {
    throw new CliError(`${target.base}${path.split('?')[0]}: the answer is not JSON (is this a taskprof endpoint?)`);
  }
}
