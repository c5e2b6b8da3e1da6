import { agentStatusValues, sandboxStatusValues, TaskMessage, taskStatusValues } from '@devart/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backend, createTestDatabase, type TestDatabase } from '../../../test/db';

// The API's vocabulary lives in packages/contracts; the schema has its own copy in CHECK
// constraints and SQL functions. These tests keep the two equal.
let current: TestDatabase;
beforeAll(async () => {
  current = await createTestDatabase();
});
afterAll(() => current?.drop());

/** The values of a `CHECK (column IN (...))` constraint, as PostgreSQL reads it back. */
async function checkedValues(table: string, column: string): Promise<string[]> {
  const { rows } = await current.db.query<{ def: string }>(
    `SELECT pg_get_constraintdef(c.oid) AS def FROM pg_constraint c
     WHERE c.conrelid = $1::regclass AND c.contype = 'c' AND pg_get_constraintdef(c.oid) LIKE $2`,
    [table, `%(${column} = ANY%`],
  );
  expect(rows, `one CHECK on ${table}.${column}`).toHaveLength(1);
  return [...rows[0]!.def.matchAll(/'([^']*)'::text/g)].map((m) => m[1]!);
}

describe(`the database and the contracts agree, on ${backend}`, () => {
  it('on the task, agent and sandbox states', async () => {
    expect(await checkedValues('tasks', 'status')).toEqual([...taskStatusValues]);
    expect(await checkedValues('agents', 'status')).toEqual([...agentStatusValues]);
    expect(await checkedValues('sandboxes', 'status')).toEqual([...sandboxStatusValues]);
  });

  it('devart_task_message() builds a message the devart.task.v1 contract accepts', async () => {
    const { rows } = await current.db.query<{ message: unknown }>(
      `SELECT devart_task_message('0b7c3d7e-1d7a-4c55-9a43-0c1c1d1e1f10', 2, 'shell', 'lint',
                                  '{"command": ["npm", "run", "lint"]}', NULL) AS message`,
    );
    const message = TaskMessage.parse(rows[0]!.message);
    expect(message).toMatchObject({
      task_id: '0b7c3d7e-1d7a-4c55-9a43-0c1c1d1e1f10',
      attempt: 2,
      capability: 'shell',
    });
    expect(Object.keys(rows[0]!.message as object).sort()).toEqual(Object.keys(TaskMessage.shape).sort());
    expect(new Date(message.enqueued_at).toISOString()).toBe(message.enqueued_at.replace(/\d{3}Z$/, 'Z'));
  });
});
