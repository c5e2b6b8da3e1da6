import { describe, expect, it } from 'vitest';
import { createLogger, logFormat, prettyLine } from './logger';

describe('log format', () => {
  it('is LOG_FORMAT when set, else pretty on a terminal and JSON elsewhere', () => {
    expect(logFormat(undefined, true)).toBe('pretty');
    expect(logFormat(undefined, false)).toBe('json');
    expect(logFormat('json', true)).toBe('json');
    expect(logFormat('pretty', false)).toBe('pretty');
  });

  it('pretty: one line per record, time, level, message, then the fields as key=value', () => {
    expect(
      prettyLine(
        {
          level: 30,
          time: Date.parse('2026-12-02T09:00:01.250Z'),
          service: 'devart-api',
          component: 'transitions',
          msg: 'task done: "lint" (shell) attempt 1 in 812ms',
          task_id: 't1',
          title: 'lint step',
          duration_ms: 812,
        },
        { utc: true },
      ),
    ).toBe(
      '09:00:01.250 INFO  task done: "lint" (shell) attempt 1 in 812ms  task_id=t1 title="lint step" duration_ms=812',
    );
    expect(
      prettyLine(
        {
          level: 50,
          time: 0,
          msg: 'boom',
          err: { type: 'TypeError', message: 'x is undefined', stack: 'TypeError: x\n    at f (a.ts:1:1)' },
        },
        { utc: true },
      ),
    ).toBe('00:00:00.000 ERROR boom  err="TypeError: x is undefined"\n    at f (a.ts:1:1)');
  });

  it('createLogger writes JSON or pretty lines', () => {
    const lines: string[] = [];
    const write = (text: string) => lines.push(text);
    createLogger({ level: 'info', format: 'json', service: 's', write }).info({ a: 1 }, 'hello');
    createLogger({ level: 'info', format: 'pretty', service: 's', write }).info({ a: 1 }, 'hello');
    createLogger({ level: 'info', format: 'pretty', service: 's', write }).debug('hidden');
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 30, service: 's', a: 1, msg: 'hello' });
    expect(lines[1]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}hello {2}a=1\n$/);
    expect(lines).toHaveLength(2);
  });
});
