import type { WorkflowDefinitionBody } from '@devart/contracts';
import { type Db, insertWorkflow } from '@devart/db';

/** The demo workflow `devart start` defines on an installation that has none, so a new user can trigger a run at once. */
export const demoWorkflow = {
  name: 'ci-pipeline',
  description: 'Demo: checkout → lint ‖ test → report, done by the echo demo agents.',
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
} satisfies WorkflowDefinitionBody;

/** Defines the demo workflow unless a workflow of that name exists. Returns its id when it defined it. */
export async function seedDemoWorkflow(db: Db): Promise<string | undefined> {
  const existing = await db.query('SELECT 1 FROM workflows WHERE name = $1', [demoWorkflow.name]);
  if (existing.rowCount > 0) return undefined;
  const { name, description, ...definition } = demoWorkflow;
  return (await insertWorkflow(db, { name, description, definition, createdBy: null })).id;
}
