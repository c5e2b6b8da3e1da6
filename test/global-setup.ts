import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { connectPostgres, migrate, openPglite } from '../packages/db/src';
import { adminUrl, withDatabase } from './pg-url';

declare module 'vitest' {
  export interface ProvidedContext {
    pgliteEmptyDump: string;
    pgliteMigratedDump: string;
    pgTemplate: string | null;
  }
}

/**
 * Builds each database template once per run: initdb on PGlite takes seconds, so test files
 * load a dumped data directory instead; on PostgreSQL they clone a migrated template database.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = mkdtempSync(join(tmpdir(), 'devart-test-'));
  const pglite = await openPglite();
  const emptyDump = join(dir, 'empty.tar');
  const migratedDump = join(dir, 'migrated.tar');
  writeFileSync(emptyDump, Buffer.from(await (await pglite.dump()).arrayBuffer()));
  await migrate(pglite);
  writeFileSync(migratedDump, Buffer.from(await (await pglite.dump()).arrayBuffer()));
  await pglite.close();
  project.provide('pgliteEmptyDump', emptyDump);
  project.provide('pgliteMigratedDump', migratedDump);

  let template: string | null = null;
  const url = process.env.DATABASE_URL;
  if (url) {
    // A server we were told to use must be reachable: fail loudly rather than skip.
    const admin = connectPostgres(adminUrl(url), { max: 1 });
    template = `devart_tpl_${randomBytes(4).toString('hex')}`;
    await admin.query(`CREATE DATABASE ${template}`);
    const db = connectPostgres(withDatabase(url, template), { max: 1 });
    await migrate(db);
    await db.close();
    await admin.close();
  }
  project.provide('pgTemplate', template);

  return async () => {
    rmSync(dir, { recursive: true, force: true });
    if (url && template) {
      const admin = connectPostgres(adminUrl(url), { max: 1 });
      await admin.query(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`);
      await admin.close();
    }
  };
}
