import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Db } from './client';

export const migrationsDir = fileURLToPath(new URL('../migrations/', import.meta.url));

export interface Migration {
  version: string;
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrationReport {
  applied: string[];
  alreadyApplied: string[];
}

/** Raised when the database and the migration files disagree; start-up must stop. */
export class MigrationMismatchError extends Error {
  override name = 'MigrationMismatchError';
}

// Any constant works; it only has to be the same in every devart process.
const MIGRATION_LOCK_KEY = 7_411_602_335;

/** Reads the numbered `.sql` files (`0001_name.sql`) in order. */
export function loadMigrations(dir = migrationsDir): Migration[] {
  return readdirSync(dir)
    .filter((file) => /^\d{4}_[a-z0-9_]+\.sql$/.test(file))
    .sort()
    .map((file) => {
      const sql = readFileSync(`${dir}/${file}`, 'utf8');
      return {
        version: file.slice(0, 4),
        name: file.replace(/\.sql$/, ''),
        sql,
        checksum: createHash('sha256').update(sql).digest('hex'),
      };
    });
}

const createLedger = `
  CREATE TABLE IF NOT EXISTS public.schema_migrations (
    version text PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  );
  ALTER TABLE public.schema_migrations ENABLE ROW LEVEL SECURITY;
`;

interface LedgerRow {
  version: string;
  name: string;
  checksum: string;
}

/**
 * Applies the migrations the database has not seen, each in its own transaction under an
 * advisory lock, so two processes starting at once apply each file exactly once.
 * A file whose text changed after it was applied stops everything with a MigrationMismatchError.
 */
export async function migrate(
  db: Db,
  {
    migrations = loadMigrations(),
    onApplied,
  }: { migrations?: Migration[]; onApplied?: (m: Migration) => void } = {},
): Promise<MigrationReport> {
  const report: MigrationReport = { applied: [], alreadyApplied: [] };
  await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    // Only when needed: a runtime role that does not own the schema (docs/security.md) may run no
    // DDL, not even one that changes nothing, and must still find an up-to-date database.
    const { rows } = await tx.query<{ ready: boolean }>(
      `SELECT relrowsecurity AS ready FROM pg_class WHERE oid = to_regclass('public.schema_migrations')`,
    );
    if (!rows[0]?.ready) await tx.exec(createLedger);
  });
  for (const migration of migrations) {
    const applied = await db.transaction(async (tx) => {
      // The lock makes a concurrent migrator wait here, then find the row the winner recorded.
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
      const { rows } = await tx.query<LedgerRow>(
        'SELECT version, name, checksum FROM public.schema_migrations WHERE version = $1',
        [migration.version],
      );
      const existing = rows[0];
      if (existing) {
        assertSame(existing, migration);
        return false;
      }
      await tx.exec(migration.sql);
      await tx.query('INSERT INTO public.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
        migration.version,
        migration.name,
        migration.checksum,
      ]);
      return true;
    });
    (applied ? report.applied : report.alreadyApplied).push(migration.name);
    if (applied) onApplied?.(migration);
  }
  return report;
}

function assertSame(existing: LedgerRow, migration: Migration): void {
  if (existing.checksum !== migration.checksum || existing.name !== migration.name) {
    throw new MigrationMismatchError(
      `Migration ${migration.version} (${migration.name}.sql) was changed after it was applied as ${existing.name}.sql ` +
        `(checksum ${existing.checksum.slice(0, 12)} in the database, ${migration.checksum.slice(0, 12)} on disk). ` +
        'Applied migrations are append-only: restore the file and add a new numbered migration instead.',
    );
  }
}

export interface MigrationStatus {
  pending: string[];
  unknown: string[];
}

/** Compares the ledger with the files without changing anything (for /ready and `devart migrate --status`). */
export async function migrationStatus(db: Db, migrations = loadMigrations()): Promise<MigrationStatus> {
  const { rows: ledger } = await db.query<{ exists: string | null }>(
    "SELECT to_regclass('public.schema_migrations')::text AS exists",
  );
  if (!ledger[0]?.exists) return { pending: migrations.map((m) => m.name), unknown: [] };
  const { rows } = await db.query<LedgerRow>('SELECT version, name, checksum FROM public.schema_migrations');
  const byVersion = new Map(rows.map((row) => [row.version, row]));
  for (const migration of migrations) {
    const existing = byVersion.get(migration.version);
    if (existing) assertSame(existing, migration);
  }
  const known = new Set(migrations.map((m) => m.version));
  return {
    pending: migrations.filter((m) => !byVersion.has(m.version)).map((m) => m.name),
    unknown: rows.filter((row) => !known.has(row.version)).map((row) => row.name),
  };
}
