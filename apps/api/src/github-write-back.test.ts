import { generateKeyPairSync } from 'node:crypto';
import { type Db, listDeliveries } from '@devart/db';
import { createInProcessBroker } from '@devart/queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callOf, testLogger, testPlatformInputs, testToken } from '../../../test/api';
import { backend, createTestDatabase, type TestDatabase } from '../../../test/db';
import { githubDelivery, pullRequestPayload, pushPayload, TEST_WEBHOOK_SECRET } from '../../../test/github';
import { defaultSettings, type PlatformSettings, type WiredPlatform, wirePlatform } from './platform';
import { noBrokerAccess } from './services/broker-access';
import {
  type CheckRunFields,
  createGithubApp,
  type GithubAppSettings,
  sendResultOf,
} from './services/github-app';
import { type GithubStub, type StubCheckRun, startGithubStub } from './services/github-stub';
import { formatDuration, stepsTable } from './services/github-write-back';

const PUBLIC_URL = 'https://devart.example';
const REPO = 'acme/app';

let database: TestDatabase;
let db: Db;
let stub: GithubStub;
let platform: WiredPlatform;
let call: ReturnType<typeof callOf>;
let agent: { id: string; key: string };

const appSettings = (): GithubAppSettings => ({
  appId: stub.appId,
  privateKey: stub.privateKey,
  installationId: stub.installationId,
  apiUrl: stub.url,
});

beforeAll(async () => {
  database = await createTestDatabase();
  db = database.db;
  stub = await startGithubStub({ repositories: [REPO] });
  const settings: PlatformSettings = {
    ...defaultSettings,
    notifications: {
      ...defaultSettings.notifications,
      policy: { ...defaultSettings.notifications.policy, publicUrl: PUBLIC_URL },
      delivery: { pollIntervalMs: 100, backoff: { baseMs: 200, capMs: 400 } },
    },
    github: { webhookSecret: TEST_WEBHOOK_SECRET, app: appSettings() },
  };
  platform = await wirePlatform({
    ...testPlatformInputs(db, { settings, logger: testLogger() }),
    background: true,
    broker: { broker: createInProcessBroker(), brokerAccess: noBrokerAccess },
  });
  call = callOf(platform.app);
  const res = await call('POST', '/api/agents', {
    auth: await testToken('admin'),
    body: { name: 'ci-agent', capabilities: ['git', 'shell'] },
  });
  expect(res.status).toBe(201);
  const body = (await res.json()) as { id: string; api_key: string };
  agent = { id: body.id, key: body.api_key };
});

afterAll(async () => {
  await platform?.close();
  await stub?.close();
  await database?.drop();
});

let serial = 0;
const sha = () => `${String(++serial).padStart(8, '0')}${'c'.repeat(32)}`;

async function defineWorkflow(name: string, trigger: Record<string, unknown>): Promise<string> {
  const res = await call('POST', '/api/workflows', {
    auth: await testToken('supervisor'),
    body: {
      name,
      steps: [
        {
          key: 'checkout',
          title: 'Checkout',
          capability: 'git',
          payload: { sha: '{{vars.github.head_sha}}' },
        },
        { key: 'test', title: 'Unit tests', capability: 'shell', depends_on: ['checkout'], max_retries: 0 },
      ],
      triggers: [{ github: { repository: REPO, ...trigger } }],
    },
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

/** Sends a signed delivery; returns the one run it started. */
async function deliver(event: string, payload: unknown): Promise<string> {
  const { init } = githubDelivery(event, payload);
  const res = await platform.app.request('/api/webhooks/github', init);
  expect(res.status).toBe(202);
  const { run_ids } = (await res.json()) as { run_ids: string[] };
  expect(run_ids).toHaveLength(1);
  return run_ids[0]!;
}

async function stepTask(runId: string, key: string): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    'SELECT id FROM tasks WHERE workflow_run_id = $1 AND step_key = $2',
    [runId, key],
  );
  return rows[0]!.id;
}

async function complete(runId: string, key: string, cost: string) {
  const id = await stepTask(runId, key);
  expect((await call('POST', `/api/tasks/${id}/start`, { auth: agent.key, body: {} })).status).toBe(200);
  const res = await call('POST', `/api/tasks/${id}/complete`, {
    auth: agent.key,
    body: { result: { ok: true }, cost },
  });
  expect(res.status).toBe(200);
}

async function fail(runId: string, key: string, error: string) {
  const id = await stepTask(runId, key);
  expect((await call('POST', `/api/tasks/${id}/start`, { auth: agent.key, body: {} })).status).toBe(200);
  const res = await call('POST', `/api/tasks/${id}/report-failure`, { auth: agent.key, body: { error } });
  expect(((await res.json()) as { status: string }).status).toBe('QUARANTINED');
}

const checkRunOf = (runId: string) => stub.checkRuns.filter((c) => c.external_id === runId);

async function completedCheckRun(runId: string): Promise<StubCheckRun> {
  await expect.poll(() => checkRunOf(runId).map((c) => c.status), { timeout: 15_000 }).toEqual(['completed']);
  return checkRunOf(runId)[0]!;
}

describe('the GitHub App client against a stub GitHub', () => {
  const fields = (): CheckRunFields => ({
    name: 'devart: client',
    head_sha: sha(),
    external_id: `client-${serial}`,
    status: 'in_progress',
    started_at: new Date().toISOString(),
    output: { title: 'Running', summary: 'Running' },
  });

  it('mints an installation token from an RS256 JWT once, then creates and updates check runs with it', async () => {
    const app = createGithubApp(appSettings());
    const tokensBefore = stub.tokensIssued();
    const f = fields();
    const id = await app.createCheckRun(REPO, f, AbortSignal.timeout(5000));
    await app.updateCheckRun(
      REPO,
      id,
      { ...f, status: 'completed', conclusion: 'success', completed_at: new Date().toISOString() },
      AbortSignal.timeout(5000),
    );
    expect(await app.findCheckRun(REPO, f, AbortSignal.timeout(5000))).toBe(id);
    expect(stub.tokensIssued() - tokensBefore).toBe(1);
    expect(stub.checkRuns.find((c) => c.id === id)).toMatchObject({
      status: 'completed',
      conclusion: 'success',
    });
  });

  it('is refused what GitHub would refuse: a JWT signed with another key, another App id, another installation', async () => {
    const { privateKey: otherKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    const attempt = async (settings: GithubAppSettings) => {
      try {
        await createGithubApp(settings).createCheckRun(REPO, fields(), AbortSignal.timeout(5000));
        return { outcome: 'sent' };
      } catch (error) {
        return sendResultOf(error);
      }
    };
    const count = stub.checkRuns.length;
    expect(await attempt({ ...appSettings(), privateKey: otherKey })).toMatchObject({
      outcome: 'retry',
      error: expect.stringMatching(/^GitHub: 401 .*check GITHUB_APP_ID, GITHUB_PRIVATE_KEY/),
    });
    expect(stub.requests.at(-1)).toMatchObject({
      status: 401,
      message: 'A JSON web token could not be decoded',
    });
    expect(await attempt({ ...appSettings(), appId: '999' })).toMatchObject({ outcome: 'retry' });
    expect(stub.requests.at(-1)?.message).toMatch(/'iss'/);
    expect(await attempt({ ...appSettings(), installationId: 5 })).toMatchObject({ outcome: 'failed' });
    expect(await attempt({ ...appSettings(), apiUrl: 'http://127.0.0.1:9' })).toMatchObject({
      outcome: 'retry',
      error: expect.stringMatching(/^GitHub unreachable/),
    });
    expect(stub.checkRuns.length).toBe(count);
  });

  it('maps GitHub’s answers to what the outbox does', () => {
    const failure = (status: number, headers: Record<string, string> = {}, message = 'x') =>
      Object.assign(new Error(message), { status, response: { headers, data: { message } } });
    const now = Date.UTC(2026, 0, 1);
    expect(sendResultOf(failure(429, { 'retry-after': '7' }), now)).toMatchObject({
      outcome: 'retry',
      retryAfterMs: 7000,
    });
    expect(
      sendResultOf(
        failure(403, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now / 1000 + 30) }),
        now,
      ),
    ).toMatchObject({ outcome: 'retry', retryAfterMs: 30_000 });
    expect(sendResultOf(failure(502), now)).toMatchObject({ outcome: 'retry' });
    expect(sendResultOf(failure(422, {}, 'No commit found'), now)).toEqual({
      outcome: 'failed',
      error: 'GitHub: 422 No commit found',
    });
  });

  it('writes durations and step tables people can read, and Markdown that a title cannot break', () => {
    expect([850, 12_340, 245_000, 7_380_000, null].map(formatDuration)).toEqual([
      '850 ms',
      '12.3 s',
      '4 min 05 s',
      '2 h 03 min',
      '—',
    ]);
    const table = stepsTable([
      {
        task_id: 't',
        step_key: 'lint',
        title: 'Lint | all',
        status: 'QUARANTINED',
        attempts: 2,
        retry_count: 2,
        started_at: null,
        completed_at: null,
        duration_ms: 1500,
        cost: '0.10',
        last_error: 'exit 1\n| boom',
      },
    ]);
    expect(table.split('\n')[2]).toBe(
      '| lint (Lint \\| all) | QUARANTINED | 2 | 1.5 s | 0.10 | exit 1 \\| boom |',
    );
  });
});

describe(`check runs and comments written back through the outbox on ${backend}`, () => {
  it('creates the check run when a pull request starts a run and completes it as success with duration, cost and steps', async () => {
    await defineWorkflow('ci', { event: 'pull_request', actions: ['opened'], comment: true });
    const head = sha();
    const runId = await deliver(
      'pull_request',
      pullRequestPayload({ repository: REPO, sha: head, number: 5 }),
    );

    await expect
      .poll(() => checkRunOf(runId).map((c) => c.status), { timeout: 15_000 })
      .toEqual(['in_progress']);
    expect(checkRunOf(runId)[0]).toMatchObject({
      name: 'devart: ci',
      head_sha: head,
      details_url: `${PUBLIC_URL}/workflows/runs/${runId}`,
    });

    await complete(runId, 'checkout', '0.25');
    await complete(runId, 'test', '0.5');
    const check = await completedCheckRun(runId);
    expect(check).toMatchObject({ conclusion: 'success', completed_at: expect.any(String) });
    expect(check.output!.title).toMatch(/^Completed in .+ · cost 0\.75$/);
    expect(check.output!.summary).toContain('- Cost: 0.75');
    expect(check.output!.summary).toContain(
      `[Open the run in devart](${PUBLIC_URL}/workflows/runs/${runId})`,
    );
    expect(check.output!.text).toContain('| test (Unit tests) | DONE | 1 |');
    // Created once, then updated once.
    expect(check.history).toHaveLength(2);

    await expect
      .poll(() => stub.comments.filter((c) => c.body.includes(runId)).length, { timeout: 15_000 })
      .toBe(1);
    const comment = stub.comments.find((c) => c.body.includes(runId))!;
    expect(comment).toMatchObject({ repository: REPO, issue_number: 5 });
    expect(comment.body).toMatch(/^✅ \*\*devart: ci\*\* — Completed in /);
  });

  it('completes it as failure naming the quarantined step, and posts no comment unless the workflow asked', async () => {
    await defineWorkflow('ci-quiet', { event: 'pull_request', actions: ['synchronize'] });
    const runId = await deliver(
      'pull_request',
      pullRequestPayload({ repository: REPO, action: 'synchronize', sha: sha() }),
    );
    await complete(runId, 'checkout', '0.1');
    await fail(runId, 'test', 'npm test exited with 1: 3 failing');
    const check = await completedCheckRun(runId);
    expect(check.conclusion).toBe('failure');
    expect(check.output!.title).toMatch(/^Failed at step “test” after /);
    expect(check.output!.summary).toContain(
      'Step **test** was quarantined after 1 attempt: `npm test exited with 1: 3 failing`',
    );
    const rows = (await listDeliveries(db, { channel: 'github', limit: 1000 })).filter(
      (d) => d.payload.workflow_run_id === runId,
    );
    expect(rows.map((d) => d.payload.kind)).toEqual(['check_run', 'check_run']);
    expect(stub.comments.filter((c) => c.body.includes(runId))).toEqual([]);
  });

  it('completes it as cancelled when the run is cancelled, and reports a push on its commit', async () => {
    await defineWorkflow('on-push', { event: 'push', branches: ['main'] });
    const head = sha();
    const runId = await deliver('push', pushPayload({ repository: REPO, after: head }));
    const res = await call('POST', `/api/workflow-runs/${runId}/cancel`, {
      auth: await testToken('supervisor'),
    });
    expect(res.status).toBe(200);
    const check = await completedCheckRun(runId);
    expect(check).toMatchObject({ conclusion: 'cancelled', head_sha: head, name: 'devart: on-push' });
  });

  it('keeps task work going while GitHub is down, and brings the check run up to date once it is back', async () => {
    await defineWorkflow('ci-outage', { event: 'pull_request', actions: ['reopened'] });
    await stub.down();
    let runId: string;
    try {
      runId = await deliver(
        'pull_request',
        pullRequestPayload({ repository: REPO, action: 'reopened', sha: sha() }),
      );
      const began = performance.now();
      await complete(runId, 'checkout', '0.1');
      await complete(runId, 'test', '0.2');
      expect(performance.now() - began).toBeLessThan(5000);
      await expect
        .poll(
          async () =>
            (await listDeliveries(db, { channel: 'github', limit: 1000 })).filter(
              (d) => d.payload.workflow_run_id === runId && d.last_error !== null,
            ).length,
          { timeout: 15_000 },
        )
        .toBeGreaterThan(0);
    } finally {
      await stub.up();
    }
    const check = await completedCheckRun(runId);
    expect(check.conclusion).toBe('success');
    expect(checkRunOf(runId)).toHaveLength(1);
  });

  it('retries a check run GitHub answered 502, and creates it once', async () => {
    await defineWorkflow('ci-502', { event: 'pull_request', actions: ['ready_for_review'] });
    stub.failNext(1, 502);
    const runId = await deliver(
      'pull_request',
      pullRequestPayload({ repository: REPO, action: 'ready_for_review', sha: sha() }),
    );
    await expect.poll(() => checkRunOf(runId).length, { timeout: 15_000 }).toBe(1);
    expect(stub.requests.some((r) => r.status === 502)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(checkRunOf(runId)).toHaveLength(1);
  });

  it('shows GitHub in GET /api/integrations without the secret or the key', async () => {
    const res = await call('GET', '/api/integrations', { auth: await testToken('admin') });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain(TEST_WEBHOOK_SECRET);
    expect(text).not.toContain('PRIVATE KEY');
    const github = (
      JSON.parse(text) as {
        items: {
          name: string;
          configured: boolean;
          settings: unknown;
          deliveries: { channel: string; last_success_at: string | null }[];
        }[];
      }
    ).items.find((i) => i.name === 'github')!;
    expect(github).toMatchObject({
      configured: true,
      settings: {
        webhook: 'enabled',
        private_key: 'set',
        app_id: stub.appId,
        installation_id: stub.installationId,
      },
      deliveries: [{ channel: 'github', last_success_at: expect.any(String) }],
    });
  });
});
