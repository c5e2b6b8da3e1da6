import { connectPostgres, type Db, listDeliveries } from '@devart/db';
import { createInProcessBroker } from '@devart/queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callOf, testLogger, testPlatformInputs, testToken } from '../../../test/api';
import { backend, createTestDatabase, type TestDatabase } from '../../../test/db';
import { defaultSettings, type PlatformSettings, type WiredPlatform, wirePlatform } from './platform';
import { noBrokerAccess } from './services/broker-access';
import { startTelegramStub, type TelegramStub } from './services/telegram-stub';

const TOKEN = '123456789:AAE-test-token-for-the-stub_0123456789';
const CHAT = '424242';
const PUBLIC_URL = 'https://devart.example';

let database: TestDatabase;
let stub: TelegramStub;
const platforms: WiredPlatform[] = [];
const pools: Db[] = [];
let call: ReturnType<typeof callOf>;
let agent: { id: string; key: string };

/** An API process with its background loops, sending Telegram through the stub. */
async function apiProcess(): Promise<WiredPlatform> {
  // On PostgreSQL each process has its own pool, as separate processes would.
  const db = database.url ? connectPostgres(database.url) : database.db;
  if (database.url) pools.push(db);
  const settings: PlatformSettings = {
    ...defaultSettings,
    notifications: {
      telegram: { token: TOKEN, chatId: CHAT, apiUrl: stub.url },
      policy: { ...defaultSettings.notifications.policy, publicUrl: PUBLIC_URL },
      delivery: { pollIntervalMs: 100, backoff: { baseMs: 200, capMs: 400 } },
    },
  };
  const wired = await wirePlatform({
    ...testPlatformInputs(db, { settings, logger: testLogger() }),
    background: true,
    broker: { broker: createInProcessBroker(), brokerAccess: noBrokerAccess },
  });
  platforms.push(wired);
  return wired;
}

beforeAll(async () => {
  database = await createTestDatabase();
  stub = await startTelegramStub({ token: TOKEN });
  // Two API processes over one database: each notification must still be sent once.
  const first = await apiProcess();
  await apiProcess();
  call = callOf(first.app);
  const res = await call('POST', '/api/agents', {
    auth: await testToken('admin'),
    body: { name: 'notified-agent', capabilities: ['deploy', 'lint'] },
  });
  expect(res.status).toBe(201);
  const body = (await res.json()) as { id: string; api_key: string };
  agent = { id: body.id, key: body.api_key };
});

afterAll(async () => {
  for (const p of platforms) await p.close();
  for (const pool of pools) await pool.close();
  await stub?.close();
  await database?.drop();
});

/** Creates a task that quarantines at its first failure, starts it as the agent; returns its id. */
async function startedTask(body: Record<string, unknown>): Promise<string> {
  const created = await call('POST', '/api/tasks', {
    auth: await testToken('supervisor'),
    body: { capability: 'deploy', max_retries: 0, ...body },
  });
  expect(created.status).toBe(201);
  const { id } = (await created.json()) as { id: string };
  const started = await call('POST', `/api/tasks/${id}/start`, { auth: agent.key, body: { attempt: 1 } });
  expect(started.status).toBe(200);
  return id;
}

/** Reports the failure that quarantines the task; returns how long the API took to answer. */
async function quarantine(id: string, error: string): Promise<number> {
  const began = performance.now();
  const res = await call('POST', `/api/tasks/${id}/report-failure`, { auth: agent.key, body: { error } });
  const took = performance.now() - began;
  expect(res.status).toBe(200);
  expect(((await res.json()) as { status: string }).status).toBe('QUARANTINED');
  return took;
}

const messagesAbout = (id: string) => stub.messages.filter((m) => m.text.includes(id));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe(`Telegram notifications through the delivery outbox, two API processes, on ${backend}`, () => {
  it('sends one message for a quarantined task, to the chat, escaped, with the link, after the 429’s retry_after', async () => {
    stub.throttleNext(1, 1);
    const id = await startedTask({ title: 'Deploy <prod> & "canary"' });
    await quarantine(id, 'exit code 1: <permission denied> & more');

    await expect.poll(() => messagesAbout(id).length, { timeout: 15_000 }).toBe(1);
    const [message] = messagesAbout(id);
    expect(message!.chat_id).toBe(CHAT);
    expect(message!.parse_mode).toBe('HTML');
    expect(message!.text).toBe(
      [
        '🚨 <b>Task quarantined</b>',
        '<b>Deploy &lt;prod&gt; &amp; &quot;canary&quot;</b>',
        'deploy · 1 attempt',
        '<pre>exit code 1: &lt;permission denied&gt; &amp; more</pre>',
        `<a href="${PUBLIC_URL}/tasks/${id}">Open task</a>`,
      ].join('\n'),
    );
    const tries = stub.requests.filter((r) => r.chat_id === CHAT && r.path === '/bot<token>/sendMessage');
    const throttled = tries.find((r) => r.status === 429)!;
    expect(throttled).toBeDefined();
    expect(message!.at - throttled.at).toBeGreaterThanOrEqual(1000);

    // Both processes keep running their loops: still one message a while later.
    await sleep(1500);
    expect(messagesAbout(id)).toHaveLength(1);
    const [delivery] = (await listDeliveries(database.db, { channel: 'telegram' })).filter(
      (d) => d.payload.task_id === id,
    );
    expect(delivery).toMatchObject({ status: 'sent', attempts: 2, target: CHAT });
    expect(delivery!.last_error).toMatch(/429 Too Many Requests/);
  });

  it('answers report-failure as fast with the Bot API down, and sends the message once it is back', async () => {
    const before = await startedTask({ title: 'warm-up' });
    const upMs = await quarantine(before, 'boom');
    await expect.poll(() => messagesAbout(before).length, { timeout: 15_000 }).toBe(1);

    await stub.down();
    const id = await startedTask({ title: 'while Telegram is down' });
    const downMs = await quarantine(id, 'boom');
    // Nothing on the request path waits for Telegram: the delivery is one more row in the same statement.
    expect(downMs).toBeLessThan(Math.max(500, upMs * 3));
    await expect
      .poll(
        async () =>
          (await listDeliveries(database.db, { channel: 'telegram' })).find((d) => d.payload.task_id === id)
            ?.last_error,
        { timeout: 10_000 },
      )
      .toMatch(/Telegram unreachable/);
    expect(messagesAbout(id)).toHaveLength(0);

    await stub.up();
    await expect.poll(() => messagesAbout(id).length, { timeout: 15_000 }).toBe(1);
    await sleep(1000);
    expect(messagesAbout(id)).toHaveLength(1);
  });

  it('sends each of several notifications once, one at a time per chat', async () => {
    const ids = await Promise.all([1, 2, 3].map((n) => startedTask({ title: `batch ${n}` })));
    await Promise.all(ids.map((id) => quarantine(id, 'boom')));
    await expect
      .poll(() => ids.map((id) => messagesAbout(id).length), { timeout: 20_000 })
      .toEqual([1, 1, 1]);
    const times = ids.map((id) => messagesAbout(id)[0]!.at).sort((a, b) => a - b);
    // The chat's pace (1 s for a private chat), shared by both processes.
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(900);
  });

  it('tells a failed run once, naming the step and its error, linking the run; a completed run only when the workflow opts in', async () => {
    const supervisor = await testToken('supervisor');
    const workflow = async (name: string, notify?: Record<string, boolean>) => {
      const res = await call('POST', '/api/workflows', {
        auth: supervisor,
        body: {
          name,
          steps: [{ key: 'build', title: 'Build it', capability: 'lint', max_retries: 0 }],
          ...(notify ? { notify } : {}),
        },
      });
      expect(res.status).toBe(201);
      return ((await res.json()) as { id: string }).id;
    };
    const runStep = async (workflowId: string) => {
      const res = await call('POST', `/api/workflows/${workflowId}/trigger`, { auth: supervisor, body: {} });
      expect(res.status).toBe(201);
      const run = (await res.json()) as { run_id: string };
      const { rows } = await database.db.query<{ id: string }>(
        'SELECT id FROM tasks WHERE workflow_run_id = $1',
        [run.run_id],
      );
      const step = rows[0]!.id;
      expect(
        (await call('POST', `/api/tasks/${step}/start`, { auth: agent.key, body: { attempt: 1 } })).status,
      ).toBe(200);
      return { runId: run.run_id, step };
    };

    const failing = await runStep(await workflow('Nightly <build>'));
    await quarantine(failing.step, 'compiler said: no');
    await expect.poll(() => messagesAbout(failing.runId).length, { timeout: 15_000 }).toBe(1);
    const text = messagesAbout(failing.runId)[0]!.text;
    expect(text).toContain('❌ <b>Workflow run failed</b>\n<b>Nightly &lt;build&gt;</b>');
    expect(text).toContain('Step build (Build it) quarantined after 1 attempt');
    expect(text).toContain('<pre>compiler said: no</pre>');
    expect(text).toContain(`<a href="${PUBLIC_URL}/workflows/runs/${failing.runId}">Open run</a>`);
    // The step's own quarantine is told by the run's message, not a second one.
    await sleep(1200);
    expect(messagesAbout(failing.step)).toHaveLength(0);

    const complete = async (step: string) =>
      expect(
        (
          await call('POST', `/api/tasks/${step}/complete`, {
            auth: agent.key,
            body: { result: {}, cost: '0.25' },
          })
        ).status,
      ).toBe(200);
    const quiet = await runStep(await workflow('quiet'));
    await complete(quiet.step);
    const loud = await runStep(await workflow('loud', { on_complete: true }));
    await complete(loud.step);
    await expect.poll(() => messagesAbout(loud.runId).length, { timeout: 15_000 }).toBe(1);
    expect(messagesAbout(loud.runId)[0]!.text).toMatch(
      /^✅ <b>Workflow run completed<\/b>\n<b>loud<\/b>\n1 step · \d+ (ms|s) · cost 0\.25\n<a href=/,
    );
    expect(messagesAbout(quiet.runId)).toHaveLength(0);
    const quietDelivery = (await listDeliveries(database.db, { channel: 'telegram', limit: 1000 })).find(
      (d) => d.payload.workflow_run_id === quiet.runId && d.payload.type === 'workflow_run.completed',
    );
    expect(quietDelivery).toMatchObject({
      status: 'skipped',
      result: { reason: expect.stringContaining('on_complete') },
    });
  });

  it('GET /api/integrations shows Telegram configured and its delivery health to an admin, never the token', async () => {
    const res = await call('GET', '/api/integrations', { auth: await testToken('admin') });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(TOKEN.split(':')[1]);
    const body = JSON.parse(text) as {
      items: { name: string; configured: boolean; settings: unknown; deliveries: unknown[] }[];
    };
    const telegram = body.items.find((i) => i.name === 'telegram')!;
    expect(telegram).toMatchObject({
      configured: true,
      settings: { bot_token: 'set', chat_id: CHAT, api_url: stub.url, public_url: PUBLIC_URL },
      deliveries: [
        {
          channel: 'telegram',
          backlog: 0,
          failed: 0,
          last_success_at: expect.any(String),
          last_error: expect.stringMatching(/Telegram/),
          seen_at: expect.any(String),
        },
      ],
    });
    expect((await call('GET', '/api/integrations', { auth: await testToken('supervisor') })).status).toBe(
      403,
    );
    expect((await call('GET', '/api/integrations')).status).toBe(401);
  });
});
