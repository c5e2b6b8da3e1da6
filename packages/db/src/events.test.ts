import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backend, createTestDatabase, type TestDatabase } from '../../../test/db';
import { completeTasks, startTasks } from './agent-work-batch';
import { insertAgent } from './agents';
import { appendEvents, EVENTS_CHANNEL } from './events';
import { insertTasksRecorded } from './tasks';

let current: TestDatabase;
beforeAll(async () => {
  current = await createTestDatabase();
});
afterAll(() => current?.drop());

const taskId = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

async function eventsAfter(after: number) {
  const { rows } = await current.db.query<{ id: number; type: string; task_id: string; data: unknown }>(
    'SELECT id, type, task_id, data FROM events WHERE id > $1 ORDER BY id',
    [after],
  );
  return rows;
}

async function lastId(): Promise<number> {
  const { rows } = await current.db.query<{ id: number }>('SELECT coalesce(max(id), 0) AS id FROM events');
  return rows[0]!.id;
}

describe(`appendEvents on ${backend}`, () => {
  it('writes a batch of events at commit with one INSERT, in the order appended, and notifies the last id', async () => {
    const before = await lastId();
    const heard: string[] = [];
    const unlisten = await current.db.listen(EVENTS_CHANNEL, (payload) => heard.push(payload));
    await current.db.transaction(async (tx) => {
      appendEvents(
        tx,
        Array.from({ length: 50 }, (_, i) => ({
          type: 'task.created' as const,
          task_id: taskId(i),
          data: { n: i },
        })),
      );
      // Nothing is written before the transaction body ends.
      const { rows } = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE id > $1', [
        before,
      ]);
      expect(rows[0]!.n).toBe(0);
    });
    const rows = await eventsAfter(before);
    expect(rows.map((r) => r.data)).toEqual(Array.from({ length: 50 }, (_, i) => ({ n: i })));
    // Rows of one statement share their command id (cmin): one INSERT for the batch.
    const { rows: commands } = await current.db.query<{ n: number }>(
      'SELECT count(DISTINCT cmin::text)::int AS n FROM events WHERE id > $1',
      [before],
    );
    expect(commands[0]!.n).toBe(1);
    await expect
      .poll(() => heard.filter(Boolean).map((p) => JSON.parse(p)))
      .toEqual([{ to: rows.at(-1)!.id }]);
    await unlisten();
  });

  it('leaves no event behind a transaction that rolls back', async () => {
    const before = await lastId();
    await expect(
      current.db.transaction(async (tx) => {
        appendEvents(tx, [{ type: 'task.created', task_id: taskId(1) }]);
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(await eventsAfter(before)).toEqual([]);
  });

  it('refuses a Queryable that is not a transaction, which would never flush', () => {
    expect(() => appendEvents(current.db, [{ type: 'task.created' }])).toThrow(/db.transaction/);
  });

  it.runIf(backend === 'postgres')(
    'allocates ids in commit order: the transaction that commits second has the larger ids',
    async () => {
      const before = await lastId();
      let releaseFirst!: () => void;
      const firstMayFinish = new Promise<void>((resolve) => {
        releaseFirst = resolve;
      });
      // The first begins and appends first, but commits last.
      const first = current.db.transaction(async (tx) => {
        await tx.query('SELECT 1');
        appendEvents(tx, [{ type: 'task.created', task_id: taskId(1) }]);
        await firstMayFinish;
      });
      await current.db.transaction(async (tx) => {
        appendEvents(tx, [{ type: 'task.created', task_id: taskId(2) }]);
      });
      releaseFirst();
      await first;
      expect((await eventsAfter(before)).map((r) => r.task_id)).toEqual([taskId(2), taskId(1)]);

      // Both flushing at once: the lock makes one wait for the other's COMMIT, so a reader that saw
      // the larger id can never later find the smaller one appear.
      const racing = await Promise.all(
        [3, 4, 5, 6].map((n) =>
          current.db.transaction(async (tx) => {
            appendEvents(tx, [
              { type: 'task.created', task_id: taskId(n) },
              { type: 'task.started', task_id: taskId(n) },
            ]);
          }),
        ),
      );
      expect(racing).toHaveLength(4);
      const rows = (await eventsAfter(before)).slice(2);
      // Each transaction's events are contiguous: nothing interleaves between flush and COMMIT.
      for (let i = 0; i < rows.length; i += 2) {
        expect(rows[i]!.task_id).toBe(rows[i + 1]!.task_id);
        expect([rows[i]!.type, rows[i + 1]!.type]).toEqual(['task.created', 'task.started']);
      }
    },
  );

  it.runIf(backend === 'postgres')(
    'takes the events lock last in a statement that appends events: a transaction holding a task row and then appending never deadlocks with it',
    async () => {
      const agent = await insertAgent(current.db, {
        name: 'lock-order agent',
        capabilities: ['lock-order'],
        apiKeyHash: 'x',
        createdBy: null,
      });
      const [x, y] = await insertTasksRecorded(current.db, [
        { title: 'x', capability: 'lock-order', created_by: null },
        { title: 'y', capability: 'lock-order', created_by: null },
      ]);
      await startTasks(current.db, {
        agentId: agent.id,
        agentCapabilities: ['lock-order'],
        items: [{ task_id: y!.id }, { task_id: x!.id }],
        leaseSeconds: 60,
      });
      const before = await lastId();
      let holding!: () => void;
      const rowHeld = new Promise<void>((resolve) => {
        holding = resolve;
      });
      // Like a cancel: the row first, its event at the end.
      const holder = current.db.transaction(async (tx) => {
        await tx.query('SELECT id FROM tasks WHERE id = $1 FOR UPDATE', [x!.id]);
        holding();
        await new Promise((resolve) => setTimeout(resolve, 300));
        appendEvents(tx, [{ type: 'task.requeued', task_id: x!.id }]);
      });
      await rowHeld;
      // Completes y at once, then waits for x's row; it must not hold the events lock meanwhile.
      const completing = completeTasks(current.db, {
        agentId: agent.id,
        items: [
          { task_id: y!.id, result: null, cost: null },
          { task_id: x!.id, result: null, cost: null },
        ],
      });
      await Promise.all([holder, completing]);
      expect((await completing).map((o) => o.outcome)).toEqual(['ok', 'ok']);
      // The holder committed first, so its event has the smaller id; the statement's follow in request order.
      expect((await eventsAfter(before)).map((r) => [r.type, r.task_id])).toEqual([
        ['task.requeued', x!.id],
        ['task.done', y!.id],
        ['task.done', x!.id],
      ]);
    },
  );
});
