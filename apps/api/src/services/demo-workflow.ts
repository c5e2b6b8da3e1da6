import type { WorkflowDefinitionBody } from '@devart/contracts';
import { type Db, insertWorkflow, upgradeSeededWorkflow, workflowNameTaken } from '@devart/db';

/**
 * The demo workflow `devart start` defines on an installation that has none, so a new user can
 * trigger a run at once. Its `test` step is a `shell` task: the demo agents run it in a sandbox
 * the API provisions (bubblewrap locally: no network, only /workspace writable). The checkout's
 * sha reaches the command as an argument (`$1`), never spliced into the script.
 */
const variables = {
  branch: { type: 'string', default: 'main', description: 'The branch to build' },
} as const;
const checkout = {
  key: 'checkout',
  title: 'Checkout',
  capability: 'echo',
  payload: { branch: '{{vars.branch}}', sha: 'd3adb33f' },
  depends_on: [],
};
const lint = {
  key: 'lint',
  title: 'Lint',
  capability: 'echo',
  payload: { sha: '{{steps.checkout.result.sha}}', status: 'passed' },
  depends_on: ['checkout'],
};

export const demoWorkflow = {
  name: 'ci-pipeline',
  description:
    'Demo: checkout → lint ‖ test → report, done by the demo agents; test runs a command in a sandbox (no network).',
  variables,
  steps: [
    checkout,
    lint,
    {
      key: 'test',
      title: 'Test (in a sandbox)',
      capability: 'shell',
      payload: {
        command: [
          'sh',
          '-c',
          'echo "testing $1 in a sandbox"; uname -a; id; ls -la /workspace',
          'sh',
          '{{steps.checkout.result.sha}}',
        ],
        timeout_ms: 30_000,
      },
      depends_on: ['checkout'],
    },
    {
      key: 'report',
      title: 'Report',
      capability: 'echo',
      payload: {
        summary:
          'lint {{steps.lint.result.status}}, test exited {{steps.test.result.exit_code}} on {{vars.branch}}',
      },
      depends_on: ['lint', 'test'],
    },
  ],
} satisfies WorkflowDefinitionBody;

/**
 * Definitions earlier versions of devart seeded as the demo; an installation still holding one
 * unchanged gets the current demo (runs keep the definition they started with).
 */
const earlierDemoDefinitions = [
  {
    variables,
    steps: [
      checkout,
      lint,
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
  },
];

/**
 * Defines the demo workflow unless a workflow of that name exists; replaces an earlier demo
 * definition devart itself seeded and nobody changed. Anything else named `ci-pipeline` (edited,
 * the user's own, installed from the marketplace) is left alone. Returns the workflow's id when it
 * defined or replaced it.
 */
export async function seedDemoWorkflow(db: Db): Promise<string | undefined> {
  const { name, description, ...definition } = demoWorkflow;
  return db.transaction(async (tx) => {
    // Two processes starting at once on one database (API replicas) define it once.
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext('devart.demo-workflow'))`);
    for (const earlier of earlierDemoDefinitions) {
      const upgraded = await upgradeSeededWorkflow(tx, { name, from: earlier, to: definition, description });
      if (upgraded) return upgraded;
    }
    if (await workflowNameTaken(tx, name)) return undefined;
    return (await insertWorkflow(tx, { name, description, definition, createdBy: null })).id;
  });
}
