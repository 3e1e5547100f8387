// `taskprof attach <pid>`: gops's model for Node. Open the process's
// inspector on 127.0.0.1 the way Node itself offers (SIGUSR1), load this
// taskprof's tracker into it with a debug listener on a loopback port, and
// serve or print the listings. Detaching closes the listener (which stops
// tracking) and the inspector if attach opened it: the process is as it
// was, but for taskprof's modules, which stay loaded and idle. Anyone who
// may signal a process may already open its inspector: attach adds no
// power, and refuses where it would widen access (another user's process,
// an inspector bound beyond loopback).
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { CliError } from './target.js';
import { catchesSignal, inspectFlags, isLoopback, isNode, listeningSockets, processInfo } from './procfs.js';

export interface AttachSettings {
  pid: number;
  /** The inspector port; default: the process's --inspect-port, else 9229. */
  port: number | undefined;
  tracking: string;
  /** Print this listing level and detach; undefined: stay attached. */
  dump: 1 | 2 | undefined;
  /** Stay attached this long (undefined: until Ctrl-C). */
  seconds: number | undefined;
  log: (line: string) => void;
}

interface Evaluated<T> {
  result?: { value?: T };
  exceptionDetails?: { text: string; exception?: { description?: string } };
}

/** A DevTools protocol client over the inspector's WebSocket. */
class InspectorClient {
  #next = 0;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private constructor(private readonly socket: WebSocket) {
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: { message: string } };
      const waiter = message.id === undefined ? undefined : this.#pending.get(message.id);
      if (waiter === undefined) return;
      this.#pending.delete(message.id!);
      if (message.error !== undefined) waiter.reject(new CliError(`inspector: ${message.error.message}`));
      else waiter.resolve(message.result);
    });
    socket.addEventListener('close', () => {
      for (const waiter of this.#pending.values()) waiter.reject(new CliError('the inspector closed the connection'));
      this.#pending.clear();
    });
  }

  static async connect(url: string): Promise<InspectorClient> {
    const socket = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      socket.addEventListener('open', () => resolve(), { once: true });
      socket.addEventListener('error', () => reject(new CliError(`could not connect to the inspector at ${url}`)), { once: true });
    });
    return new InspectorClient(socket);
  }

  call<T>(method: string, params: object): Promise<T> {
    const id = ++this.#next;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.socket.send(JSON.stringify({ id, method, params }));
    });
  }

  /**
   * Evaluates in the process's main context; resolves to the value. Not with
   * the console's command line API: setting it up opens the process's stderr
   * (a handle the app would then see). `require` comes from createRequire.
   */
  async evaluate<T>(expression: string, withRequire = true): Promise<T> {
    const wrapped = withRequire ? `{ const require = process.getBuiltinModule('node:module').createRequire(${JSON.stringify(here)});\n${expression}\n}` : expression;
    const answer = await this.call<Evaluated<T>>('Runtime.evaluate', { expression: wrapped, awaitPromise: true, returnByValue: true });
    if (answer.exceptionDetails !== undefined) throw new CliError(`in the process: ${answer.exceptionDetails.exception?.description ?? answer.exceptionDetails.text}`);
    return answer.result?.value as T;
  }

  close(): void {
    this.socket.close();
  }
}

type Targets = Array<{ webSocketDebuggerUrl: string }>;

/** The inspector's targets on a port: undefined when nothing listens there; throws when something does but does not answer. */
async function inspectorTargets(port: number): Promise<Targets | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/json/list`, { signal: AbortSignal.timeout(5000) });
    return (await res.json()) as Targets;
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause;
    if (cause?.code === 'ECONNREFUSED') return undefined;
    throw new CliError(`127.0.0.1:${port} is listening but is not answering as an inspector: ${(error as Error).message}`);
  }
}

const SIGUSR1 = 10;

/** Why attach refuses this process, if it does. */
export function refusal(pid: number, port?: number): string | undefined {
  const info = processInfo(pid);
  if (info === undefined) return `no process ${pid} (or /proc is not readable here)`;
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid) return `process ${pid} belongs to another user (uid ${info.uid}); attach only to your own processes`;
  if (!isNode(info)) return `process ${pid} is not Node (${info.argv[0] ?? '?'})`;
  const wide = inspectFlags(info).find((f) => f.host !== undefined && !isLoopback(f.host));
  if (wide !== undefined) return `process ${pid} has its inspector on ${wide.host} (${wide.flag}): attaching would use an inspector reachable from the network; refused`;
  // An inspector the app opened itself, beyond loopback.
  if (port !== undefined && listeningSockets(pid).some((s) => s.port === port && !s.loopback)) {
    return `process ${pid} listens on port ${port} beyond loopback: its inspector would be reachable from the network; refused`;
  }
  if (!catchesSignal(pid, SIGUSR1) && listeningSockets(pid).every((s) => s.port !== port)) {
    return `process ${pid} does not handle SIGUSR1 (started with --disable-sigusr1?): the signal would end it; refused`;
  }
  return undefined;
}

const attachKey = "Symbol.for('taskprof.attach')";
// What the process's require resolves from: this file (taskprof's own copy).
const here = fileURLToPath(import.meta.url);

export async function attach(settings: AttachSettings): Promise<void> {
  const { pid, log } = settings;
  const info = processInfo(pid);
  // SIGUSR1 opens the inspector on the process's own port: --port says where that is when its flags do not.
  const port = settings.port ?? (info === undefined ? undefined : inspectFlags(info).find((f) => f.port !== undefined)?.port) ?? 9229;
  const refused = refusal(pid, port);
  if (refused !== undefined) throw new CliError(refused);

  // From here on, Ctrl-C, SIGTERM and SIGHUP detach; repeats while detaching are ignored.
  let stop: (() => void) | undefined;
  let stopping = false;
  const onSignal = (): void => {
    if (stopping) return;
    stopping = true;
    stop?.();
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);
  let opened = false;
  let client: InspectorClient | undefined;
  let ours = false;
  let shared = false;
  try {
    let targets = await inspectorTargets(port);
    if (targets === undefined) {
      try {
        process.kill(pid, 'SIGUSR1');
      } catch (error) {
        throw new CliError(`could not signal process ${pid}: ${(error as Error).message}`);
      }
      opened = true;
      const deadline = Date.now() + 5000;
      while (targets === undefined && Date.now() < deadline && !stopping) {
        await sleep(50);
        targets = await inspectorTargets(port);
      }
      if (targets === undefined) throw new CliError(`process ${pid} did not open its inspector on 127.0.0.1:${port} within 5 s (is the port in use by another process? pass --port with its --inspect-port)`);
    }
    client = await InspectorClient.connect(targets[0]!.webSocketDebuggerUrl);
    const targetPid = await client.evaluate<number>('process.pid', false);
    if (targetPid !== pid) {
      opened = false;
      throw new CliError(`the inspector on 127.0.0.1:${port} is process ${targetPid}'s, not ${pid}'s (pass --port with ${pid}'s inspector port)`);
    }
    ours = true;
    if (!(await client.evaluate<boolean>("typeof process.getBuiltinModule === 'function'", false))) {
      const resources = await client.evaluate<string[]>('process.getActiveResourcesInfo()', false);
      log(`taskprof cannot be loaded into process ${pid}: its Node has no process.getBuiltinModule (Node 20.16+, 22.3+); what Node itself reports:`);
      logResources(resources, log);
      return;
    }
    const httpModule = fileURLToPath(new URL('../../middleware/http.js', import.meta.url));
    const loaded = await client.evaluate<{ port?: number; node: string; already?: boolean; fallback?: string; resources?: string[] }>(`(async () => {
      const node = process.version;
      const running = globalThis[${attachKey}];
      if (running) return { port: running.address().port, node, already: true };
      let listen;
      try {
        ({ listen } = require(${JSON.stringify(httpModule)}));
      } catch (error) {
        return { node, fallback: String(error && error.message).split('\\n')[0], resources: process.getActiveResourcesInfo() };
      }
      const server = await listen({ port: 0, tracking: ${JSON.stringify(settings.tracking)}, discovery: false });
      Object.defineProperty(globalThis, ${attachKey}, { value: server, configurable: true, enumerable: false, writable: true });
      return { port: server.address().port, node };
    })()`);
    if (loaded.fallback !== undefined) {
      log(`taskprof cannot be loaded into process ${pid} (Node ${loaded.node}: ${loaded.fallback}); what Node itself reports:`);
      logResources(loaded.resources ?? [], log);
      return;
    }
    // Another attach session serves this process: share its listener, leave it to that session to close.
    shared = loaded.already === true;
    const url = `http://127.0.0.1:${loaded.port}/debug`;
    log(`attached to ${pid} (Node ${loaded.node}), tracking ${settings.tracking}: ${url}/pprof/${shared ? ' (served by another taskprof attach, which closes it)' : ''}`);
    log('tasks created before attach have no stacks: timers and handles are counted, promises made before are not seen');
    if (settings.dump !== undefined) {
      const res = await fetch(`${url}/pprof/tasks?debug=${settings.dump}`);
      process.stdout.write(await res.text());
      return;
    }
    log(`taskprof top ${url}  or  taskprof dump ${url}; Ctrl-C detaches`);
    if (!stopping) {
      await new Promise<void>((resolve) => {
        const timer = settings.seconds === undefined ? undefined : setTimeout(resolve, settings.seconds * 1000);
        stop = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } finally {
    stopping = true;
    try {
      if (client !== undefined) await detach(client, { pid, port, opened, ours, shared, log });
    } finally {
      for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(signal, onSignal);
    }
  }
}

function logResources(resources: readonly string[], log: (line: string) => void): void {
  const counts = new Map<string, number>();
  for (const type of resources) counts.set(type, (counts.get(type) ?? 0) + 1);
  for (const [type, count] of [...counts].sort((a, b) => b[1] - a[1])) log(`${String(count).padStart(7)} ${type}`);
  log('(process.getActiveResourcesInfo(): what keeps its event loop alive, by type; no stacks, no promises)');
}

/** Closes what attach opened in the process: its listener (which stops tracking), then the inspector if attach opened it. */
async function detach(client: InspectorClient, how: { pid: number; port: number; opened: boolean; ours: boolean; shared: boolean; log: (line: string) => void }): Promise<void> {
  const { pid, port, opened, ours, shared, log } = how;
  try {
    // Never in another process (an inspector that turned out not to be the pid's).
    if (ours) {
      await client.evaluate(
        `{
          ${shared ? '' : `const server = globalThis[${attachKey}]; delete globalThis[${attachKey}]; if (server) { server.close(); server.closeAllConnections(); }`}
          ${opened ? "const inspector = process.getBuiltinModule?.('node:inspector'); if (inspector) setTimeout(() => inspector.close(), 50).unref();" : ''}
          'detached'
        }`,
        false,
      );
    }
  } finally {
    client.close();
  }
  let closed = !opened;
  if (opened) {
    const deadline = Date.now() + 5000;
    while (!closed && Date.now() < deadline) {
      closed = (await inspectorTargets(port).catch(() => [])) === undefined;
      if (!closed) await sleep(50);
    }
  }
  if (!ours) return;
  const listener = shared ? 'the other attach session keeps its listener' : "taskprof's listener is closed and tracking stopped";
  const inspector = !opened ? ' (its inspector was open before attach and stays open)' : closed ? ', and its inspector is closed' : `, but its inspector on 127.0.0.1:${port} did not close within 5 s`;
  log(`detached from ${pid}: ${listener}${inspector}`);
}
