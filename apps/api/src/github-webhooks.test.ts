import type { Db } from '@devart/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callOf, replicasOver, testPlatformInputs, testToken } from '../../../test/api';
import { backend, createTestDatabase, type TestDatabase } from '../../../test/db';
import { githubDelivery, pullRequestPayload, pushPayload, TEST_WEBHOOK_SECRET } from '../../../test/github';
import { expectProblem } from '../../../test/http';
import { defaultSettings, type WiredPlatform, wirePlatform } from './platform';

let database: TestDatabase;
let db: Db;
let wired: WiredPlatform;
let replicas: ReturnType<typeof replicasOver>;
const settings = { ...defaultSettings, github: { webhookSecret: TEST_WEBHOOK_SECRET } };

beforeAll(async () => {
  database = await createTestDatabase();
  db = database.db;
  wired = await wirePlatform(testPlatformInputs(db, { settings }));
  replicas = replicasOver(db, { settings });
});

afterAll(async () => {
  await replicas?.closeReplicas();
  await wired?.close();
  await database?.drop();
});

const call = () => callOf(wired.app);

async function defineWorkflow(body: Record<string, unknown>): Promise<string> {
  const res = await call()('POST', '/api/workflows', { auth: await testToken('supervisor'), body });
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

async function deliver(
  event: string,
  payload: unknown,
  options: Parameters<typeof githubDelivery>[2] = {},
  app: WiredPlatform['app'] = wired.app,
) {
  const { deliveryId, init } = githubDelivery(event, payload, options);
  const res = await app.request('/api/webhooks/github', init);
  return { deliveryId, res };
}

async function runsOf(
  workflowId: string,
): Promise<{ id: string; trigger_context: Record<string, unknown> }[]> {
  const { rows } = await db.query<{ id: string; trigger_context: Record<string, unknown> }>(
    'SELECT id, trigger_context FROM workflow_runs WHERE workflow_id = $1 ORDER BY start_time',
    [workflowId],
  );
  return rows;
}

async function deliveriesRecorded(): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM github_deliveries');
  return rows[0]!.n;
}

let serial = 0;
/** A repository of its own per test, so workflows of other tests never match. */
const repo = () => `acme/app-${++serial}`;

const prWorkflow = (repository: string, extra: Record<string, unknown> = {}) => ({
  name: `pr checks ${repository}`,
  variables: { depth: { type: 'number', default: 1 } },
  steps: [
    {
      key: 'checkout',
      title: 'Checkout',
      capability: 'git',
      payload: {
        repository: '{{vars.github.repository}}',
        sha: '{{vars.github.head_sha}}',
        pr: '{{vars.github.pull_request.number}}',
        note: 'PR #{{vars.github.pull_request.number}} by {{vars.github.sender}}',
        depth: '{{vars.depth}}',
      },
    },
    { key: 'test', title: 'Test', capability: 'shell', depends_on: ['checkout'] },
  ],
  triggers: [{ github: { event: 'pull_request', actions: ['opened', 'synchronize'], repository, ...extra } }],
});

describe(`POST /api/webhooks/github on ${backend}`, () => {
  it('starts the matching workflow once, with the delivery as {{vars.github…}}, and answers 202 with the run', async () => {
    const repository = repo();
    const workflowId = await defineWorkflow(prWorkflow(repository));
    const { deliveryId, res } = await deliver('pull_request', pullRequestPayload({ repository, number: 7 }));
    expect(res.status).toBe(202);
    const body = (await res.json()) as { delivery_id: string; replayed: boolean; run_ids: string[] };
    const runs = await runsOf(workflowId);
    expect(runs).toHaveLength(1);
    expect(body).toEqual({ delivery_id: deliveryId, replayed: false, run_ids: [runs[0]!.id] });
    expect(runs[0]!.trigger_context).toEqual({
      depth: 1,
      github: {
        event: 'pull_request',
        action: 'opened',
        delivery_id: deliveryId,
        repository,
        repository_url: `https://github.com/${repository}`,
        ref: 'refs/pull/7/head',
        branch: 'feature/thing',
        base_branch: 'main',
        head_sha: 'c0ffee0000000000000000000000000000000042',
        pull_request: {
          number: 7,
          title: 'Add the thing',
          url: `https://github.com/${repository}/pull/7`,
          draft: false,
          author: 'octocat',
        },
        sender: 'octocat',
      },
    });
    const { rows } = await db.query<{ payload: Record<string, unknown>; created_by: string | null }>(
      `SELECT payload, created_by FROM tasks WHERE workflow_run_id = $1 AND step_key = 'checkout'`,
      [runs[0]!.id],
    );
    expect(rows[0]).toEqual({
      payload: {
        repository,
        sha: 'c0ffee0000000000000000000000000000000042',
        pr: 7,
        note: 'PR #7 by octocat',
        depth: 1,
      },
      created_by: null,
    });
  });

  it('starts nothing again for the same delivery: 200, replayed, the same run', async () => {
    const repository = repo();
    const workflowId = await defineWorkflow(prWorkflow(repository));
    const payload = pullRequestPayload({ repository });
    const first = await deliver('pull_request', payload);
    expect(first.res.status).toBe(202);
    const { run_ids } = (await first.res.json()) as { run_ids: string[] };
    const again = await deliver('pull_request', payload, { deliveryId: first.deliveryId });
    expect(again.res.status).toBe(200);
    expect(await again.res.json()).toEqual({ delivery_id: first.deliveryId, replayed: true, run_ids });
    expect(await runsOf(workflowId)).toHaveLength(1);
  });

  it('starts a delivery once when two replicas are given it at the same moment', async () => {
    const repository = repo();
    const workflowId = await defineWorkflow(prWorkflow(repository));
    const other = await replicas.replica();
    const payload = pullRequestPayload({ repository });
    const { deliveryId, init } = githubDelivery('pull_request', payload);
    const answers = await Promise.all([
      wired.app.request('/api/webhooks/github', init),
      other.request('/api/webhooks/github', { ...init }),
    ]);
    expect(answers.map((r) => r.status).sort()).toEqual([200, 202]);
    const bodies = (await Promise.all(answers.map((r) => r.json()))) as { run_ids: string[] }[];
    const runs = await runsOf(workflowId);
    expect(runs).toHaveLength(1);
    for (const body of bodies) expect(body.run_ids).toEqual([runs[0]!.id]);
    expect(deliveryId).toBeTruthy();
  });

  it.each([
    ['a wrong signature', { signature: `sha256=${'0'.repeat(64)}` }],
    ['a signature made with another secret', { secret: 'another-secret-another-secret' }],
    ['no signature', { signature: null }],
    ['a malformed signature', { signature: 'sha1=abc' }],
  ])('refuses %s with 401 and stores nothing', async (_, options) => {
    const repository = repo();
    const workflowId = await defineWorkflow(prWorkflow(repository));
    const before = await deliveriesRecorded();
    const { res } = await deliver('pull_request', pullRequestPayload({ repository }), options);
    const problem = await expectProblem(res, 401, 'unauthenticated');
    expect(problem.detail).toMatch(/X-Hub-Signature-256/);
    expect(await runsOf(workflowId)).toEqual([]);
    expect(await deliveriesRecorded()).toBe(before);
  });

  it('refuses a body changed after it was signed', async () => {
    const repository = repo();
    const workflowId = await defineWorkflow(prWorkflow(repository));
    const { init } = githubDelivery('pull_request', pullRequestPayload({ repository }));
    const tampered = String(init.body).replace('"opened"', '"synchronize"');
    const res = await wired.app.request('/api/webhooks/github', { ...init, body: tampered });
    await expectProblem(res, 401, 'unauthenticated');
    expect(await runsOf(workflowId)).toEqual([]);
  });

  it('starts nothing for another repository, another action or another event, and says 202', async () => {
    const repository = repo();
    const workflowId = await defineWorkflow(prWorkflow(repository));
    for (const [event, payload] of [
      ['pull_request', pullRequestPayload({ repository: 'acme/other' })],
      ['pull_request', pullRequestPayload({ repository, action: 'closed' })],
      ['pull_request', pullRequestPayload({ repository, action: 'reopened' })],
      ['push', pushPayload({ repository })],
      ['issues', { action: 'opened', repository: { full_name: repository } }],
      ['ping', { zen: 'Keep it logically awesome.', hook_id: 1 }],
    ] as const) {
      const { deliveryId, res } = await deliver(event, payload);
      expect(res.status, `${event} ${JSON.stringify(payload).slice(0, 80)}`).toBe(202);
      expect(await res.json()).toEqual({ delivery_id: deliveryId, replayed: false, run_ids: [] });
    }
    expect(await runsOf(workflowId)).toEqual([]);
  });

  it('matches the repository without regard to case, and the default actions when none are named', async () => {
    const repository = repo();
    const workflowId = await defineWorkflow({
      ...prWorkflow(repository),
      triggers: [{ github: { event: 'pull_request', repository: repository.toUpperCase() } }],
    });
    for (const action of ['opened', 'synchronize', 'reopened', 'closed', 'labeled'])
      expect((await deliver('pull_request', pullRequestPayload({ repository, action }))).res.status).toBe(
        202,
      );
    const runs = await runsOf(workflowId);
    expect(runs.map((r) => (r.trigger_context.github as { action: string }).action)).toEqual([
      'opened',
      'synchronize',
      'reopened',
    ]);
  });

  it('starts every matching workflow, each once, and a push only on the branches it names', async () => {
    const repository = repo();
    const onMain = await defineWorkflow({
      name: 'on main',
      steps: [{ key: 'build', title: 'Build', payload: { ref: '{{vars.github.ref}}' } }],
      triggers: [{ github: { event: 'push', repository, branches: ['main', 'release/*'] } }],
    });
    const onAny = await defineWorkflow({
      name: 'on any push',
      steps: [{ key: 'build', title: 'Build' }],
      triggers: [
        { github: { event: 'pull_request', repository } },
        { github: { event: 'push', repository } },
      ],
    });
    const main = await deliver('push', pushPayload({ repository, ref: 'refs/heads/main' }));
    expect(main.res.status).toBe(202);
    const started = ((await main.res.json()) as { run_ids: string[] }).run_ids;
    expect(started).toHaveLength(2);
    expect(new Set(started)).toEqual(
      new Set([...(await runsOf(onMain)), ...(await runsOf(onAny))].map((r) => r.id)),
    );

    await deliver('push', pushPayload({ repository, ref: 'refs/heads/release/1.2' }));
    await deliver('push', pushPayload({ repository, ref: 'refs/heads/release/1.2/hotfix' }));
    await deliver('push', pushPayload({ repository, ref: 'refs/heads/feature' }));
    await deliver('push', pushPayload({ repository, ref: 'refs/tags/v1' }));
    await deliver(
      'push',
      pushPayload({ repository, ref: 'refs/heads/main', deleted: true, after: '0'.repeat(40) }),
    );
    expect((await runsOf(onMain)).map((r) => (r.trigger_context.github as { ref: string }).ref)).toEqual([
      'refs/heads/main',
      'refs/heads/release/1.2',
    ]);
    expect(await runsOf(onAny)).toHaveLength(5);
  });

  it('refuses a body over the limit with 413 before reading it, and a body that is not JSON with 415', async () => {
    const big = githubDelivery('push', { padding: 'x'.repeat(1024 * 1024 + 10) });
    await expectProblem(await wired.app.request('/api/webhooks/github', big.init), 413, 'payload_too_large');
    const form = githubDelivery('push', {});
    const res = await wired.app.request('/api/webhooks/github', {
      ...form.init,
      headers: {
        ...(form.init.headers as Record<string, string>),
        'content-type': 'application/x-www-form-urlencoded',
      },
    });
    await expectProblem(res, 415, 'unsupported_media_type');
  });

  it('names a missing X-GitHub-Delivery or X-GitHub-Event in a 400, after the signature', async () => {
    const { init } = githubDelivery('push', pushPayload());
    const headers = { ...(init.headers as Record<string, string>) };
    delete headers['x-github-delivery'];
    delete headers['x-github-event'];
    const problem = await expectProblem(
      await wired.app.request('/api/webhooks/github', { ...init, headers }),
      400,
      'validation',
    );
    expect(problem.errors?.map((e) => e.field)).toEqual(['X-GitHub-Delivery', 'X-GitHub-Event']);
  });

  it('answers 404 saying how to enable it when no secret is configured', async () => {
    const bare = await replicas.replica({ settings: defaultSettings });
    const { init } = githubDelivery('push', pushPayload());
    const problem = await expectProblem(await bare.request('/api/webhooks/github', init), 404, 'not_found');
    expect(problem.detail).toMatch(/GITHUB_WEBHOOK_SECRET/);
  });
});

describe(`GitHub triggers in workflow definitions on ${backend}`, () => {
  async function refusal(body: Record<string, unknown>) {
    const res = await call()('POST', '/api/workflows', { auth: await testToken('supervisor'), body });
    const problem = await expectProblem(res, 400, 'validation');
    return problem.errors!.map((e) => `${e.field}: ${e.message}`);
  }
  const steps = [{ key: 'a', title: 'A' }];

  it('refuses a malformed trigger naming its field', async () => {
    expect(
      await refusal({ name: 'x', steps, triggers: [{ github: { event: 'issue', repository: 'acme/app' } }] }),
    ).toEqual([expect.stringMatching(/^triggers\[0\]\.github\.event: /)]);
    expect(
      await refusal({ name: 'x', steps, triggers: [{ github: { event: 'push', repository: 'acme' } }] }),
    ).toEqual(['triggers[0].github.repository: must be "owner/name", as GitHub spells the repository']);
    expect(
      await refusal({
        name: 'x',
        steps,
        triggers: [{ github: { event: 'push', repository: 'acme/app', actions: ['opened'], comment: true } }],
      }),
    ).toEqual([
      'triggers[0].github.actions: applies to pull_request triggers only (this one is push)',
      'triggers[0].github.comment: applies to pull_request triggers only (this one is push)',
    ]);
    expect(
      await refusal({
        name: 'x',
        steps,
        triggers: [{ github: { event: 'pull_request', repository: 'acme/app', actions: ['merged'] } }],
      }),
    ).toEqual([expect.stringMatching(/^triggers\[0\]\.github\.actions\[0\]: /)]);
    expect(await refusal({ name: 'x', steps, triggers: [{ gitlab: { event: 'push' } }] })).toEqual(
      expect.arrayContaining([expect.stringMatching(/^triggers\[0\]/)]),
    );
  });

  it('gives {{vars.github…}} only to workflows with a GitHub trigger, and refuses what such a run could not start with', async () => {
    const reads = [{ key: 'a', title: 'A', payload: { sha: '{{vars.github.head_sha}}' } }];
    expect(await refusal({ name: 'x', steps: reads })).toEqual([
      'steps[0].payload.sha: template {{vars.github.head_sha}} names undeclared variable "github"',
    ]);
    const triggers = [{ github: { event: 'push', repository: 'acme/app' } }];
    expect(await defineWorkflow({ name: 'reads github', steps: reads, triggers })).toBeTruthy();
    expect(
      await refusal({
        name: 'x',
        steps,
        triggers,
        variables: { github: { type: 'object' }, env: { type: 'string', required: true } },
      }),
    ).toEqual([
      'variables.github: is reserved in a workflow with GitHub triggers: its runs read the delivery as {{vars.github.…}}',
      'variables.env: is required without a default, but a GitHub delivery gives no variables: add a default or make it optional',
    ]);
  });

  it('keeps the triggers in the stored definition, and a manual trigger of such a workflow still works', async () => {
    const triggers = [{ github: { event: 'push', repository: 'acme/app', branches: ['main'] } }];
    const id = await defineWorkflow({
      name: 'manual too',
      steps: [{ key: 'a', title: 'A', payload: { sha: 'sha={{vars.github.head_sha}}' } }],
      triggers,
    });
    const got = await call()('GET', `/api/workflows/${id}`, { auth: await testToken('viewer') });
    expect(((await got.json()) as { definition: { triggers: unknown } }).definition.triggers).toEqual(
      triggers,
    );
    const res = await call()('POST', `/api/workflows/${id}/trigger`, { auth: await testToken('supervisor') });
    expect(res.status).toBe(201);
    const { run_id } = (await res.json()) as { run_id: string };
    const { rows } = await db.query<{ payload: unknown }>(
      'SELECT payload FROM tasks WHERE workflow_run_id = $1',
      [run_id],
    );
    expect(rows[0]!.payload).toEqual({ sha: 'sha=' });
  });
});
