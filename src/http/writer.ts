// The one response writer: a DebugResponse onto node's ServerResponse, for
// every adapter. Streams with back-pressure and stops when the client goes;
// a plain 500 only while headers are unsent.
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { DebugResponse } from './handler.js';
import { MSG_INTERNAL, serveError } from '../errors.js';

/** Writes `response` to `res` (headers only for HEAD); never throws. */
export function writeResponse(res: ServerResponse, response: DebugResponse, head: boolean): void {
  if (res.headersSent || res.destroyed) {
    if (response.body instanceof Readable) response.body.destroy();
    return;
  }
  const body = response.body;
  const sendHead = (): void => {
    res.statusCode = response.status;
    for (const [name, value] of Object.entries(response.headers)) res.setHeader(name, value);
  };
  if (body instanceof Readable) {
    if (head) {
      body.destroy();
      sendHead();
      res.end();
      return;
    }
    void streamBody(res, body, sendHead);
    return;
  }
  sendHead();
  if (body !== undefined) res.setHeader('Content-Length', typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
  if (head || body === undefined) res.end();
  else res.end(body);
}

/**
 * Streams a body with back-pressure. The status and headers go out with
 * the first chunk, so that a body failing before it gets a plain 500 (no
 * success headers, no Content-Disposition); one failing later cuts the
 * connection, the only way left to say the body is incomplete.
 */
async function streamBody(res: ServerResponse, body: Readable, sendHead: () => void): Promise<void> {
  const stop = (): void => {
    body.destroy();
  };
  res.once('close', stop);
  // As body.pipe(res) would: what watches the response for 'pipe' sees the body.
  res.emit('pipe', body);
  try {
    for await (const chunk of body) {
      if (res.destroyed) return;
      if (!res.headersSent) sendHead();
      if (!res.write(chunk)) await drained(res, body);
    }
    if (res.destroyed) return;
    if (!res.headersSent) sendHead();
    res.end();
  } catch {
    if (res.destroyed) return;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // Nothing of the success answer was sent: the plain 500 alone.
    const failed = serveError(500, MSG_INTERNAL);
    res.statusCode = failed.status;
    for (const [name, value] of Object.entries(failed.headers)) res.setHeader(name, value);
    res.end(failed.body);
  } finally {
    res.off('close', stop);
  }
}

/** Resolves once `res` can take more, or either end closed (a body cut off by its own watchdog, say). */
function drained(res: ServerResponse, body: Readable): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      body.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
    body.on('close', done);
  });
}

