#!/usr/bin/env node
// The taskprof command line: top, dump, attach, ps. Nothing in the
// middleware imports it, so mounting taskprof loads none of this.
import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { parseArgs } from 'node:util';
import { CliError, getOk, parseTarget } from './target.js';

const usage = `Usage:
  taskprof top <url|port> [--interval 1000] [--token T]
      A live view of an instance's tasks, refreshed every interval (ms).
      Keys: arrows select, Enter the group's stack and tasks, s sort (count,
      growth, age), / filter, r by route, q quit. Not a colour terminal (or
      stdout not a terminal): one plain snapshot.
  taskprof dump <url|port> [--debug 1|2] [--json] [--token T]
      Prints a listing (tasks?debug=N), for scripts and tickets.
  taskprof attach <pid> [--port 9229] [--tracking sampled|full] [--dump 1|2] [--seconds N]
      Loads taskprof into a running Node process of yours through its
      inspector, serves its listings on a loopback port until Ctrl-C (or
      --seconds, or prints one with --dump), then detaches.
  taskprof ps [--json]
      Node processes on this host; those with taskprof mounted, and their URLs.

<url> is taskprof's prefix URL (http://127.0.0.1:3000/debug); a bare port means
http://127.0.0.1:<port>/debug. The token comes from --token or TASKPROF_TOKEN.
`;

function positiveInt(name: string, raw: string | undefined, fallback: number | undefined, min = 1): number | undefined {
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min) throw new CliError(`--${name} must be an integer >= ${min}, got ${raw}`);
  return Number(raw);
}

function port(raw: string | undefined): number | undefined {
  const value = positiveInt('port', raw, undefined);
  if (value !== undefined && value > 65535) throw new CliError(`--port must be a TCP port, 1 to 65535, got ${raw}`);
  return value;
}

function level(raw: string | undefined, fallback: 1 | 2 | undefined): 1 | 2 | undefined {
  if (raw === undefined) return fallback;
  if (raw !== '1' && raw !== '2') throw new CliError(`--debug must be 1 or 2, got ${raw}`);
  return Number(raw) as 1 | 2;
}

const options = {
  token: { type: 'string' },
  interval: { type: 'string' },
  debug: { type: 'string' },
  json: { type: 'boolean' },
  port: { type: 'string' },
  tracking: { type: 'string' },
  dump: { type: 'string' },
  seconds: { type: 'string' },
} as const;

/** The options after the command; a bad one is a CliError (one line), not a stack. */
function parseCommand(args: string[]): { values: { [K in keyof typeof options]?: (typeof options)[K]['type'] extends 'boolean' ? boolean : string }; positionals: string[] } {
  try {
    return parseArgs({ args, allowPositionals: true, options });
  } catch (error) {
    throw new CliError(`${(error as Error).message}\n\n${usage}`);
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(usage);
    return command === undefined ? 2 : 0;
  }
  const { values, positionals } = parseCommand(rest);
  const token = values.token ?? process.env.TASKPROF_TOKEN;
  switch (command) {
    case 'dump': {
      const target = parseTarget(positionals[0], token);
      const debug = level(values.debug, 1)!;
      const res = await getOk(target, `/pprof/tasks?debug=${debug}${values.json === true ? '&format=json' : ''}`, 120_000);
      process.stdout.write(res.body);
      return 0;
    }
    case 'top': {
      const target = parseTarget(positionals[0], token);
      const intervalMs = positiveInt('interval', values.interval, 1000, 100)!;
      const { TopModel, plainSnapshot } = await import('./top-model.js');
      const colour = process.stdout.isTTY === true && process.stdin.isTTY === true && process.env.NO_COLOR === undefined && process.env.TERM !== 'dumb';
      if (!colour) {
        const model = new TopModel(target);
        await model.refresh();
        if (model.error !== undefined) throw new CliError(model.error);
        process.stdout.write(plainSnapshot(model, 'count'));
        return 0;
      }
      const { runTop } = await import('./top-screen.js');
      await runTop(target, { intervalMs });
      // Reads still in flight (a hung target) must not hold the shell.
      process.exit(0);
    }
    case 'attach': {
      const raw = positionals[0];
      if (raw === undefined || !/^\d+$/.test(raw) || Number(raw) < 1) throw new CliError(`attach needs a process id: taskprof attach <pid>${raw === undefined ? '' : `, got ${raw}`}`);
      const pid = Number(raw);
      const tracking = values.tracking ?? 'sampled';
      if (tracking !== 'sampled' && tracking !== 'full') throw new CliError(`--tracking must be sampled or full, got ${tracking}`);
      const { attach } = await import('./attach.js');
      await attach({
        pid,
        port: port(values.port),
        tracking,
        dump: level(values.dump, undefined),
        seconds: positiveInt('seconds', values.seconds, undefined),
        log: (line) => process.stderr.write(line + '\n'),
      });
      return 0;
    }
    case 'ps': {
      const { listProcesses, psText } = await import('./ps.js');
      const rows = await listProcesses();
      process.stdout.write(values.json === true ? JSON.stringify(rows, null, 2) + '\n' : psText(rows));
      return 0;
    }
    default:
      throw new CliError(`unknown command ${command}\n\n${usage}`);
  }
}

// attach speaks WebSocket, global from Node 22; Node 20 has it behind a
// flag, so there it runs again with the flag, this process passing on the
// signals that end it (Ctrl-C detaches) and its exit code.
if (process.argv[2] === 'attach' && typeof WebSocket === 'undefined' && !process.execArgv.includes('--experimental-websocket')) {
  const child = spawn(process.execPath, ['--experimental-websocket', '--disable-warning=ExperimentalWarning', ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  // The child detaches on the first signal and ignores repeats: each signal is passed on once.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => child.kill(signal));
  child.on('error', (error) => {
    process.stderr.write(`taskprof: could not run attach: ${error.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => process.exit(code ?? (signal === null ? 1 : 128 + (osConstants.signals[signal] ?? 0))));
} else {
  run();
}

function run(): void {
  main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`taskprof: ${error instanceof CliError ? error.message : String((error as Error).stack ?? error)}\n`);
    process.exitCode = 1;
  },
  );
}
