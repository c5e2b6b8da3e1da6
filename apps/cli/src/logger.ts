import pino, { type Logger } from 'pino';

export type LogFormat = 'json' | 'pretty';

const levelNames: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
// Said by every line of a process, or by the line's time and level already.
const quiet = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'service', 'component']);

const show = (value: unknown): string => {
  if (typeof value === 'string') return /[\s"=]/.test(value) || value === '' ? JSON.stringify(value) : value;
  return JSON.stringify(value) ?? String(value);
};

/**
 * One pino record as one line for people: the local time, the level, the message, then the other
 * fields as key=value. An error's stack follows on indented lines.
 * @example
 * prettyLine({ level: 30, time: 0, msg: 'task done', task_id: 't1' }, { utc: true });
 * // '00:00:00.000 INFO  task done  task_id=t1'
 */
export function prettyLine(record: Record<string, unknown>, { utc = false } = {}): string {
  const time = new Date(Number(record.time ?? Date.now()));
  const clock = utc
    ? time.toISOString().slice(11, 23)
    : `${[time.getHours(), time.getMinutes(), time.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':')}.${String(time.getMilliseconds()).padStart(3, '0')}`;
  const level = (levelNames[Number(record.level)] ?? String(record.level)).padEnd(5);
  const fields: string[] = [];
  let stack = '';
  for (const [key, value] of Object.entries(record)) {
    if (quiet.has(key) || value === undefined) continue;
    if (key === 'err' && value && typeof value === 'object') {
      const err = value as { type?: string; message?: string; stack?: string };
      fields.push(`err=${show(`${err.type ?? 'Error'}: ${err.message ?? ''}`)}`);
      if (err.stack) stack = `\n${err.stack.split('\n').slice(1).join('\n')}`;
      continue;
    }
    fields.push(`${key}=${show(value)}`);
  }
  return `${clock} ${level} ${record.msg ?? ''}${fields.length > 0 ? `  ${fields.join(' ')}` : ''}${stack}`;
}

/** LOG_FORMAT's choice, or pretty on a terminal and JSON for a pipe, a file or a collector. */
export const logFormat = (format: LogFormat | undefined, isTTY: boolean): LogFormat =>
  format ?? (isTTY ? 'pretty' : 'json');

/**
 * The process's logger on stdout: pino's JSON lines, or prettyLine's (no worker thread, no extra
 * package: a synchronous destination that reformats each record).
 * @example
 * const logger = createLogger({ level: 'info', format: logFormat(config.LOG_FORMAT, process.stdout.isTTY), service: 'devart-api' });
 */
export function createLogger({
  level,
  format,
  service,
  write,
}: {
  level: string;
  format: LogFormat;
  service: string;
  /** Where the lines go (tests); default stdout, written synchronously as pino does. */
  write?: (text: string) => void;
}): Logger {
  const options = { level, base: { service } };
  if (format === 'json') return write ? pino(options, { write }) : pino(options);
  const stdout = write ? undefined : pino.destination({ dest: 1, sync: true });
  const out = write ?? ((text: string) => void stdout!.write(text));
  return pino(options, {
    write(line: string) {
      try {
        out(`${prettyLine(JSON.parse(line))}\n`);
      } catch {
        out(line);
      }
    },
  });
}
