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

/** TCP ports the process listens on (IPv4 and IPv6), from its socket inodes. */
export function listeningPorts(pid: number): number[] {
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
  const ports = new Set<number>();
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
      if (fields.length > 9 && fields[3] === '0A' && inodes.has(fields[9]!)) ports.add(parseInt(fields[1]!.split(':')[1]!, 16));
    }
  }
  return [...ports].sort((a, b) => a - b);
}
