// Who may read the debug endpoints: loopback only unless the app says otherwise.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { DebugRequestInfo, ResolvedOptions } from '../options.js';
import { MSG_BAD_TOKEN, MSG_NOT_AUTHORIZED, MSG_NOT_LOCAL } from '../errors.js';

export type AccessDecision = { allowed: true } | { allowed: false; status: 401 | 403; body: string; headers?: Record<string, string> };

// Headers a proxy or CDN adds: a request that carries one came through it,
// whatever its socket's address. (A same-host proxy that adds none cannot be
// told apart from a local client: README, Security.)
const proxyHeaders = [
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
] as const;


export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return v4.startsWith('127.') || address === '::1';
}

export function hasProxyHeaders(headers: IncomingHttpHeaders): boolean {
  return proxyHeaders.some((name) => headers[name] !== undefined);
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

// Digests have equal length, so the comparison takes the same time whatever the input.
function bearerMatches(headers: IncomingHttpHeaders, token: string): boolean {
  const header = headers.authorization;
  if (typeof header !== 'string') return false;
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (match === null) return false;
  return timingSafeEqual(digest(match[1]!), digest(token));
}

export async function checkAccess(request: DebugRequestInfo, options: ResolvedOptions): Promise<AccessDecision> {
  const { token, authorize } = options;
  if (token !== undefined && bearerMatches(request.headers, token)) return { allowed: true };
  if (authorize !== undefined) {
    let ok = false;
    try {
      ok = (await authorize(request)) === true;
    } catch {
      ok = false;
    }
    return ok ? { allowed: true } : { allowed: false, status: 403, body: MSG_NOT_AUTHORIZED };
  }
  if (token !== undefined) {
    return { allowed: false, status: 401, body: MSG_BAD_TOKEN, headers: { 'WWW-Authenticate': 'Bearer realm="taskprof"' } };
  }
  if (isLoopback(request.remoteAddress) && !hasProxyHeaders(request.headers)) return { allowed: true };
  return { allowed: false, status: 403, body: MSG_NOT_LOCAL };
}
