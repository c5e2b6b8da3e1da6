import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { backend, createTestDatabase, type TestDatabase } from '../../../test/db';
import { connectPostgres } from './client';
import {
  claimDeliveries,
  DELIVERIES_CHANNEL,
  deleteFinishedDeliveries,
  deliveryHealth,
  finishDelivery,
  listDeliveries,
  markDeliveryChannels,
  queueDeliveries,
} from './deliveries';
import { appendEvents } from './events';

let current: TestDatabase;
beforeAll(async () => {
  current = await createTestDatabase();
});
afterAll(() => current?.drop());
beforeEach(async () => {
  await current.db.exec(
    'DELETE FROM deliveries; DELETE FROM delivery_channels; DELETE FROM delivery_targets;',
  );
});

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

async function count(sql: string): Promise<number> {
  const { rows } = await current.db.query<{ n: number }>(sql);
  return rows[0]!.n;
}

describe(`the delivery outbox on ${backend}`, () => {
  it('queues one delivery per deliverable event and subscribed channel, in the events statement, with the event as payload', async () => {
    await markDeliveryChannels(current.db, [
      { channel: 'chat', eventTypes: ['task.quarantined', 'agent.offline'], target: '42' },
      { channel: 'checks', eventTypes: ['workflow_run.failed'], target: '' },
    ]);
    const heard: string[] = [];
    const unlisten = await current.db.listen(DELIVERIES_CHANNEL, (payload) => heard.push(payload));
    await current.db.transaction(async (tx) => {
      appendEvents(tx, [
        { type: 'task.failed', task_id: id(1) },
        { type: 'task.quarantined', task_id: id(1), data: { title: 'lint <x>', attempt: 2 } },
        { type: 'workflow_run.failed', workflow_run_id: id(2), data: { status: 'FAILED' } },
        { type: 'agent.online', agent_id: id(3) },
      ]);
    });
    const chat = await listDeliveries(current.db, { channel: 'chat' });
    expect(chat).toHaveLength(1);
    expect(chat[0]).toMatchObject({
      target: '42',
      status: 'pending',
      attempts: 0,
      dedupe_key: `event:${chat[0]!.event_id}`,
      payload: {
        id: String(chat[0]!.event_id),
        type: 'task.quarantined',
        task_id: id(1),
        data: { title: 'lint <x>', attempt: 2 },
      },
    });
    expect(typeof chat[0]!.payload.at).toBe('string');
    expect((await listDeliveries(current.db, { channel: 'checks' })).map((d) => d.payload.type)).toEqual([
      'workflow_run.failed',
    ]);
    // Events and deliveries come from one statement (one command id within the transaction).
    const { rows } = await current.db.query<{ events: string; deliveries: string }>(
      `SELECT (SELECT min(cmin::text) FROM events WHERE id = $1) AS events,
              (SELECT min(cmin::text) FROM deliveries WHERE event_id = $1) AS deliveries`,
      [chat[0]!.event_id],
    );
    expect(rows[0]!.events).toBe(rows[0]!.deliveries);
    await expect.poll(() => heard.length).toBeGreaterThan(0);
    await unlisten();
  });

  it('queues nothing for a rolled-back event, a stale channel or a type no channel takes', async () => {
    await markDeliveryChannels(current.db, [
      { channel: 'chat', eventTypes: ['task.quarantined'], target: '1' },
    ]);
    await expect(
      current.db.transaction(async (tx) => {
        appendEvents(tx, [{ type: 'task.quarantined', task_id: id(1) }]);
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    await current.db.transaction(async (tx) => {
      appendEvents(tx, [{ type: 'agent.offline', agent_id: id(1) }]);
    });
    await current.db.query(`UPDATE delivery_channels SET seen_at = now() - interval '1 hour'`);
    await current.db.transaction(async (tx) => {
      appendEvents(tx, [{ type: 'task.quarantined', task_id: id(2) }]);
    });
    expect(await count('SELECT count(*)::int AS n FROM deliveries')).toBe(0);
  });

  it('queues a direct delivery once per dedupe key', async () => {
    const first = await queueDeliveries(current.db, [
      { channel: 'chat', dedupeKey: 'summary:2026-12-01', target: '1', payload: { kind: 'summary' } },
    ]);
    const again = await queueDeliveries(current.db, [
      { channel: 'chat', dedupeKey: 'summary:2026-12-01', target: '1', payload: { kind: 'other' } },
      { channel: 'chat', dedupeKey: 'summary:2026-12-02', target: '1', payload: { kind: 'summary' } },
    ]);
    expect(first).toHaveLength(1);
    expect(again.map((r) => r.dedupe_key)).toEqual(['summary:2026-12-02']);
    expect((await listDeliveries(current.db, { channel: 'chat' })).map((d) => d.payload)).toEqual([
      { kind: 'summary' },
      { kind: 'summary' },
    ]);
  });

  it('claims one row per target at a time, skips a paused target, and fences the outcome on the attempt', async () => {
    await queueDeliveries(current.db, [
      { channel: 'chat', dedupeKey: 'a1', target: 'A', payload: {} },
      { channel: 'chat', dedupeKey: 'a2', target: 'A', payload: {} },
      { channel: 'chat', dedupeKey: 'b1', target: 'B', payload: {} },
      { channel: 'other', dedupeKey: 'o1', target: 'A', payload: {} },
    ]);
    const claim = () => claimDeliveries(current.db, { channels: ['chat'], limit: 10, leaseSeconds: 60 });
    const first = await claim();
    expect(first.map((d) => d.dedupe_key)).toEqual(['a1', 'b1']);
    expect(first.every((d) => d.attempts === 1)).toBe(true);
    // A's next row waits while a1 is in flight; B has nothing else.
    expect(await claim()).toEqual([]);

    const a1 = first[0]!;
    // A rate limit after a send pauses the target for every process.
    expect(
      await finishDelivery(current.db, {
        id: a1.id,
        attempts: 1,
        outcome: 'sent',
        result: { message_id: 7 },
        pauseTargetMs: 60_000,
      }),
    ).toBe(true);
    expect(await claim()).toEqual([]);
    await current.db.query(`UPDATE delivery_targets SET paused_until = now() WHERE target = 'A'`);
    const second = await claim();
    expect(second.map((d) => d.dedupe_key)).toEqual(['a2']);

    // A stale attempt number is refused: its lease lapsed and another sender took the row.
    expect(
      await finishDelivery(current.db, { id: a1.id, attempts: 1, outcome: 'failed', error: 'late' }),
    ).toBe(false);
    expect(
      await finishDelivery(current.db, {
        id: second[0]!.id,
        attempts: 1,
        outcome: 'retry',
        error: 'HTTP 502',
        delayMs: 60_000,
      }),
    ).toBe(true);
    const b1 = first[1]!;
    expect(
      await finishDelivery(current.db, { id: b1.id, attempts: 1, outcome: 'skipped', reason: 'opted out' }),
    ).toBe(true);
    const rows = await listDeliveries(current.db, { channel: 'chat' });
    expect(rows.map((r) => [r.dedupe_key, r.status, r.last_error, r.result])).toEqual([
      ['a1', 'sent', null, { message_id: 7 }],
      ['a2', 'pending', 'HTTP 502', null],
      ['b1', 'skipped', null, { reason: 'opted out' }],
    ]);
    expect(rows[0]!.sent_at).toBeInstanceOf(Date);
    expect(rows[1]!.next_attempt_at.getTime()).toBeGreaterThan(Date.now() + 50_000);
  });

  it('claims again a row whose claim lapsed (its sender died), with the next attempt number', async () => {
    await queueDeliveries(current.db, [{ channel: 'chat', dedupeKey: 'x', target: 'A', payload: {} }]);
    const [first] = await claimDeliveries(current.db, { channels: ['chat'], limit: 1, leaseSeconds: 0.05 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const [again] = await claimDeliveries(current.db, { channels: ['chat'], limit: 1, leaseSeconds: 60 });
    expect([first!.attempts, again!.attempts, again!.id]).toEqual([1, 2, first!.id]);
  });

  it('reports each channel’s health: last success, last error, backlog and failures', async () => {
    await markDeliveryChannels(current.db, [
      { channel: 'chat', eventTypes: ['task.quarantined'], target: '9' },
    ]);
    await queueDeliveries(current.db, [
      { channel: 'chat', dedupeKey: '1', target: 'A', payload: {} },
      { channel: 'chat', dedupeKey: '2', target: 'B', payload: {} },
      { channel: 'chat', dedupeKey: '3', target: 'C', payload: {} },
    ]);
    const [one, two, three] = await claimDeliveries(current.db, {
      channels: ['chat'],
      limit: 3,
      leaseSeconds: 60,
    });
    await finishDelivery(current.db, { id: one!.id, attempts: 1, outcome: 'sent' });
    await finishDelivery(current.db, {
      id: two!.id,
      attempts: 1,
      outcome: 'retry',
      error: 'Bad Gateway',
      delayMs: 1000,
    });
    await finishDelivery(current.db, { id: three!.id, attempts: 1, outcome: 'failed', error: 'Bad Request' });
    const [health] = await deliveryHealth(current.db);
    expect(health).toMatchObject({
      channel: 'chat',
      event_types: ['task.quarantined'],
      backlog: 1,
      failed: 1,
      last_error: expect.stringMatching(/Bad (Gateway|Request)/),
    });
    expect(health!.last_success_at).toBeInstanceOf(Date);
    expect(health!.oldest_pending_seconds).toBeGreaterThanOrEqual(0);
    await current.db.query(`UPDATE deliveries SET updated_at = now() - interval '30 days'`);
    expect(await deleteFinishedDeliveries(current.db, { days: 7, batchSize: 100 })).toBe(2);
  });

  it.runIf(backend === 'postgres')(
    'two processes claiming at once never take the same target twice',
    async () => {
      await queueDeliveries(
        current.db,
        Array.from({ length: 40 }, (_, i) => ({
          channel: 'chat',
          dedupeKey: `k${i}`,
          target: `T${i % 4}`,
          payload: {},
        })),
      );
      const pools = [connectPostgres(current.url!, { max: 2 }), connectPostgres(current.url!, { max: 2 })];
      try {
        const claims = await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            claimDeliveries(pools[i % 2]!, { channels: ['chat'], limit: 10, leaseSeconds: 60 }),
          ),
        );
        const targets = claims.flat().map((d) => d.target);
        expect(targets.sort()).toEqual(['T0', 'T1', 'T2', 'T3']);
      } finally {
        await Promise.all(pools.map((p) => p.close()));
      }
    },
  );
});
