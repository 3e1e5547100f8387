// One in-process inspector session for the profilers (node:inspector), made on first use.
import { Session } from 'node:inspector';

let session: Session | undefined;

/** Closes the session (the last mount closing); the next post opens a new one. */
export function disconnectInspector(): void {
  session?.disconnect();
  session = undefined;
}

/** Sends a DevTools protocol command to this process's own V8. */
export function post<T = unknown>(method: string, params?: object): Promise<T> {
  if (session === undefined) {
    session = new Session();
    session.connect();
  }
  const current = session;
  return new Promise((resolve, reject) => {
    current.post(method, params ?? {}, (error, result) => (error ? reject(error) : resolve(result as T)));
  });
}
