import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inject } from 'vitest';
import { connectPostgres, type Db, openPglite } from '../packages/db/src';
import { adminUrl, withDatabase } from './pg-url';

export interface TestDatabase {
  db: Db;
  /** The connection string, on PostgreSQL. */
  url?: string;
  /** Closes the connection and throws the database away. */
  drop(): Promise<void>;
}

/** Which backend this run tests: PostgreSQL when DATABASE_URL is set, PGlite otherwise. */
export const backend: 'postgres' | 'pglite' = process.env.DATABASE_URL ? 'postgres' : 'pglite';

/**
 * A database of its own for one test file: migrated (default) or empty, on the backend this
 * run tests.
 */
export async function createTestDatabase({ empty = false }: { empty?: boolean } = {}): Promise<TestDatabase> {
  const serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    const dump = readFileSync(inject(empty ? 'pgliteEmptyDump' : 'pgliteMigratedDump'));
    const db = await openPglite({ loadDataDir: new Blob([dump]) });
    return { db, drop: () => db.close() };
  }
  const name = `devart_t_${randomBytes(5).toString('hex')}`;
  const admin = connectPostgres(adminUrl(serverUrl), { max: 1 });
  const template = empty ? 'template0' : inject('pgTemplate');
  await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
  const url = withDatabase(serverUrl, name);
  const db = connectPostgres(url);
  return {
    db,
    url,
    async drop() {
      await db.close();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.close();
    },
  };
}
