import type { Queryable } from './client';

/** True when devart created auth.users (embedded mode, plain PostgreSQL); false on Supabase. */
export async function ownsAuthUsers(db: Queryable): Promise<boolean> {
  const { rows } = await db.query<{ owned: boolean | null }>(
    "SELECT obj_description('auth.users'::regclass, 'pg_class') LIKE 'devart:owned%' AS owned",
  );
  return rows[0]?.owned === true;
}

/** Records a user first seen in a verified token; an existing row is left as it is. */
export async function upsertUser(
  db: Queryable,
  user: { id: string; email: string | null; role: string },
): Promise<void> {
  await db.query(
    `INSERT INTO auth.users (id, email, raw_app_meta_data) VALUES ($1, $2, jsonb_build_object('role', $3::text))
     ON CONFLICT (id) DO NOTHING`,
    [user.id, user.email, user.role],
  );
}

/**
 * Runs `fn` in a transaction as the `authenticated` role with the given JWT claims, the way
 * Supabase's PostgREST does, so row-level security policies apply.
 */
export async function withClaims<T>(
  db: { transaction<R>(fn: (tx: Queryable) => Promise<R>): Promise<R> },
  claims: Record<string, unknown>,
  fn: (tx: Queryable) => Promise<T>,
): Promise<T> {
  return db.transaction(async (tx) => {
    await tx.query(
      "SELECT set_config('request.jwt.claims', $1, true), set_config('role', 'authenticated', true)",
      [JSON.stringify(claims)],
    );
    return fn(tx);
  });
}
