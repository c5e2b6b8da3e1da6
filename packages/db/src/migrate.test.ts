import { afterEach, describe, expect, it } from 'vitest';
import { backend, createTestDatabase, type TestDatabase } from '../../../test/db';
import { connectPostgres, type Db } from './client';
import { loadMigrations, MigrationMismatchError, migrate, migrationStatus } from './migrate';

let current: TestDatabase | undefined;
afterEach(async () => {
  await current?.drop();
  current = undefined;
});

async function emptyDb(): Promise<Db> {
  current = await createTestDatabase({ empty: true });
  return current.db;
}

async function columnsOf(db: Db, table: string) {
  const { rows } = await db.query<{ column_name: string; data_type: string; column_default: string | null }>(
    `SELECT column_name, data_type, column_default FROM information_schema.columns
     WHERE table_schema = 'public' AND table_name = $1`,
    [table],
  );
  return Object.fromEntries(
    rows.map((r) => [r.column_name, { type: r.data_type, default: r.column_default }]),
  );
}

describe(`migrations on ${backend}`, () => {
  it('apply from empty, record each file with its checksum, and a second run is a no-op', async () => {
    const db = await emptyDb();
    const files = loadMigrations();
    const first = await migrate(db);
    expect(first.applied).toEqual(files.map((m) => m.name));
    const { rows } = await db.query<{ version: string; checksum: string }>(
      'SELECT version, checksum FROM schema_migrations ORDER BY version',
    );
    expect(rows).toEqual(files.map((m) => ({ version: m.version, checksum: m.checksum })));

    const second = await migrate(db);
    expect(second.applied).toEqual([]);
    expect(second.alreadyApplied).toHaveLength(files.length);
    expect(await migrationStatus(db)).toEqual({ pending: [], unknown: [] });
  });

  it('two concurrent migrators apply every file exactly once', async () => {
    const db = await emptyDb();
    let reports: Awaited<ReturnType<typeof migrate>>[];
    if (current?.url) {
      // Two separate pools stand for two processes starting at the same moment.
      const a = connectPostgres(current.url, { max: 1 });
      const b = connectPostgres(current.url, { max: 1 });
      reports = await Promise.all([migrate(a), migrate(b)]);
      await Promise.all([a.close(), b.close()]);
    } else {
      reports = await Promise.all([migrate(db), migrate(db)]);
    }
    const files = loadMigrations().map((m) => m.name);
    expect([...reports[0]!.applied, ...reports[1]!.applied].sort()).toEqual(files);
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_migrations');
    expect(rows[0]!.n).toBe(files.length);
  });

  it('stops with a clear message when an applied file was changed', async () => {
    const db = await emptyDb();
    await migrate(db);
    const edited = loadMigrations().map((m, i) => (i === 1 ? { ...m, checksum: 'f'.repeat(64) } : m));
    await expect(migrate(db, { migrations: edited })).rejects.toThrow(MigrationMismatchError);
    await expect(migrate(db, { migrations: edited })).rejects.toThrow(/0002_base_schema\.sql.*append-only/);
  });

  it('rolls back a failing migration whole, leaving nothing half-written', async () => {
    const db = await emptyDb();
    const broken = [
      ...loadMigrations(),
      { version: '9999', name: '9999_broken', checksum: 'x', sql: 'CREATE TABLE half (id int); SELECT 1/0;' },
    ];
    await expect(migrate(db, { migrations: broken })).rejects.toThrow(/division by zero/);
    const { rows } = await db.query<{ t: string | null }>("SELECT to_regclass('public.half')::text AS t");
    expect(rows[0]!.t).toBeNull();
    expect((await migrationStatus(db, broken)).pending).toEqual(['9999_broken']);
  });

  it("creates the seed's columns with the seed's types", async () => {
    const db = await emptyDb();
    await migrate(db);
    const market = await columnsOf(db, 'marketplace_items');
    expect(Object.fromEntries(Object.entries(market).map(([k, v]) => [k, v.type]))).toEqual({
      id: 'uuid',
      item_type: 'text',
      name: 'text',
      description: 'text',
      version: 'text',
      publisher_id: 'uuid',
      tags: 'jsonb',
      repository_url: 'text',
      created_at: 'timestamp with time zone',
      // Added by 0010 for search, yanking and installs.
      manifest: 'jsonb',
      yanked_at: 'timestamp with time zone',
      downloads: 'bigint',
      version_key: 'text',
      search: 'tsvector',
    });
    const tasks = await columnsOf(db, 'tasks');
    expect(tasks.retry_count).toEqual({ type: 'integer', default: '0' });
    expect(tasks.max_retries).toEqual({ type: 'integer', default: '3' });
    expect(tasks.last_error?.type).toBe('text');
    expect(tasks.workflow_run_id?.type).toBe('uuid');
    const runs = await columnsOf(db, 'workflow_runs');
    // The seed's columns with the seed's types; later migrations may add columns of their own.
    expect(Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, v.type]))).toMatchObject({
      id: 'uuid',
      workflow_id: 'uuid',
      status: 'text',
      trigger_context: 'jsonb',
      start_time: 'timestamp with time zone',
      end_time: 'timestamp with time zone',
      total_cost: 'numeric',
    });
    expect(runs.status?.default).toBe("'RUNNING'::text");

    const { rows: comments } = await db.query<{ tbl: string | null; retry: string | null }>(
      `SELECT obj_description('marketplace_items'::regclass, 'pg_class') AS tbl,
              col_description('tasks'::regclass, (SELECT attnum FROM pg_attribute
                WHERE attrelid = 'tasks'::regclass AND attname = 'retry_count')) AS retry`,
    );
    expect(comments[0]).toEqual({
      tbl: 'Stores metadata for shared agents and workflows.',
      retry: 'The number of times this task has been attempted.',
    });
    const { rows: fks } = await db.query<{ def: string }>(
      `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint
       WHERE conrelid = 'tasks'::regclass AND contype = 'f' AND conname LIKE '%workflow_run%'`,
    );
    expect(fks[0]?.def).toBe('FOREIGN KEY (workflow_run_id) REFERENCES workflow_runs(id) ON DELETE SET NULL');
  });

  it('enables row-level security on every table', async () => {
    const db = await emptyDb();
    await migrate(db);
    const { rows } = await db.query<{ relname: string }>(
      `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'public' AND c.relkind = 'r' AND NOT c.relrowsecurity`,
    );
    expect(rows).toEqual([]);
  });

  it('leaves an existing auth.users and auth.uid() (as on Supabase) untouched', async () => {
    const db = await emptyDb();
    await db.exec(`
      CREATE SCHEMA auth;
      CREATE TABLE auth.users (id uuid PRIMARY KEY, email varchar(255), aud varchar(255), raw_app_meta_data jsonb,
        created_at timestamptz, instance_id uuid);
      COMMENT ON TABLE auth.users IS 'Auth: Stores user login data within a secure schema.';
      CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS
        $$ SELECT coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
             (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid $$;
    `);
    const before = await db.query(
      `SELECT pg_get_functiondef('auth.uid()'::regprocedure) AS fn,
              (SELECT string_agg(column_name || ':' || data_type, ',' ORDER BY ordinal_position)
               FROM information_schema.columns WHERE table_schema = 'auth' AND table_name = 'users') AS cols,
              obj_description('auth.users'::regclass, 'pg_class') AS comment,
              (SELECT relrowsecurity FROM pg_class WHERE oid = 'auth.users'::regclass) AS rls`,
    );
    await migrate(db);
    const after = await db.query(
      `SELECT pg_get_functiondef('auth.uid()'::regprocedure) AS fn,
              (SELECT string_agg(column_name || ':' || data_type, ',' ORDER BY ordinal_position)
               FROM information_schema.columns WHERE table_schema = 'auth' AND table_name = 'users') AS cols,
              obj_description('auth.users'::regclass, 'pg_class') AS comment,
              (SELECT relrowsecurity FROM pg_class WHERE oid = 'auth.users'::regclass) AS rls`,
    );
    expect(after.rows).toEqual(before.rows);
  });
});

/**
 * Released files, byte for byte: existing installations recorded these checksums, and a file that
 * no longer matches stops their start-up. Append a line for each new file once it is released.
 */
const released: [name: string, sha256: string][] = [
  ['0001_auth', 'ec6476eb9e69bea174f0b1bf5983b6b9c075bde1273d55949c1e745823899af3'],
  ['0002_base_schema', '90212f359ef6fdea59f00f3b3662908167f5068cac7bfb554ef905a9d6f0554d'],
  ['0003_marketplace_items', 'bb17a195b72b402b87d1930114c4df35c4f9b027938dc71fa091b794ef80bca2'],
  ['0004_task_retries', '4cf9482dadec74f82e311278ab0ece8ee5f232f0aa6c9f1a0eed176d3f06b7a7'],
  ['0005_workflow_runs', '5f5bf117d59cab807fa91004bb697f32a693bf980d7ea884de5a4ca28573e11f'],
  ['0006_row_level_security', 'dcb052fbfb628fcb79c643db72e817f3b7d3907a7c557d509e6d018ec47abba8'],
  ['0007_dispatch', 'cb66d274ed6be7d39f8ad9ecc7c41935ca5268d6808bc5d0d67af94c0c7e0d68'],
  ['0008_task_failures', '06e66e0c0fddb47a8a22130dad3fafa07118f15ea407b166c9a5bf8ae9b28ea4'],
  ['0009_workflow_run_progress', '5c6b6ea297b5b81ac1f9202812a0202c88aa5067df5c8a13a5f610dec123b6b9'],
  ['0010_marketplace', '2a40558ab26788a1d2f5195560e34e851ae85017680298843987d6a29651fd30'],
  ['0011_sandboxes', '88e9fed22979022b68856f5bde4a4cebb68b88f0904b48a79dfe62c3b81110bd'],
  ['0012_reconcile_index', '36030766f80db323ee173c23e63fb3a05b02268e8fdbf7c18c78ce6c1aa8e7f9'],
  ['0013_events', 'eaecd6f28ff64448cc1d9e076e204cd22c322a40e815073c85520af9bab323ee'],
  ['0014_deliveries', '2c8c7d603e6778e95574cd98f923b5fa45b9bb2fb61b25c33058c2628d83f5ba'],
  ['0015_github', '34277bbed4f9a6620c6348efb2211a8330bbcd2a2c1f9aedcd61318369b69b1f'],
  ['0016_rls_tightened', '548b4a92afe21a9574e17c8d1da296e34d18eba4c878ae604f4e33ade078a6ce'],
  ['0017_marketplace_listings', '78c5f11667435586d3b7a1e3a94f8fce3a104424ff712f997e2c6cf8e8b61afb'],
];

describe('released migration files', () => {
  it('are unchanged, comments included (migrations/README.md says what 0006 and 0008 hold beyond their headers)', () => {
    const onDisk = new Map(loadMigrations().map((m) => [m.name, m.checksum]));
    for (const [name, sha256] of released) expect(onDisk.get(name), name).toBe(sha256);
  });
});
