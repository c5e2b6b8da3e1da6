import { afterEach, describe, expect, it } from 'vitest';
import { backend } from '../../../test/db';
import { brokerKind, createTestPlatform, type TestPlatform } from '../../../test/platform';

let platform: TestPlatform | undefined;
afterEach(async () => {
  await platform?.close();
  platform = undefined;
});

const manifest = {
  name: 'release-check',
  variables: { branch: { type: 'string', required: true } },
  steps: [
    { key: 'build', title: 'Build', capability: 'mkt', payload: { branch: '{{vars.branch}}', cost: '0.5' } },
    { key: 'verify', title: 'Verify', capability: 'mkt', depends_on: ['build'], payload: { cost: '0.25' } },
  ],
};

interface Item {
  id: string;
  downloads: number;
  quality: {
    installs: number;
    runs: number;
    completed: number;
    failed: number;
    success_rate: number | null;
    median_duration_ms: number | null;
    median_cost: string | null;
  };
}

describe(`installing from the marketplace on ${backend} + ${brokerKind}`, () => {
  it('installs a workflow item as a workflow, runs it to completion, and reports the quality of its runs', async () => {
    platform = await createTestPlatform();
    const p = platform;
    const supervisor = await p.token('supervisor');
    const viewer = await p.token('viewer');
    const agent = await p.registerAgent(['mkt']);
    await p.startAgent(agent, (task) => ({ result: { ok: task.title }, cost: task.payload.cost as string }), {
      capabilities: ['mkt'],
    });

    const published = await p.call('POST', '/api/marketplace', {
      auth: supervisor,
      body: {
        item_type: 'workflow',
        name: '@team/release-check',
        version: '1.0.0',
        manifest,
        tags: ['release'],
      },
    });
    expect(published.status).toBe(201);
    const item = (await published.json()) as Item;

    const installed = await p.call('POST', `/api/marketplace/${item.id}/install`, {
      auth: supervisor,
      body: { workflow_name: 'release-check (installed)' },
    });
    expect(installed.status).toBe(200);
    const install = (await installed.json()) as {
      downloads: number;
      workflow: { id: string; name: string; marketplace_item_id: string; definition: { steps: unknown[] } };
    };
    expect(install.downloads).toBe(1);
    expect(install.workflow).toMatchObject({
      name: 'release-check (installed)',
      marketplace_item_id: item.id,
    });
    expect(install.workflow.definition.steps).toHaveLength(2);

    const runIds: string[] = [];
    for (const branch of ['main', 'next']) {
      const trigger = await p.call('POST', `/api/workflows/${install.workflow.id}/trigger`, {
        auth: supervisor,
        body: { variables: { branch } },
      });
      expect(trigger.status).toBe(201);
      runIds.push(((await trigger.json()) as { run_id: string }).run_id);
    }
    for (const runId of runIds) {
      await p.waitFor(`run ${runId} COMPLETED`, async () => {
        const run = (await (await p.call('GET', `/api/workflow-runs/${runId}`, { auth: viewer })).json()) as {
          status: string;
        };
        return run.status === 'COMPLETED';
      });
    }

    const page = (await (
      await p.call('GET', `/api/marketplace/${item.id}`, { auth: viewer })
    ).json()) as Item;
    expect(page.downloads).toBe(1);
    expect(page.quality).toMatchObject({
      installs: 1,
      runs: 2,
      completed: 2,
      failed: 0,
      success_rate: 1,
      median_cost: '0.75',
    });
    expect(page.quality.median_duration_ms).toBeGreaterThanOrEqual(0);

    // A second install is a second workflow and a second download; a run cancelled there counts in neither rate.
    const second = (await (
      await p.call('POST', `/api/marketplace/${item.id}/install`, { auth: supervisor })
    ).json()) as { downloads: number; workflow: { id: string; name: string } };
    expect(second).toMatchObject({ downloads: 2, workflow: { name: 'release-check' } });
    const after = (await (
      await p.call('GET', `/api/marketplace/${item.id}`, { auth: viewer })
    ).json()) as Item;
    expect(after.quality).toMatchObject({ installs: 2, runs: 2, success_rate: 1 });
  });
});
