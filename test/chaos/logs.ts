// Reading the chaos test's process logs back for a failure report.
import { existsSync, readFileSync } from 'node:fs';

/** The last `lines` lines of a file. */
export function tail(file: string, lines: number): string {
  if (!existsSync(file)) return '(no file)';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

/** The start-up banner of `devart start` and the separators the harness writes: not worth a reader's time. */
const banner = /^(---|devart(:| is running)|Press Ctrl-C|\s{2}\S|\s*$)/;
const levels: Record<number, string> = { 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/**
 * What a set of logs said, compacted: pino lines counted by level and message, other lines (stack
 * traces, crash messages) as the last `rawLines` of them.
 * @example console.log(summarizeLogs(['/tmp/devart-chaos-x/api-1.log'], 15));
 */
export function summarizeLogs(files: readonly string[], rawLines: number): string {
  const counts = new Map<string, number>();
  const raw: string[] = [];
  for (const file of files) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (banner.test(line)) continue;
      try {
        const entry = JSON.parse(line) as { level?: number; msg?: string };
        const key = `${levels[entry.level ?? 0] ?? `level ${entry.level}`}: ${entry.msg}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      } catch {
        raw.push(line);
      }
    }
  }
  const counted = [...counts]
    .sort((a, b) => b[1] - a[1])
    .map(([key, n]) => `  ${String(n).padStart(5)} × ${key}`);
  const lastRaw = raw.slice(-rawLines).map((line) => `  | ${line.slice(0, 300)}`);
  const all = [...counted, ...(lastRaw.length > 0 ? ['  other lines, last ones:', ...lastRaw] : [])];
  return all.join('\n') || '  (nothing)';
}

/** The first line naming an error in the log of a process's last start: why it ended. */
export function crashReason(file: string): string {
  const text = readFileSync(file, 'utf8');
  // An API's log holds every start of that process, each after a "--- … started" line.
  const line = text
    .slice(text.lastIndexOf('\n--- '))
    .split('\n')
    .find((l) => /^\w*Error\b|Error:|"level":(50|60)/.test(l));
  return line?.slice(0, 200) ?? '(no error in its log)';
}

/** How many lines of the files match `pattern`. */
export function countLines(files: readonly string[], pattern: RegExp): number {
  let n = 0;
  for (const file of files) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n')) if (pattern.test(line)) n++;
  }
  return n;
}
