import type { Problem } from '@devart/contracts';
import type { Queryable } from '@devart/db';
import { expect } from 'vitest';

/**
 * Asserts an RFC 9457 answer: the status, `application/problem+json`, and the members every
 * devart problem carries. Returns the body for further checks.
 * @example const problem = await expectProblem(res, 404, 'not_found');
 */
export async function expectProblem(res: Response, status: number, code?: string): Promise<Problem> {
  const text = await res.text();
  expect(res.status, `${res.status} ${text}`).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = JSON.parse(text) as Problem;
  expect(body).toMatchObject({
    type: expect.stringMatching(/^urn:devart:problem:[a-z_]+$/),
    title: expect.any(String),
    status,
    detail: expect.any(String),
  });
  expect(body.detail!.length).toBeGreaterThan(0);
  if (code) expect(body.type).toBe(`urn:devart:problem:${code}`);
  return body;
}

/** Row counts of the tables the API writes. */
export async function countRows(db: Queryable): Promise<{ tasks: number; agents: number }> {
  const { rows } = await db.query<{ tasks: number; agents: number }>(
    'SELECT (SELECT count(*)::int FROM tasks) AS tasks, (SELECT count(*)::int FROM agents) AS agents',
  );
  return rows[0]!;
}

/**
 * A digest of every row of every table in the public schema (the migration ledger aside; auth.users
 * too, which records callers): equal digests before and after a request mean it wrote nothing.
 * An agent's `last_heartbeat_at` is left out: every call an agent makes, refused or not, is a sign
 * of life the platform records (at most once a second), not a write the request asked for.
 */
export async function digestRows(db: Queryable): Promise<string> {
  const { rows: tables } = await db.query<{ name: string }>(
    `SELECT quote_ident(tablename) AS name FROM pg_tables
     WHERE schemaname = 'public' AND tablename <> 'schema_migrations' ORDER BY tablename`,
  );
  const { rows } = await db.query<{ digest: string }>(
    `SELECT concat_ws(' ', ${tables
      .map(
        ({ name }) =>
          `'${name}=' || (SELECT count(*) || ':' || md5(coalesce(string_agg((to_jsonb(r) - 'last_heartbeat_at')::text, '|' ORDER BY (to_jsonb(r) - 'last_heartbeat_at')::text), '')) FROM ${name} r)`,
      )
      .join(', ')}) AS digest`,
  );
  return rows[0]!.digest;
}
