// What Linux's /proc says about a process: its owner, whether it is Node,
// its arguments and NODE_OPTIONS, and the TCP ports it listens on. `ps` and
// `attach` read it; nothing here signals or connects.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';

export interface ProcessInfo {
  pid: number;
  uid: number;
  argv: string[];
  /** NODE_OPTIONS from its environment, when this user may read it. */
  nodeOptions: string | undefined;
}

export function processInfo(pid: number): ProcessInfo | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
    let nodeOptions: string | undefined;
    try {
      nodeOptions = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((v) => v.startsWith('NODE_OPTIONS='))?.slice('NODE_OPTIONS='.length);
    } catch {
      nodeOptions = undefined;
    }
    return { pid, uid, argv, nodeOptions };
  } catch {
    return undefined;
  }
}

/** Whether a process runs Node: its executable (or its argv[0]) is named node. */
export function isNode(info: ProcessInfo): boolean {
  let exe = info.argv[0] ?? '';
  try {
    exe = readlinkSync(`/proc/${info.pid}/exe`);
  } catch {
    // Another user's process: its argv[0] says.
  }
  return /^node(js)?(\d+)?(\.exe)?$/.test(path.basename(exe)) || /^node(js)?$/.test(path.basename(info.argv[0] ?? ''));
}

export function nodePids(): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const info = processInfo(Number(name));
    if (info !== undefined && info.argv.length > 0 && isNode(info)) pids.push(info.pid);
  }
  return pids.sort((a, b) => a - b);
}

export interface InspectFlag {
  flag: string;
  host: string | undefined;
  port: number | undefined;
}

/** --inspect, --inspect-brk, --inspect-wait and --inspect-port in its arguments and NODE_OPTIONS. */
export function inspectFlags(info: ProcessInfo): InspectFlag[] {
  const args = [...info.argv.slice(1), ...(info.nodeOptions ?? '').split(/\s+/)];
  const flags: InspectFlag[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') break;
    const match = /^--(inspect(?:-brk|-wait|-port)?|debug-port)(?:=(.*))?$/.exec(arg);
    if (match === null) continue;
    const value = match[2] ?? (match[1]!.endsWith('port') ? args[++i] : undefined);
    let host: string | undefined;
    let port: number | undefined;
    if (value !== undefined && value !== '') {
      const hostPort = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value);
      if (hostPort !== null) {
        host = hostPort[1] ?? hostPort[2];
        port = Number(hostPort[3]);
      } else if (/^\d+$/.test(value)) port = Number(value);
      else host = value;
    }
    flags.push({ flag: `--${match[1]}`, host, port });
  }
  return flags;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

export interface ListeningSocket {
  port: number;
  /** Bound to a loopback address only. */
  loopback: boolean;
  /** Bound to every address (0.0.0.0 or ::): reachable on loopback too, and from outside. */
  wildcard: boolean;
}

/** Whether the process has a handler for a signal (its SigCgt mask): SIGUSR1 kills a Node started with --disable-sigusr1. */
export function catchesSignal(pid: number, signal: number): boolean {
  try {
    const mask = /^SigCgt:\s+([0-9a-f]+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return mask !== undefined && ((BigInt(`0x${mask}`) >> BigInt(signal - 1)) & 1n) === 1n;
  } catch {
    return false;
  }
}

/** TCP sockets the process listens on (IPv4 and IPv6), from its socket inodes. */
export function listeningSockets(pid: number): ListeningSocket[] {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const link = readlinkSync(`/proc/${pid}/fd/${fd}`);
        const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
        if (inode !== undefined) inodes.add(inode);
      } catch {
        // Closed meanwhile.
      }
    }
  } catch {
    return [];
  }
  const sockets = new Map<string, ListeningSocket>();
  for (const table of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // local_address rem_address st ... inode (field 9); st 0A is LISTEN.
      if (fields.length <= 9 || fields[3] !== '0A' || !inodes.has(fields[9]!)) continue;
      const [address, portHex] = fields[1]!.split(':') as [string, string];
      const port = parseInt(portHex, 16);
      // 127.x.x.x is 7F in the address's last byte (little-endian); ::1 and ::ffff:127.x in tcp6.
      const loopback = table === 'tcp' ? address.endsWith('7F') : address === '00000000000000000000000001000000' || /^0000000000000000FFFF0000..[0-9A-F]{4}7F$/.test(address);
      const wildcard = /^0+$/.test(address);
      sockets.set(`${table}:${address}:${port}`, { port, loopback, wildcard });
    }
  }
  return [...sockets.values()].sort((a, b) => a.port - b.port);
}
