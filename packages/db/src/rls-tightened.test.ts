import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backend, createTestDatabase, type TestDatabase } from '../../../test/db';
import { connectPostgres, type Db, type Queryable } from './client';
import { migrate } from './migrate';
import { insertTasks } from './tasks';
import { withClaims } from './users';

// What a direct client (PostgREST, Supabase) can write as `authenticated`, against what the API
// lets the same user do (migration 0016). PostgreSQL only: the concurrent publish needs two
// connections, and PGlite has one.
const postgres = backend === 'postgres';

let database: TestDatabase;
let db: Db;
let taskId: string;
let workflowId: string;
let runId: string;
let agentId: string;

beforeAll(async () => {
  if (!postgres) return;
  database = await createTestDatabase();
  db = database.db;
  // Rows the platform wrote, as the service connection (the tables' owner).
  const { rows: agents } = await db.query<{ id: string }>(
    `INSERT INTO agents (name, api_key_hash) VALUES ('worker', $1) RETURNING id`,
    [randomBytes(32).toString('hex')],
  );
  agentId = agents[0]!.id;
  const { rows: workflows } = await db.query<{ id: string }>(
    `INSERT INTO workflows (name, definition) VALUES ('wf', '{"steps": []}') RETURNING id`,
  );
  workflowId = workflows[0]!.id;
  const { rows: runs } = await db.query<{ id: string }>(
    `INSERT INTO workflow_runs (workflow_id, definition) VALUES ($1, '{"steps": []}') RETURNING id`,
    [workflowId],
  );
  runId = runs[0]!.id;
  const { rows: tasks } = await db.query<{ id: string }>(
    `INSERT INTO tasks (title, status, attempt, agent_id, workflow_run_id, step_key, lease_expires_at)
     VALUES ('running', 'IN_PROGRESS', 1, $1, $2, 'a', now() + interval '1 minute') RETURNING id`,
    [agentId, runId],
  );
  taskId = tasks[0]!.id;
});

afterAll(async () => {
  await database?.drop();
});

const claimsFor = (role: 'viewer' | 'supervisor' | 'admin', sub: string = randomUUID()) => ({
  sub,
  role: 'authenticated',
  app_metadata: { role },
});
type Claims = ReturnType<typeof claimsFor>;

async function user(role: 'viewer' | 'supervisor' | 'admin'): Promise<Claims> {
  const claims = claimsFor(role);
  await db.query(`INSERT INTO auth.users (id, email) VALUES ($1, $2)`, [
    claims.sub,
    `${claims.sub}@example.com`,
  ]);
  return claims;
}

const denied = /permission denied for (table|relation)/;
const rlsViolation = /row-level security/;

function publish(tx: Queryable, claims: Claims, name: string, version: string, itemType = 'agent') {
  return tx.query(
    'INSERT INTO marketplace_items (item_type, name, version, publisher_id) VALUES ($1, $2, $3, $4)',
    [itemType, name, version, claims.sub],
  );
}

/** The task as the owner sees it, to show a refused write left it alone. */
async function task() {
  const { rows } = await db.query('SELECT * FROM tasks WHERE id = $1', [taskId]);
  return rows[0];
}

describe.runIf(postgres)('row-level security as tight as the API, on PostgreSQL', () => {
  it('lets the first publisher of a name, or an admin, publish its later versions, and no one else', async () => {
    const owner = await user('supervisor');
    const other = await user('supervisor');
    const admin = await user('admin');
    const name = `owned-${randomUUID()}`;

    await withClaims(db, owner, (tx) => publish(tx, owner, name, '1.0.0'));
    await expect(withClaims(db, other, (tx) => publish(tx, other, name, '2.0.0'))).rejects.toThrow(
      rlsViolation,
    );
    await withClaims(db, owner, (tx) => publish(tx, owner, name, '1.1.0'));
    // As the API: the first version fixes the type too.
    await expect(
      withClaims(db, owner, (tx) => publish(tx, owner, name, '1.2.0', 'workflow')),
    ).rejects.toThrow(rlsViolation);
    await withClaims(db, admin, (tx) => publish(tx, admin, name, '3.0.0'));
    // A new name belongs to whoever publishes it first.
    await withClaims(db, other, (tx) => publish(tx, other, `${name}-fork`, '1.0.0'));

    const { rows } = await db.query<{ version: string; publisher_id: string }>(
      'SELECT version, publisher_id::text FROM marketplace_items WHERE name = $1 ORDER BY version',
      [name],
    );
    expect(rows).toEqual([
      { version: '1.0.0', publisher_id: owner.sub },
      { version: '1.1.0', publisher_id: owner.sub },
      { version: '3.0.0', publisher_id: admin.sub },
    ]);
  });

  it('keeps a name the platform published without a publisher for admins', async () => {
    const name = `seeded-${randomUUID()}`;
    await db.query(`INSERT INTO marketplace_items (item_type, name, version) VALUES ('agent', $1, '1.0.0')`, [
      name,
    ]);
    const supervisor = await user('supervisor');
    await expect(withClaims(db, supervisor, (tx) => publish(tx, supervisor, name, '1.1.0'))).rejects.toThrow(
      rlsViolation,
    );
    const admin = await user('admin');
    await withClaims(db, admin, (tx) => publish(tx, admin, name, '1.1.0'));
  });

  it('decides two first publishes of one name one after the other: the second sees the first and is refused', async () => {
    const first = await user('supervisor');
    const second = await user('supervisor');
    const name = `race-${randomUUID()}`;
    let inserted!: () => void;
    const firstInserted = new Promise<void>((resolve) => {
      inserted = resolve;
    });
    let commit!: () => void;
    const mayCommit = new Promise<void>((resolve) => {
      commit = resolve;
    });
    const firstPublish = withClaims(db, first, async (tx) => {
      await publish(tx, first, name, '1.0.0');
      inserted();
      await mayCommit;
    });
    await firstInserted;
    const secondPublish = withClaims(db, second, (tx) => publish(tx, second, name, '2.0.0'));
    const outcome = secondPublish.then(
      () => 'published',
      (error: Error) => error.message,
    );
    // The second waits on the name's lock while the first is open.
    expect(await Promise.race([outcome, new Promise((r) => setTimeout(() => r('waiting'), 300))])).toBe(
      'waiting',
    );
    commit();
    await firstPublish;
    expect(await outcome).toMatch(rlsViolation);
  });

  it('lets a supervisor create a task with the fields of POST /api/tasks, and nothing else', async () => {
    const supervisor = await user('supervisor');
    const { rows } = await withClaims(db, supervisor, (tx) =>
      tx.query<{ status: string; attempt: number }>(
        `INSERT INTO tasks (title, description, capability, payload, priority, max_retries, retry_backoff, created_by)
         VALUES ('direct', 'd', 'code', '{"a": 1}', 5, 2, '{"base_ms": 100, "cap_ms": 1000}', $1)
         RETURNING status, attempt`,
        [supervisor.sub],
      ),
    );
    expect(rows).toEqual([{ status: 'TODO', attempt: 0 }]);

    const forged: [column: string, value: string][] = [
      ['status', `'DONE'`],
      ['result', `'{"ok": true}'`],
      ['cost', '0.5'],
      ['agent_id', `'${agentId}'`],
      ['attempt', '7'],
      ['lease_expires_at', 'now()'],
      ['next_attempt_at', 'now()'],
      ['retry_count', '0'],
      ['last_error', `'x'`],
      ['workflow_run_id', `'${runId}'`],
      ['step_key', `'a'`],
      ['started_at', 'now()'],
      ['completed_at', 'now()'],
      ['updated_at', 'now()'],
    ];
    for (const [column, value] of forged) {
      await expect(
        withClaims(db, supervisor, (tx) =>
          tx.query(`INSERT INTO tasks (title, created_by, ${column}) VALUES ('forged', $1, ${value})`, [
            supervisor.sub,
          ]),
        ),
        column,
      ).rejects.toThrow(denied);
    }
  });

  it('refuses every update of a task to supervisors and admins: results, status, costs, attempts and leases stay the platform’s', async () => {
    const before = await task();
    const updates = [
      `result = '{"forged": true}'`,
      `status = 'DONE'`,
      'cost = 0',
      'attempt = attempt + 1',
      "lease_expires_at = now() + interval '1 day'",
      'next_attempt_at = NULL',
      'agent_id = NULL',
      'retry_count = 0',
      'max_retries = 100',
      `last_error = NULL`,
      'completed_at = now()',
      `title = 'renamed'`,
      `payload = '{}'`,
    ];
    for (const role of ['supervisor', 'admin'] as const) {
      const claims = await user(role);
      for (const set of updates) {
        await expect(
          withClaims(db, claims, (tx) => tx.query(`UPDATE tasks SET ${set} WHERE id = $1`, [taskId])),
          `${role}: ${set}`,
        ).rejects.toThrow(denied);
      }
    }
    expect(await task()).toEqual(before);
  });

  it('lets a supervisor create a workflow as POST /api/workflows does, never edit one or claim marketplace provenance', async () => {
    const supervisor = await user('supervisor');
    await withClaims(db, supervisor, (tx) =>
      tx.query(
        `INSERT INTO workflows (name, description, definition, created_by) VALUES ('mine', 'd', '{"steps": []}', $1)`,
        [supervisor.sub],
      ),
    );
    const { rows: items } = await db.query<{ id: string }>(
      `INSERT INTO marketplace_items (item_type, name, version) VALUES ('workflow', $1, '1.0.0') RETURNING id`,
      [`popular-${randomUUID()}`],
    );
    await expect(
      withClaims(db, supervisor, (tx) =>
        tx.query(
          'INSERT INTO workflows (name, definition, created_by, marketplace_item_id) VALUES ($1, $2, $3, $4)',
          ['fake install', '{"steps": []}', supervisor.sub, items[0]!.id],
        ),
      ),
    ).rejects.toThrow(denied);
    for (const set of [`definition = '{"steps": [{"key": "evil"}]}'`, `name = 'x'`, `description = 'x'`]) {
      await expect(
        withClaims(db, supervisor, (tx) =>
          tx.query(`UPDATE workflows SET ${set} WHERE id = $1`, [workflowId]),
        ),
        set,
      ).rejects.toThrow(denied);
    }
    const { rows } = await db.query('SELECT definition FROM workflows WHERE id = $1', [workflowId]);
    expect(rows).toEqual([{ definition: { steps: [] } }]);
  });

  it('leaves runs to the platform: no direct insert, no status, cost or definition update', async () => {
    const supervisor = await user('supervisor');
    await expect(
      withClaims(db, supervisor, (tx) =>
        tx.query('INSERT INTO workflow_runs (workflow_id, created_by) VALUES ($1, $2)', [
          workflowId,
          supervisor.sub,
        ]),
      ),
    ).rejects.toThrow(denied);
    for (const set of [`status = 'COMPLETED'`, 'total_cost = 0', `definition = '{}'`, 'end_time = now()']) {
      await expect(
        withClaims(db, supervisor, (tx) =>
          tx.query(`UPDATE workflow_runs SET ${set} WHERE id = $1`, [runId]),
        ),
        set,
      ).rejects.toThrow(denied);
    }
    // Reading is unchanged.
    const { rows } = await withClaims(db, supervisor, (tx) =>
      tx.query('SELECT status FROM workflow_runs WHERE id = $1', [runId]),
    );
    expect(rows).toEqual([{ status: 'RUNNING' }]);
  });

  it('lets an admin revoke an agent directly, and not rewrite its key, status or name', async () => {
    const admin = await user('admin');
    for (const set of [
      `api_key_hash = 'known'`,
      `status = 'BUSY'`,
      `name = 'x'`,
      'last_heartbeat_at = now()',
    ]) {
      await expect(
        withClaims(db, admin, (tx) => tx.query(`UPDATE agents SET ${set} WHERE id = $1`, [agentId])),
        set,
      ).rejects.toThrow(denied);
    }
    await expect(
      withClaims(db, admin, (tx) =>
        tx.query(`INSERT INTO agents (name, api_key_hash, created_by, status) VALUES ('a', $1, $2, 'BUSY')`, [
          randomBytes(32).toString('hex'),
          admin.sub,
        ]),
      ),
    ).rejects.toThrow(denied);
    const revoked = await withClaims(db, admin, (tx) =>
      tx.query('UPDATE agents SET revoked_at = now() WHERE id = $1', [agentId]),
    );
    expect(revoked.rowCount).toBe(1);
  });

  it('runs the platform as a runtime role that owns nothing (docs/security.md): start-up migrate is a no-op, its statements work, DDL is refused', async () => {
    const role = `devart_rt_${randomBytes(4).toString('hex')}`;
    const password = randomBytes(12).toString('hex');
    const { rows } = await db.query<{ name: string }>('SELECT current_database() AS name');
    const name = rows[0]!.name;
    await db.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    try {
      // The set-up of docs/security.md, as the tables' owner.
      await db.exec(`
        REVOKE CREATE ON SCHEMA public FROM PUBLIC;
        GRANT CONNECT ON DATABASE ${name} TO ${role};
        GRANT USAGE ON SCHEMA public, auth TO ${role};
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public, auth TO ${role};
        GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public, auth TO ${role};
        GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public, auth TO ${role};`);
      const url = new URL(database.url as string);
      url.username = role;
      url.password = password;
      const runtime = connectPostgres(url.toString(), { max: 1 });
      try {
        // Row-level security applies to it: without its own policy it sees nothing.
        expect((await runtime.query('SELECT id FROM tasks')).rows).toEqual([]);
        await db.exec(`
          DO $$
          DECLARE t record;
          BEGIN
            FOR t IN
              SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity AND n.nspname IN ('public', 'auth')
                 AND NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'devart_runtime')
            LOOP
              EXECUTE format('CREATE POLICY devart_runtime ON %I.%I TO ${role} USING (true) WITH CHECK (true)',
                             t.nspname, t.relname);
            END LOOP;
          END
          $$;`);
        expect((await migrate(runtime)).applied).toEqual([]);
        const [created] = await insertTasks(runtime, [{ title: 'by the runtime role', created_by: null }]);
        expect((await runtime.query('SELECT id FROM tasks WHERE id = $1', [created!.id])).rows).toHaveLength(
          1,
        );
        for (const ddl of [
          'ALTER TABLE tasks DISABLE ROW LEVEL SECURITY',
          'DROP POLICY tasks_read ON tasks',
          'CREATE TABLE public.mine (id int)',
        ]) {
          await expect(runtime.query(ddl), ddl).rejects.toThrow(/must be owner|permission denied/);
        }
      } finally {
        await runtime.close();
      }
    } finally {
      await db.exec(`DROP OWNED BY ${role}; DROP ROLE ${role};`);
    }
  });
});
