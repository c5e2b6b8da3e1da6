import {
  type ClaimedDelivery,
  DatabaseUnavailableError,
  type Db,
  listDeliveries,
  queueDeliveries,
} from '@devart/db';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backend, createTestDatabase, type TestDatabase } from '../../../../test/db';
import { type DeliveryChannel, type SendResult, startDeliveryLoop } from './deliveries';

let current: TestDatabase;
beforeAll(async () => {
  current = await createTestDatabase();
});
afterAll(() => current?.drop());

/** A channel whose sends answer from `script` in turn (then 'sent'), recording each delivery. */
function scriptedChannel(name: string, script: SendResult[] = [], onSend?: () => void) {
  const sent: ClaimedDelivery[] = [];
  const channel: DeliveryChannel = {
    name,
    eventTypes: [],
    target: 'T',
    minIntervalMs: () => 0,
    async send(delivery) {
      sent.push(delivery);
      onSend?.();
      return script.shift() ?? { outcome: 'sent', result: { n: sent.length } };
    },
  };
  return { channel, sent };
}

/** A log that keeps its lines, to count them. */
function capturedLogger() {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => lines.push(JSON.parse(line) as { level: number; msg: string }) },
  );
  return { logger, lines };
}

/** `db`, with every statement failing as an unreachable database would while `down()` says so. */
function flaky(db: Db, down: () => boolean): Db {
  const fail = () => Promise.reject(new DatabaseUnavailableError('connect ECONNREFUSED'));
  return {
    ...db,
    kind: db.kind,
    query: (sql, params) => (down() ? fail() : db.query(sql, params)),
    exec: (sql) => (down() ? fail() : db.exec(sql)),
    transaction: (fn) => (down() ? fail() : db.transaction(fn)),
    listen: (channel, onNotify) => db.listen(channel, onNotify),
    close: () => db.close(),
  } as Db;
}

describe(`the delivery loop on ${backend}`, () => {
  it('retries with backoff, honours retry_after, and records sent, skipped and failed outcomes once each', async () => {
    const { channel, sent } = scriptedChannel('loop-a', [
      { outcome: 'retry', error: 'HTTP 502' },
      { outcome: 'retry', error: '429', retryAfterMs: 300 },
    ]);
    const skipper = scriptedChannel('loop-b', [
      { outcome: 'skipped', reason: 'opted out' },
      { outcome: 'failed', error: 'HTTP 400' },
    ]);
    await queueDeliveries(current.db, [
      { channel: 'loop-a', dedupeKey: '1', target: 'T', payload: {} },
      { channel: 'loop-b', dedupeKey: '1', target: 'B1', payload: {} },
      { channel: 'loop-b', dedupeKey: '2', target: 'B2', payload: {} },
    ]);
    const loop = await startDeliveryLoop({
      db: current.db,
      logger: pino({ level: 'silent' }),
      channels: [channel, skipper.channel],
      pollIntervalMs: 50,
      backoff: { baseMs: 100, capMs: 200 },
    });
    try {
      await expect.poll(() => sent.length, { timeout: 10_000 }).toBe(3);
      await expect
        .poll(async () => (await listDeliveries(current.db, { channel: 'loop-a' }))[0]?.status)
        .toBe('sent');
    } finally {
      await loop.stop();
    }
    expect(sent.map((d) => d.attempts)).toEqual([1, 2, 3]);
    const [a] = await listDeliveries(current.db, { channel: 'loop-a' });
    expect(a).toMatchObject({ status: 'sent', attempts: 3, last_error: '429', result: { n: 3 } });
    expect(
      (await listDeliveries(current.db, { channel: 'loop-b' })).map((d) => [
        d.status,
        d.last_error,
        d.result,
      ]),
    ).toEqual([
      ['skipped', null, { reason: 'opted out' }],
      ['failed', 'HTTP 400', null],
    ]);
  });

  it('keeps going through a database outage with one log line each way, and holds a sent outcome so nothing is sent twice', async () => {
    let down = false;
    // The database goes away right after the service accepted the message.
    const { channel, sent } = scriptedChannel('loop-c', [], () => {
      down = true;
    });
    await queueDeliveries(current.db, [{ channel: 'loop-c', dedupeKey: '1', target: 'T', payload: {} }]);
    const { logger, lines } = capturedLogger();
    const loop = await startDeliveryLoop({
      db: flaky(current.db, () => down),
      logger,
      channels: [channel],
      pollIntervalMs: 50,
      leaseSeconds: 60,
    });
    try {
      await expect.poll(() => sent.length).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect((await listDeliveries(current.db, { channel: 'loop-c' }))[0]!.status).toBe('sending');
      down = false;
      await expect
        .poll(async () => (await listDeliveries(current.db, { channel: 'loop-c' }))[0]?.status, {
          timeout: 5000,
        })
        .toBe('sent');
      await new Promise((resolve) => setTimeout(resolve, 300));
    } finally {
      await loop.stop();
    }
    expect(sent).toHaveLength(1);
    expect(lines.filter((l) => l.msg.startsWith('delivery loop')).map((l) => l.msg)).toEqual([
      'delivery loop: waiting for the database',
      'delivery loop: running again',
    ]);
  });
});
