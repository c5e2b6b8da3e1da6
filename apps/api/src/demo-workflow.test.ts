import { WorkflowDefinitionBody } from '@devart/contracts';
import { validateWorkflow } from '@devart/core';
import { insertWorkflow } from '@devart/db';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/db';
import { demoWorkflow, seedDemoWorkflow } from './services/demo-workflow';

let database: TestDatabase | undefined;
afterEach(async () => {
  await database?.drop();
  database = undefined;
});

/** The demo devart seeded before its test step ran in a sandbox. */
const echoOnlyDemo = {
  variables: { branch: { type: 'string', default: 'main', description: 'The branch to build' } },
  steps: [
    {
      key: 'checkout',
      title: 'Checkout',
      capability: 'echo',
      payload: { branch: '{{vars.branch}}', sha: 'd3adb33f' },
      depends_on: [],
    },
    {
      key: 'lint',
      title: 'Lint',
      capability: 'echo',
      payload: { sha: '{{steps.checkout.result.sha}}', status: 'passed' },
      depends_on: ['checkout'],
    },
    {
      key: 'test',
      title: 'Test',
      capability: 'echo',
      payload: { sha: '{{steps.checkout.result.sha}}', status: 'passed' },
      depends_on: ['checkout'],
    },
    {
      key: 'report',
      title: 'Report',
      capability: 'echo',
      payload: {
        summary: 'lint {{steps.lint.result.status}}, test {{steps.test.result.status}} on {{vars.branch}}',
      },
      depends_on: ['lint', 'test'],
    },
  ],
};

async function ciPipelines(db: TestDatabase['db']) {
  const { rows } = await db.query<{ id: string; definition: typeof demoWorkflow; created_by: string | null }>(
    `SELECT id, definition, created_by FROM workflows WHERE name = 'ci-pipeline' ORDER BY created_at, id`,
  );
  return rows;
}

describe('the demo workflow', () => {
  it('is a valid definition with one shell step, which gets the sha as an argument', () => {
    expect(WorkflowDefinitionBody.safeParse(demoWorkflow).success).toBe(true);
    expect(validateWorkflow(demoWorkflow)).toEqual({
      ok: true,
      order: ['checkout', 'lint', 'test', 'report'],
    });
    const shell = demoWorkflow.steps.filter((s) => s.capability === 'shell');
    expect(shell.map((s) => s.key)).toEqual(['test']);
    const script = (shell[0]!.payload as { command: string[] }).command[2]!;
    expect(script).not.toContain('{{');
  });

  it('is defined once when processes start at once on one database', async () => {
    database = await createTestDatabase();
    const db = database.db;
    const ids = await Promise.all([1, 2, 3, 4].map(() => seedDemoWorkflow(db)));
    expect(ids.filter(Boolean)).toHaveLength(1);
    expect(await ciPipelines(db)).toHaveLength(1);
  });

  it('is defined on a fresh installation and left as it is on the next start', async () => {
    database = await createTestDatabase();
    const id = await seedDemoWorkflow(database.db);
    expect(id).toBeDefined();
    expect(await seedDemoWorkflow(database.db)).toBeUndefined();
    const rows = await ciPipelines(database.db);
    expect(rows).toHaveLength(1);
    const { name: _name, description: _description, ...definition } = demoWorkflow;
    expect(rows[0]).toMatchObject({ id, created_by: null, definition });
  });

  it('replaces the echo-only demo an earlier devart seeded, but nothing anyone changed or made', async () => {
    database = await createTestDatabase();
    const db = database.db;
    const seeded = await insertWorkflow(db, {
      name: 'ci-pipeline',
      description: 'Demo: checkout → lint ‖ test → report, done by the echo demo agents.',
      definition: echoOnlyDemo,
      createdBy: null,
    });
    expect(await seedDemoWorkflow(db)).toBe(seeded.id);
    const [upgraded] = await ciPipelines(db);
    expect(upgraded!.id).toBe(seeded.id);
    expect(upgraded!.definition.steps[2]).toMatchObject({ key: 'test', capability: 'shell' });
    expect(await seedDemoWorkflow(db)).toBeUndefined();

    // Edited by someone, or a user's own workflow of that name: untouched.
    await db.query('DELETE FROM workflows');
    const edited = {
      ...echoOnlyDemo,
      steps: echoOnlyDemo.steps.map((s) => ({ ...s, title: `${s.title}!` })),
    };
    await insertWorkflow(db, { name: 'ci-pipeline', description: null, definition: edited, createdBy: null });
    await insertWorkflow(db, {
      name: 'ci-pipeline',
      description: null,
      definition: echoOnlyDemo,
      createdBy: '00000000-0000-4000-8000-000000000001',
    });
    expect(await seedDemoWorkflow(db)).toBeUndefined();
    const rows = await ciPipelines(db);
    expect(rows.map((r) => r.definition.steps[2]!.capability)).toEqual(['echo', 'echo']);
  });
});
