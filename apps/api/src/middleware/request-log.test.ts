import { Hono } from 'hono';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createAccessSummary, percentile, requestLog } from './request-log';

/** A pino logger whose records land in an array. */
function capture(level = 'debug') {
  const records: Record<string, unknown>[] = [];
  const logger = pino({ level }, { write: (line: string) => records.push(JSON.parse(line)) });
  return { logger, records };
}

/** A clock the test moves: scheduled callbacks run when their time comes. */
function fakeClock() {
  let now = 0;
  const timers: { at: number; fn: () => void }[] = [];
  return {
    schedule: (fn: () => void, ms: number) => timers.push({ at: now + ms, fn }),
    advance(ms: number) {
      now += ms;
      for (const timer of timers.filter((t) => t.at <= now)) {
        timers.splice(timers.indexOf(timer), 1);
        timer.fn();
      }
    },
    pending: () => timers.length,
  };
}

describe('the per-minute access summary', () => {
  it('logs one info line per minute that saw requests: the count, by status class, p50 and p95', () => {
    const { logger, records } = capture('info');
    const clock = fakeClock();
    const summary = createAccessSummary({ logger, schedule: clock.schedule });
    for (let ms = 1; ms <= 100; ms++) summary.record(ms % 10 === 0 ? 404 : 200, ms);
    summary.record(503, 1000);
    clock.advance(59_999);
    expect(records).toEqual([]);
    clock.advance(1);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      level: 30,
      requests: 101,
      status: { '2xx': 90, '4xx': 10, '5xx': 1 },
      p50_ms: 51,
      p95_ms: 96,
      window_s: 60,
      msg: '101 requests in the last 60s (90 2xx, 10 4xx, 1 5xx); p50 51ms, p95 96ms',
    });
    // An idle minute logs nothing and keeps no timer.
    clock.advance(120_000);
    expect(records).toHaveLength(1);
    expect(clock.pending()).toBe(0);
    summary.record(201, 7);
    expect(clock.pending()).toBe(1);
    clock.advance(60_000);
    expect(records[1]).toMatchObject({ requests: 1, status: { '2xx': 1 }, p50_ms: 7, p95_ms: 7 });
  });

  it('percentile is the nearest rank', () => {
    expect(percentile([], 50)).toBe(0);
    expect(percentile([5], 95)).toBe(5);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4], 95)).toBe(4);
  });
});

describe('requestLog', () => {
  it('logs each request at debug only, and counts it in the summary', async () => {
    const counted: number[] = [];
    const summary = { record: (status: number) => counted.push(status) };
    for (const level of ['info', 'debug']) {
      const { logger, records } = capture(level);
      const app = new Hono().use('*', requestLog({ logger, summary })).get('/x', (c) => c.text('ok'));
      const res = await app.request('/x', { headers: { 'x-request-id': 'r-1' } });
      expect(res.headers.get('x-request-id')).toBe('r-1');
      expect(records.filter((r) => r.msg === 'request')).toHaveLength(level === 'debug' ? 1 : 0);
    }
    expect(counted).toEqual([200, 200]);
  });
});
