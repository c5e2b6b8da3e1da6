import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backend, createTestDatabase, type TestDatabase } from '../../../test/db';
import type { Db, Queryable } from './client';
import { insertTasks } from './tasks';
import { withClaims } from './users';

let database: TestDatabase;
let db: Db;

beforeAll(async () => {
  database = await createTestDatabase();
  db = database.db;
  // Rows written as the owner (the service connection), for the roles to read.
  await insertTasks(db, [
    { title: 'visible 1', created_by: null },
    { title: 'visible 2', created_by: null },
  ]);
});

afterAll(async () => {
  await database?.drop();
});

const claimsFor = (role: string | undefined, sub: string = randomUUID()) => ({
  sub,
  role: 'authenticated',
  ...(role ? { app_metadata: { role } } : {}),
});

async function count(tx: Queryable, table: string): Promise<number> {
  const { rows } = await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
  return rows[0]!.n;
}

/** Counted as the owner, outside any role: what is really in the table. */
const ownerCount = (table: string) => count(db, table);

function insertTask(tx: Queryable, createdBy: string | null) {
  return tx.query('INSERT INTO tasks (title, created_by) VALUES ($1, $2)', ['from sql', createdBy]);
}

function insertAgentRow(tx: Queryable, createdBy: string | null) {
  return tx.query('INSERT INTO agents (name, api_key_hash, created_by) VALUES ($1, $2, $3)', [
    'sql agent',
    randomBytes(32).toString('hex'),
    createdBy,
  ]);
}

function publish(tx: Queryable, publisherId: string | null) {
  return tx.query(
    `INSERT INTO marketplace_items (item_type, name, version, publisher_id) VALUES ('agent', $1, '1.0.0', $2)`,
    [`item-${randomUUID()}`, publisherId],
  );
}

async function createUser(id: string): Promise<void> {
  await db.query(`INSERT INTO auth.users (id, email, raw_app_meta_data) VALUES ($1, $2, '{}')`, [
    id,
    `${id}@example.com`,
  ]);
}

const rlsViolation = /row-level security/;

describe(`row-level security on ${backend}`, () => {
  it('runs as the authenticated role, with the claims visible to auth.uid() and devart_role()', async () => {
    const sub = randomUUID();
    const seen = await withClaims(db, claimsFor('supervisor', sub), async (tx) => {
      const { rows } = await tx.query<{ who: string; uid: string; role: string }>(
        'SELECT current_user AS who, auth.uid()::text AS uid, public.devart_role() AS role',
      );
      return rows[0];
    });
    expect(seen).toEqual({ who: 'authenticated', uid: sub, role: 'supervisor' });
    // SET LOCAL: the role and the claims end with the transaction.
    const { rows } = await db.query<{ who: string; uid: string | null }>(
      'SELECT current_user AS who, auth.uid()::text AS uid',
    );
    expect(rows[0]!.who).not.toBe('authenticated');
    expect(rows[0]!.uid).toBeNull();
  });

  it('lets a viewer read tasks but not insert one', async () => {
    const viewer = claimsFor('viewer');
    expect(await withClaims(db, viewer, (tx) => count(tx, 'tasks'))).toBe(await ownerCount('tasks'));
    const before = await ownerCount('tasks');
    await expect(withClaims(db, viewer, (tx) => insertTask(tx, viewer.sub))).rejects.toThrow(rlsViolation);
    expect(await ownerCount('tasks')).toBe(before);
  });

  it('lets a supervisor insert a task only as itself', async () => {
    const supervisor = claimsFor('supervisor');
    const before = await ownerCount('tasks');
    await expect(withClaims(db, supervisor, (tx) => insertTask(tx, randomUUID()))).rejects.toThrow(
      rlsViolation,
    );
    await expect(withClaims(db, supervisor, (tx) => insertTask(tx, null))).rejects.toThrow(rlsViolation);
    expect(await ownerCount('tasks')).toBe(before);
    await withClaims(db, supervisor, (tx) => insertTask(tx, supervisor.sub));
    expect(await ownerCount('tasks')).toBe(before + 1);
    const { rows } = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM tasks WHERE created_by = $1',
      [supervisor.sub],
    );
    expect(rows[0]!.n).toBe(1);
  });

  it('lets a supervisor publish to the marketplace only as itself, and a viewer not at all', async () => {
    const viewer = claimsFor('viewer');
    const supervisor = claimsFor('supervisor');
    await createUser(viewer.sub);
    await createUser(supervisor.sub);
    const other = randomUUID();
    await createUser(other);

    await expect(withClaims(db, viewer, (tx) => publish(tx, viewer.sub))).rejects.toThrow(rlsViolation);
    await expect(withClaims(db, supervisor, (tx) => publish(tx, other))).rejects.toThrow(rlsViolation);
    await expect(withClaims(db, supervisor, (tx) => publish(tx, null))).rejects.toThrow(rlsViolation);
    expect(await ownerCount('marketplace_items')).toBe(0);

    await withClaims(db, supervisor, (tx) => publish(tx, supervisor.sub));
    const { rows } = await db.query<{ publisher_id: string }>(
      'SELECT publisher_id::text FROM marketplace_items',
    );
    expect(rows).toEqual([{ publisher_id: supervisor.sub }]);
    // Everyone with a role reads what was published.
    expect(await withClaims(db, viewer, (tx) => count(tx, 'marketplace_items'))).toBe(1);
  });

  it('lets a direct client yank only its own versions, and never touch counts or write a non-semver version', async () => {
    const owner = claimsFor('supervisor');
    const other = claimsFor('supervisor');
    await createUser(owner.sub);
    await createUser(other.sub);
    const name = `direct-${randomUUID()}`;
    await withClaims(db, owner, (tx) =>
      tx.query(
        `INSERT INTO marketplace_items (item_type, name, version, publisher_id) VALUES ('agent', $1, '1.0.0', $2)`,
        [name, owner.sub],
      ),
    );
    const yank = (tx: Queryable) =>
      tx.query('UPDATE marketplace_items SET yanked_at = now() WHERE name = $1', [name]);
    expect((await withClaims(db, other, yank)).rowCount).toBe(0);
    expect((await withClaims(db, owner, yank)).rowCount).toBe(1);
    await expect(
      withClaims(db, owner, (tx) =>
        tx.query('UPDATE marketplace_items SET downloads = 1000 WHERE name = $1', [name]),
      ),
    ).rejects.toThrow(/permission denied/);
    await expect(
      withClaims(db, owner, (tx) =>
        tx.query(
          `INSERT INTO marketplace_items (item_type, name, version, publisher_id, downloads) VALUES ('agent', $1, '2.0.0', $2, 5)`,
          [name, owner.sub],
        ),
      ),
    ).rejects.toThrow(/permission denied/);
    await expect(
      withClaims(db, owner, (tx) =>
        tx.query(
          `INSERT INTO marketplace_items (item_type, name, version, publisher_id) VALUES ('agent', $1, 'latest', $2)`,
          [name, owner.sub],
        ),
      ),
    ).rejects.toThrow(/marketplace_items_version_check/);
  });

  it('lets only an admin register an agent, and only as itself', async () => {
    const before = await ownerCount('agents');
    for (const role of ['viewer', 'supervisor', undefined]) {
      const claims = claimsFor(role);
      await expect(withClaims(db, claims, (tx) => insertAgentRow(tx, claims.sub))).rejects.toThrow(
        rlsViolation,
      );
    }
    const admin = claimsFor('admin');
    await expect(withClaims(db, admin, (tx) => insertAgentRow(tx, randomUUID()))).rejects.toThrow(
      rlsViolation,
    );
    expect(await ownerCount('agents')).toBe(before);
    await withClaims(db, admin, (tx) => insertAgentRow(tx, admin.sub));
    expect(await ownerCount('agents')).toBe(before + 1);
  });

  it('keeps agents.api_key_hash from the authenticated role, admins included', async () => {
    await insertAgentRow(db, null);
    const admin = claimsFor('admin');
    const { rows } = await withClaims(db, admin, (tx) =>
      tx.query<{ id: string; name: string }>('SELECT id, name FROM agents'),
    );
    expect(rows.length).toBeGreaterThan(0);
    for (const sql of [
      'SELECT api_key_hash FROM agents',
      'SELECT * FROM agents',
      "SELECT id FROM agents WHERE api_key_hash = 'x'",
    ]) {
      await expect(
        withClaims(db, admin, (tx) => tx.query(sql)),
        sql,
      ).rejects.toThrow(/permission denied for (table|relation) agents/);
    }
  });

  it('shows nothing to claims without a role', async () => {
    expect(await ownerCount('tasks')).toBeGreaterThan(0);
    await insertAgentRow(db, null);
    const roleless = claimsFor(undefined);
    expect(await withClaims(db, roleless, (tx) => count(tx, 'tasks'))).toBe(0);
    expect(await withClaims(db, roleless, (tx) => count(tx, 'workflows'))).toBe(0);
    const { rows } = await withClaims(db, roleless, (tx) => tx.query('SELECT id FROM agents'));
    expect(rows).toEqual([]);
    // An unknown role is no role.
    expect(await withClaims(db, claimsFor('root'), (tx) => count(tx, 'tasks'))).toBe(0);
  });

  it('answers auth.uid() null for empty claims, without an error, and shows nothing', async () => {
    const viaHelper = await withClaims(db, {}, async (tx) => {
      const { rows } = await tx.query<{ uid: string | null; role: string | null }>(
        'SELECT auth.uid()::text AS uid, public.devart_role() AS role',
      );
      return { ...rows[0], tasks: await count(tx, 'tasks') };
    });
    expect(viaHelper).toEqual({ uid: null, role: null, tasks: 0 });

    // What PostgREST leaves when no JWT came: the setting exists but is the empty string.
    const viaEmptySetting = await db.transaction(async (tx) => {
      await tx.query(
        "SELECT set_config('request.jwt.claims', '', true), set_config('role', 'authenticated', true)",
      );
      const { rows } = await tx.query<{ uid: string | null; role: string | null }>(
        'SELECT auth.uid()::text AS uid, public.devart_role() AS role',
      );
      return { ...rows[0], tasks: await count(tx, 'tasks') };
    });
    expect(viaEmptySetting).toEqual({ uid: null, role: null, tasks: 0 });
  });

  it('lets a roleless caller write nothing anywhere', async () => {
    const roleless = claimsFor(undefined);
    const before = await Promise.all(['tasks', 'workflows'].map(ownerCount));
    await expect(withClaims(db, roleless, (tx) => insertTask(tx, roleless.sub))).rejects.toThrow(
      rlsViolation,
    );
    await expect(
      withClaims(db, roleless, (tx) =>
        tx.query('INSERT INTO workflows (name, created_by) VALUES ($1, $2)', ['wf', roleless.sub]),
      ),
    ).rejects.toThrow(rlsViolation);
    // Users update no task column at all (0016, see rls-tightened.test.ts).
    await expect(
      withClaims(db, roleless, (tx) => tx.query("UPDATE tasks SET title = 'hijacked'")),
    ).rejects.toThrow(/permission denied/);
    // Where a column is granted, an UPDATE sees no rows under the read policy, so it changes none
    // rather than failing.
    const updated = await withClaims(db, roleless, (tx) => tx.query('UPDATE agents SET revoked_at = now()'));
    expect(updated.rowCount).toBe(0);
    expect(await Promise.all(['tasks', 'workflows'].map(ownerCount))).toEqual(before);
    const { rows } = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM tasks WHERE title = 'hijacked'",
    );
    expect(rows[0]!.n).toBe(0);
  });
});
