import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backend } from '../../../test/db';
import { githubDelivery, pullRequestPayload, TEST_WEBHOOK_SECRET } from '../../../test/github';
import { brokerKind, createTestPlatform, type TestPlatform } from '../../../test/platform';
import { defaultSettings } from './platform';
import { type GithubStub, startGithubStub } from './services/github-stub';
import { startTelegramStub, type TelegramStub } from './services/telegram-stub';

const TELEGRAM_TOKEN = '123456789:AAE-chain-test-token_0123456789abcd';
const CHAT = '515151';
const PUBLIC_URL = 'https://devart.example';
const REPO = 'acme/app';
const HEAD = 'deadbeef00000000000000000000000000000001';

let github: GithubStub;
let telegram: TelegramStub;
let platform: TestPlatform;

beforeAll(async () => {
  github = await startGithubStub({ repositories: [REPO] });
  telegram = await startTelegramStub({ token: TELEGRAM_TOKEN });
  platform = await createTestPlatform({
    settings: {
      notifications: {
        telegram: { token: TELEGRAM_TOKEN, chatId: CHAT, apiUrl: telegram.url },
        policy: { ...defaultSettings.notifications.policy, publicUrl: PUBLIC_URL },
        delivery: { pollIntervalMs: 100, backoff: { baseMs: 200, capMs: 400 } },
      },
      github: {
        webhookSecret: TEST_WEBHOOK_SECRET,
        app: {
          appId: github.appId,
          privateKey: github.privateKey,
          installationId: github.installationId,
          apiUrl: github.url,
        },
      },
    },
  });
});

afterAll(async () => {
  await platform?.close();
  await github?.close();
  await telegram?.close();
});

describe(`the whole chain on ${backend} + ${brokerKind}`, () => {
  it('pull request webhook → run → a step quarantined → run FAILED → one Telegram message and a failed check run', async () => {
    const defined = await platform.call('POST', '/api/workflows', {
      auth: await platform.token('supervisor'),
      body: {
        name: 'pr-checks',
        steps: [
          {
            key: 'checkout',
            title: 'Checkout',
            capability: 'git',
            payload: { sha: '{{vars.github.head_sha}}' },
          },
          {
            key: 'test',
            title: 'Unit tests',
            capability: 'shell',
            depends_on: ['checkout'],
            max_retries: 0,
            payload: { pr: '{{vars.github.pull_request.number}}' },
          },
        ],
        triggers: [
          { github: { event: 'pull_request', actions: ['opened', 'synchronize'], repository: REPO } },
        ],
      },
    });
    expect(defined.status).toBe(201);

    // An agent over the real broker: checkout works, the tests fail for good.
    const seen: Record<string, unknown>[] = [];
    const agent = await platform.registerAgent(['git', 'shell']);
    await platform.startAgent(
      agent,
      (task) => {
        seen.push(task.payload);
        if (task.title === 'Unit tests')
          return { status: 'failed', error: 'npm test exited with 1: 3 failing', retryable: false };
        return { result: { checked_out: true }, cost: '0.05' };
      },
      { capabilities: ['git', 'shell'] },
    );

    const { init } = githubDelivery(
      'pull_request',
      pullRequestPayload({ repository: REPO, sha: HEAD, number: 12 }),
    );
    const res = await platform.app.request('/api/webhooks/github', init);
    expect(res.status).toBe(202);
    const { run_ids } = (await res.json()) as { run_ids: string[] };
    expect(run_ids).toHaveLength(1);
    const runId = run_ids[0]!;

    const run = await platform.waitFor('the run to fail', async () => {
      const r = await platform.call('GET', `/api/workflow-runs/${runId}`, {
        auth: await platform.token('viewer'),
      });
      const body = (await r.json()) as { status: string; steps: { step_key: string; status: string }[] };
      return body.status === 'FAILED' ? body : undefined;
    });
    expect(run.steps.map((s) => `${s.step_key} ${s.status}`)).toEqual(['checkout DONE', 'test QUARANTINED']);
    expect(seen).toEqual([{ sha: HEAD }, { pr: 12 }]);

    const runLink = `${PUBLIC_URL}/workflows/runs/${runId}`;
    await expect
      .poll(() => telegram.messages.filter((m) => m.text.includes(runLink)).length, { timeout: 15_000 })
      .toBe(1);
    const message = telegram.messages.find((m) => m.text.includes(runLink))!;
    expect(message.chat_id).toBe(CHAT);
    expect(message.text).toContain('pr-checks');
    expect(message.text).toContain('npm test exited with 1');

    await expect
      .poll(
        () =>
          github.checkRuns.filter((c) => c.external_id === runId).map((c) => `${c.status} ${c.conclusion}`),
        {
          timeout: 15_000,
        },
      )
      .toEqual(['completed failure']);
    const check = github.checkRuns.find((c) => c.external_id === runId)!;
    expect(check).toMatchObject({ name: 'devart: pr-checks', head_sha: HEAD, details_url: runLink });
    expect(check.output!.title).toMatch(/^Failed at step “test”/);
    // The token exchange happened, and every check run call used the installation token it gave.
    expect(github.tokensIssued()).toBeGreaterThanOrEqual(1);
    expect(github.requests.filter((r) => r.status === 401)).toEqual([]);

    // Both loops keep running: still one message and one check run a moment later.
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(telegram.messages.filter((m) => m.text.includes(runLink))).toHaveLength(1);
    expect(github.checkRuns.filter((c) => c.external_id === runId)).toHaveLength(1);
  });
});
