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
    expect(installed.status).toBe(201);
    const install = (await installed.json()) as {
      downloads: number;
      installation: string;
      workflow: { id: string; name: string; marketplace_item_id: string; definition: { steps: unknown[] } };
    };
    expect(install.downloads).toBe(1);
    expect(install.installation).toBe('created');
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

    // An install under another name is a second workflow and a second download.
    const secondAnswer = await p.call('POST', `/api/marketplace/${item.id}/install`, { auth: supervisor });
    expect(secondAnswer.status).toBe(201);
    const second = (await secondAnswer.json()) as {
      downloads: number;
      workflow: { id: string; name: string };
    };
    expect(second).toMatchObject({ downloads: 2, workflow: { name: 'release-check' } });
    // The same install again answers the workflow it made: no third workflow, no third download.
    const againAnswer = await p.call('POST', `/api/marketplace/${item.id}/install`, { auth: supervisor });
    expect(againAnswer.status).toBe(200);
    expect(await againAnswer.json()).toMatchObject({
      downloads: 2,
      installation: 'existing',
      workflow: { id: second.workflow.id, name: 'release-check' },
    });
    const after = (await (
      await p.call('GET', `/api/marketplace/${item.id}`, { auth: viewer })
    ).json()) as Item;
    expect(after.quality).toMatchObject({ installs: 2, runs: 2, success_rate: 1 });
  });

  it('publishes the seed’s body as a listing: searchable, and installing it is 409 naming its repository', async () => {
    platform = await createTestPlatform();
    const p = platform;
    const supervisor = await p.token('supervisor');
    const seedBody = {
      item_type: 'workflow',
      name: 'code-review-bot',
      description: 'Reviews pull requests and leaves comments',
      version: '1.0.0',
      tags: ['review', 'github'],
      repository_url: 'https://github.com/devart/code-review-bot',
    };
    const published = await p.call('POST', '/api/marketplace', { auth: supervisor, body: seedBody });
    expect(published.status).toBe(201);
    const item = (await published.json()) as { id: string; manifest: unknown };
    expect(item).toMatchObject({ ...seedBody, manifest: null });

    const found = (await (await p.call('GET', '/api/marketplace?q=review', { auth: supervisor })).json()) as {
      items: { id: string }[];
    };
    expect(found.items.map((i) => i.id)).toContain(item.id);

    const install = await p.call('POST', `/api/marketplace/${item.id}/install`, { auth: supervisor });
    expect(install.status).toBe(409);
    expect(install.headers.get('content-type')).toMatch(/application\/problem\+json/);
    const problem = (await install.json()) as { detail: string };
    expect(problem.detail).toMatch(/without a manifest/);
    expect(problem.detail).toContain('https://github.com/devart/code-review-bot');

    // With neither a manifest nor a repository there is nothing to list.
    const bare = await p.call('POST', '/api/marketplace', {
      auth: supervisor,
      body: { item_type: 'agent', name: 'nothing-here', version: '1.0.0' },
    });
    expect(bare.status).toBe(400);
    expect(JSON.stringify(await bare.json())).toContain('manifest');
  });

  it('exports a workflow as a body that publishes as-is, and installing it gives the workflow back', async () => {
    platform = await createTestPlatform();
    const p = platform;
    const supervisor = await p.token('supervisor');
    const created = await p.call('POST', '/api/workflows', {
      auth: supervisor,
      body: { ...manifest, name: 'Release Check', description: 'Build, then verify.' },
    });
    expect(created.status).toBe(201);
    const workflow = (await created.json()) as { id: string; definition: unknown };

    const exported = await p.call('GET', `/api/workflows/${workflow.id}/export`, { auth: supervisor });
    expect(exported.status).toBe(200);
    const body = (await exported.json()) as { name: string; version: string; manifest: { name: string } };
    expect(body).toMatchObject({
      item_type: 'workflow',
      name: 'release-check',
      version: '1.0.0',
      description: 'Build, then verify.',
      manifest: { name: 'Release Check', description: 'Build, then verify.' },
    });
    const named = (await (
      await p.call('GET', `/api/workflows/${workflow.id}/export?name=@team/release&version=2.1.0`, {
        auth: supervisor,
      })
    ).json()) as { name: string; version: string };
    expect(named).toMatchObject({ name: '@team/release', version: '2.1.0' });

    const published = await p.call('POST', '/api/marketplace', { auth: supervisor, body });
    expect(published.status).toBe(201);
    const item = (await published.json()) as { id: string };
    const installed = await p.call('POST', `/api/marketplace/${item.id}/install`, {
      auth: supervisor,
      body: { workflow_name: 'release-check copy' },
    });
    expect(installed.status).toBe(201);
    const copy = (await installed.json()) as { workflow: { description: string; definition: unknown } };
    expect(copy.workflow.description).toBe('Build, then verify.');
    expect(copy.workflow.definition).toEqual(workflow.definition);
  });

  it('decides two concurrent installs under one name: one workflow, one download', async () => {
    platform = await createTestPlatform();
    const p = platform;
    const supervisor = await p.token('supervisor');
    const published = await p.call('POST', '/api/marketplace', {
      auth: supervisor,
      body: { item_type: 'workflow', name: 'twice', version: '1.0.0', manifest },
    });
    const item = (await published.json()) as { id: string };
    const answers = await Promise.all(
      [1, 2, 3].map(() => p.call('POST', `/api/marketplace/${item.id}/install`, { auth: supervisor })),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 201]);
    const ids = new Set(
      await Promise.all(
        answers.map(async (a) => ((await a.json()) as { workflow: { id: string } }).workflow.id),
      ),
    );
    expect(ids.size).toBe(1);
    const page = (await (
      await p.call('GET', `/api/marketplace/${item.id}`, { auth: supervisor })
    ).json()) as Item;
    expect(page.downloads).toBe(1);
  });
});
