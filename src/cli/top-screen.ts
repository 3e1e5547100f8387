// `taskprof top`: a full-screen terminal view, refreshed every interval.
// Hand-written ANSI (an alternate screen, raw keys, one redraw per change):
// the screen is a table and a few key bindings, which a terminal UI library
// would add a dependency tree to without making simpler. Whatever ends it
// (q, Ctrl-C, SIGTERM, an error) restores the terminal first.
import type { Target } from './target.js';
import { TopModel, frameText, formatAge, headerRow, rowText, sortKeys, totalsLines, type Row, type SortKey, type TaskJson } from './top-model.js';

const esc = '\x1b[';
const enterScreen = `${esc}?1049h${esc}?25l`;
const leaveScreen = `${esc}0m${esc}?25h${esc}?1049l`;
const bold = (s: string) => `${esc}1m${s}${esc}0m`;
const inverse = (s: string) => `${esc}7m${s}${esc}0m`;
const red = (s: string) => `${esc}1;31m${s}${esc}0m`;
const dim = (s: string) => `${esc}2m${s}${esc}0m`;

type View = 'groups' | 'detail' | 'routes';

export interface TopSettings {
  intervalMs: number;
}

export async function runTop(target: Target, settings: TopSettings): Promise<void> {
  const model = new TopModel(target);
  const out = process.stdout;
  const input = process.stdin;
  let view: View = 'groups';
  let sort: SortKey = 'count';
  let filter = '';
  let editing: string | undefined;
  let selected = 0;
  let detail: { row: Row; tasks: TaskJson[] | undefined; error?: string } | undefined;
  let timer: NodeJS.Timeout | undefined;
  let finished: (() => void) | undefined;
  let restored = false;

  const restore = (): void => {
    if (restored) return;
    restored = true;
    clearTimeout(timer);
    if (input.isTTY) input.setRawMode(false);
    input.pause();
    out.write(leaveScreen);
  };
  const quit = (): void => {
    restore();
    finished?.();
  };
  // Any way out restores the terminal.
  const onSignal = (): void => quit();
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const signal of signals) process.on(signal, onSignal);
  process.once('exit', restore);

  const draw = (): void => {
    if (restored) return;
    const width = out.columns ?? 100;
    const height = out.rows ?? 30;
    const lines: string[] = [];
    const keys = view === 'groups' ? '↑↓ select  Enter stack  s sort  / filter  r routes  q quit' : 'Esc back  q quit';
    lines.push(bold(`taskprof top  ${target.base}`.slice(0, width)));
    lines.push(dim(`every ${formatAge(settings.intervalMs)}   sort: ${sort}   filter: ${filter === '' ? '-' : filter}   ${keys}`.slice(0, width)));
    if (model.error !== undefined && model.listing !== undefined) lines.push(red(`error: ${model.error}`.slice(0, width)));
    for (const line of totalsLines(model, width, 30)) lines.push(line);
    lines.push('');
    if (view === 'groups') {
      const rows = model.rows(sort, filter);
      selected = Math.max(0, Math.min(selected, rows.length - 1));
      lines.push(bold(headerRow(width)));
      const room = Math.max(1, height - lines.length - 1);
      const first = Math.max(0, Math.min(selected - room + 1, rows.length - room));
      rows.slice(first, first + room).forEach((row, i) => {
        const text = rowText(row, width);
        lines.push(first + i === selected ? inverse(text.padEnd(width)) : row.suspect ? red(text) : text);
      });
      if (rows.length === 0 && model.listing !== undefined) lines.push(dim(filter === '' ? '(no live tasks)' : `(no group matches "${filter}")`));
    } else if (view === 'routes') {
      lines.push(bold('  COUNT  ROUTE'));
      for (const { route, count } of model.routes().slice(0, height - lines.length - 1)) lines.push(`${String(count).padStart(7)}  ${route}`.slice(0, width));
    } else if (detail !== undefined) {
      const { row } = detail;
      lines.push(bold(`${row.count} ${row.group.type} ${row.group.detail}  ${row.route}`.slice(0, width)));
      const block = (title: string, frames: readonly { functionName: string; file: string; line: number; column: number }[]): void => {
        lines.push(title);
        for (const frame of frames) lines.push(`    ${frameText(frame)}`.slice(0, width));
      };
      if (row.group.flow !== undefined) {
        lines.push(`waits for ${row.group.flow.waitsFor}, waiting ${formatAge(row.group.flow.waitingMs)}`);
        block('parked at:', row.group.flow.parkedAt);
        block('started at:', row.group.flow.startedAt);
      } else block('created at:', row.group.stack ?? []);
      lines.push('');
      if (detail.error !== undefined) lines.push(red(`tasks: ${detail.error}`));
      else if (detail.tasks === undefined) lines.push(dim('reading its tasks...'));
      else {
        lines.push(bold(`its tasks (${detail.tasks.length}${detail.tasks.length === 20 ? ' shown' : ''}):`));
        for (const task of detail.tasks) lines.push(`  task ${task.id}  ${formatAge(task.ageMs)}  ${task.detail}  ${Object.entries(task.labels).map(([k, v]) => `${k}=${v}`).join(' ')}`.slice(0, width));
      }
    }
    if (editing !== undefined) lines.push(`/${editing}`);
    out.write(`${esc}H` + lines.slice(0, height).map((l) => l + `${esc}K`).join('\r\n') + `${esc}J`);
  };

  const tick = async (): Promise<void> => {
    await model.refresh();
    draw();
    if (!restored) timer = setTimeout(() => void tick(), settings.intervalMs);
  };

  const openDetail = (): void => {
    const row = model.rows(sort, filter)[selected];
    if (row === undefined) return;
    detail = { row, tasks: undefined };
    view = 'detail';
    const opened = detail;
    model.tasksOf(row, 20).then(
      (tasks) => (opened.tasks = tasks),
      (error: unknown) => (opened.error = (error as Error).message),
    ).finally(draw);
  };

  // One read can hold several keys (typed fast, held down, pasted): an escape sequence, a lone Esc, or a character.
  const onInput = (data: Buffer): void => {
    for (const [key] of data.toString('utf8').matchAll(/\x1b\[[0-9;]*[A-Za-z~]|\x1bO[A-Za-z]|[\s\S]/g)) {
      if (restored) return;
      onKey(key.replace(/^\x1bO/, '\x1b['));
    }
  };

  const onKey = (key: string): void => {
    if (key === '\x03') return quit();
    if (editing !== undefined) {
      if (key === '\r' || key === '\n') {
        filter = editing;
        editing = undefined;
        selected = 0;
      } else if (key === '\x1b') editing = undefined;
      else if (key === '\x7f' || key === '\b') editing = editing.slice(0, -1);
      else if (key >= ' ' && !key.startsWith('\x1b')) editing += key;
      return draw();
    }
    if (key === 'q') return quit();
    if (view !== 'groups') {
      if (key === '\x1b' || key === '\x7f' || key === 'r' || key === '\r') view = 'groups';
      return draw();
    }
    if (key === `${esc}A` || key === 'k') selected = Math.max(0, selected - 1);
    else if (key === `${esc}B` || key === 'j') selected++;
    else if (key === '\r' || key === '\n') openDetail();
    else if (key === 's') sort = sortKeys[(sortKeys.indexOf(sort) + 1) % sortKeys.length]!;
    else if (key === '/') editing = '';
    else if (key === 'r') view = 'routes';
    else if (key === '\x1b' && filter !== '') filter = '';
    draw();
  };

  await new Promise<void>((resolve, reject) => {
    finished = resolve;
    try {
      out.write(enterScreen);
      input.setRawMode(true);
      input.resume();
      input.on('data', (data: Buffer) => {
        try {
          onInput(data);
        } catch (error) {
          restore();
          reject(error);
        }
      });
      out.on('resize', draw);
      void tick().catch((error: unknown) => {
        restore();
        reject(error);
      });
    } catch (error) {
      restore();
      reject(error);
    }
  });
  for (const signal of signals) process.off(signal, onSignal);
  process.off('exit', restore);
}
