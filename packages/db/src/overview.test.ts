import { Overview } from '@devart/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backend, createTestDatabase, type TestDatabase } from '../../../test/db';
import { RECENT_FAILURE_WINDOW, readOverview } from './overview';

let current: TestDatabase;
beforeAll(async () => {
  current = await createTestDatabase();
});
afterAll(() => current?.drop());

const now = new Date('2026-12-02T10:07:30.000Z');
const minutesAgo = (n: number, seconds = 0) =>
  new Date(now.getTime() - n * 60_000 - seconds * 1000).toISOString();

async function insertEvent(type: string, at: string, data: Record<string, unknown> = {}) {
  await current.db.query('INSERT INTO events (type, at, data) VALUES ($1, $2, $3)', [type, at, data]);
}

describe(`readOverview on ${backend}`, () => {
  it('answers zeros and empty lists, every status and 15 minutes included, on an empty platform', async () => {
    const overview = Overview.parse(await readOverview(current.db, now));
    expect(overview.tasks_by_status).toEqual({
      PENDING: 0,
      TODO: 0,
      IN_PROGRESS: 0,
      DONE: 0,
      QUARANTINED: 0,
      CANCELLED: 0,
    });
    expect(overview.throughput).toHaveLength(15);
    expect(overview.throughput[0]!.minute).toBe('2026-12-02T09:53:00.000Z');
    expect(overview.throughput.at(-1)).toEqual({
      minute: '2026-12-02T10:07:00.000Z',
      created: 0,
      done: 0,
      failed: 0,
    });
    expect(overview.outbox).toEqual({ pending: 0, oldest_age_seconds: 0 });
    expect(overview.agents).toEqual({ online: 0, busy: 0, offline: 0 });
    expect(overview.recent_failures).toEqual([]);
    expect(overview.recent_events).toEqual([]);
    expect(overview.generated_at).toBe(now.toISOString());
  });

  it('counts tasks, agents and the outbox, buckets events by minute and lists the newest events and failures', async () => {
    await current.db.query(`INSERT INTO tasks (title, status) SELECT 't', s FROM unnest($1::text[]) AS s`, [
      ['TODO', 'TODO', 'DONE', 'QUARANTINED', 'IN_PROGRESS', 'TODO'],
    ]);
    await current.db.query(
      `INSERT INTO agents (name, status, api_key_hash, revoked_at)
       VALUES ('a', 'IDLE', 'h1', NULL), ('b', 'BUSY', 'h2', NULL), ('c', 'OFFLINE', 'h3', NULL),
              ('gone', 'IDLE', 'h4', now())`,
    );
    await current.db.query(
      `INSERT INTO outbox (topic, payload, available_at, sent_at)
       VALUES ('t', '{}', $1, NULL), ('t', '{}', $2, NULL), ('t', '{}', $2, $2), ('t', '{}', $3, NULL)`,
      [minutesAgo(2), minutesAgo(1), minutesAgo(-5)],
    );
    await insertEvent('task.created', minutesAgo(20)); // before the window
    await insertEvent('task.created', minutesAgo(14, -10)); // the first minute of the window
    await insertEvent('task.created', minutesAgo(0, 20));
    await insertEvent('task.done', minutesAgo(0, 10));
    await insertEvent('task.done', minutesAgo(0, 5));
    await insertEvent('task.failed', minutesAgo(3), { error: 'boom' });
    await insertEvent('task.quarantined', minutesAgo(3));
    await insertEvent('agent.online', minutesAgo(0, 1));
    const { rows } = await current.db.query<{ id: string }>(
      `INSERT INTO events (type, at, task_id, data) VALUES ('task.lease_expired', $1, '00000000-0000-4000-8000-000000000001', '{"attempt":2}') RETURNING id::text`,
      [minutesAgo(0, 2)],
    );

    const overview = Overview.parse(await readOverview(current.db, now));
    expect(overview.tasks_by_status).toMatchObject({
      TODO: 3,
      DONE: 1,
      QUARANTINED: 1,
      IN_PROGRESS: 1,
      PENDING: 0,
    });
    expect(overview.agents).toEqual({ online: 2, busy: 1, offline: 1 });
    // The row due in five minutes is pending but not yet due, so the oldest due row is 2 minutes old.
    expect(overview.outbox).toEqual({ pending: 3, oldest_age_seconds: 120 });
    expect(overview.throughput[0]).toMatchObject({ created: 1 });
    expect(overview.throughput[11]).toMatchObject({ minute: '2026-12-02T10:04:00.000Z', failed: 2 });
    expect(overview.throughput[14]).toMatchObject({ created: 1, done: 2, failed: 0 });
    expect(overview.throughput.reduce((n, m) => n + m.created, 0)).toBe(2);
    expect(overview.recent_events).toHaveLength(9);
    expect(overview.recent_events[0]).toEqual({
      id: rows[0]!.id,
      type: 'task.lease_expired',
      at: minutesAgo(0, 2),
      task_id: '00000000-0000-4000-8000-000000000001',
      data: { attempt: 2 },
    });
    expect(overview.recent_failures.map((e) => e.type)).toEqual([
      'task.lease_expired',
      'task.quarantined',
      'task.failed',
    ]);
  });

  it('keeps the 20 newest events and looks for failures only among the last RECENT_FAILURE_WINDOW ids', async () => {
    await current.db.query(
      `INSERT INTO events (type, at) SELECT 'agent.online', $1 FROM generate_series(1, ${RECENT_FAILURE_WINDOW})`,
      [minutesAgo(1)],
    );
    const overview = await readOverview(current.db, now);
    expect(overview.recent_events).toHaveLength(20);
    expect(overview.recent_events.every((e) => e.type === 'agent.online')).toBe(true);
    expect(overview.recent_failures).toEqual([]);
  });
});
