import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { insertTasks } from '@devart/db';
import { detectBubblewrap } from '@devart/sandbox';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi } from '../../../test/api';
import { backend } from '../../../test/db';
import { digestRows, expectProblem } from '../../../test/http';
import { createTestPlatform, type TestPlatform } from '../../../test/platform';
import { bubblewrap, createTestSandboxes } from '../../../test/sandbox';
import { defaultSettings } from './platform';
import { reapExpiredLeases } from './services/failures';
import { createSandboxService } from './services/sandboxes';

let api: TestApi;
const agents: { id: string; key: string }[] = [];

beforeAll(async () => {
  api = await createTestApi();
  const admin = await api.token('admin');
  for (const name of ['sandbox agent a', 'sandbox agent b']) {
    const res = await api.call('POST', '/api/agents', {
      auth: admin,
      body: { name, capabilities: ['shell'] },
    });
    const body = (await res.json()) as { id: string; api_key: string };
    agents.push({ id: body.id, key: body.api_key });
  }
});

afterAll(async () => {
  await api?.drop();
});

/** A fresh task IN_PROGRESS under `agent`. */
async function heldTask(agent: { key: string }): Promise<string> {
  const [task] = await insertTasks(api.db, [
    { title: 'sandboxed work', capability: 'shell', created_by: null },
  ]);
  const start = await api.call('POST', `/api/tasks/${task!.id}/start`, { auth: agent.key, body: {} });
  expect(start.status).toBe(200);
  return task!.id;
}

async function requestSandbox(agent: { id: string; key: string }, body: Record<string, unknown>) {
  return api.call('POST', `/api/agents/${agent.id}/request-sandbox`, { auth: agent.key, body });
}

async function sandboxFor(agent: { id: string; key: string }, taskId?: string) {
  const res = await requestSandbox(agent, { task_id: taskId ?? (await heldTask(agent)) });
  const text = await res.text();
  expect(res.status, text).toBe(201);
  return JSON.parse(text) as { sandbox_id: string; external_id: string; task_id: string; status: string };
}

async function exec(agent: { key: string }, sandboxId: string, body: Record<string, unknown>) {
  return api.call('POST', `/api/sandboxes/${sandboxId}/exec`, { auth: agent.key, body });
}

async function waitUntil(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

async function statusOf(sandboxId: string) {
  const { rows } = await api.db.query<{ status: string; termination_reason: string | null }>(
    'SELECT status, termination_reason FROM sandboxes WHERE id = $1',
    [sandboxId],
  );
  return rows[0];
}

describe.skipIf(!bubblewrap.available)(
  `sandboxes over HTTP on ${backend} (local bubblewrap provider)`,
  () => {
    it('provisions a sandbox for a held task, runs commands in it, and records it', async () => {
      const [a] = agents;
      const sandbox = await sandboxFor(a!);
      expect(sandbox).toMatchObject({ status: 'RUNNING', external_id: expect.stringMatching(/^sbx-/) });
      const res = await exec(a!, sandbox.sandbox_id, {
        command: ['sh', '-c', 'echo "$GREETING" > note && cat note && cat >&2 && exit 3'],
        env: { GREETING: 'hello from inside' },
        stdin: 'to stderr',
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        exit_code: 3,
        stdout: 'hello from inside\n',
        stderr: 'to stderr',
        truncated: false,
        timed_out: false,
      });
      const viewer = await api.token('viewer');
      const read = await api.call('GET', `/api/sandboxes/${sandbox.sandbox_id}`, { auth: viewer });
      expect(await read.json()).toMatchObject({
        sandbox_id: sandbox.sandbox_id,
        agent_id: a!.id,
        provider: 'local',
        status: 'RUNNING',
        spec: { cpu: 1000, memory: 512, ttl_seconds: 900, egress: 'none' },
      });
    });

    it('accepts the seed’s camelCase spelling (taskId, ttlSeconds)', async () => {
      const [a] = agents;
      const res = await requestSandbox(a!, { taskId: await heldTask(a!), ttlSeconds: 60 });
      expect(res.status).toBe(201);
      expect(((await res.json()) as { spec: { ttl_seconds: number } }).spec.ttl_seconds).toBe(60);
    });

    it('lets only the owning agent request, read, exec and terminate: another agent gets 403 (409 for a task it does not hold) and writes nothing', async () => {
      const [a, b] = agents;
      const taskOfA = await heldTask(a!);
      const before = await digestRows(api.db);
      // B asking in A's name, and B asking for A's task in its own name.
      await expectProblem(
        await api.call('POST', `/api/agents/${a!.id}/request-sandbox`, {
          auth: b!.key,
          body: { task_id: taskOfA },
        }),
        403,
        'forbidden',
      );
      await expectProblem(await requestSandbox(b!, { task_id: taskOfA }), 409, 'conflict');
      expect(await digestRows(api.db)).toBe(before);

      const sandbox = await sandboxFor(a!, taskOfA);
      await expectProblem(await exec(b!, sandbox.sandbox_id, { command: ['true'] }), 403, 'forbidden');
      await expectProblem(
        await api.call('GET', `/api/sandboxes/${sandbox.sandbox_id}`, { auth: b!.key }),
        403,
        'forbidden',
      );
      await expectProblem(
        await api.call('DELETE', `/api/sandboxes/${sandbox.sandbox_id}`, { auth: b!.key }),
        403,
        'forbidden',
      );
      expect((await statusOf(sandbox.sandbox_id))?.status).toBe('RUNNING');
    });

    it('refuses tasks that are not in progress (409) or unknown (404), and bad specs naming the field', async () => {
      const [a] = agents;
      const [todo] = await insertTasks(api.db, [{ title: 'not started', created_by: null }]);
      await expectProblem(await requestSandbox(a!, { task_id: todo!.id }), 409, 'conflict');
      await expectProblem(
        await requestSandbox(a!, { task_id: '00000000-0000-4000-8000-000000000000' }),
        404,
        'not_found',
      );
      const cases: [Record<string, unknown>, string][] = [
        [{ task_id: 'nope' }, 'task_id'],
        [{ task_id: todo!.id, ttl_seconds: 5 }, 'ttl_seconds'],
        [{ task_id: todo!.id, resources: { memory: 1 } }, 'resources.memory'],
        [{ task_id: todo!.id, egress: 'all' }, 'egress'],
        [{ task_id: todo!.id, shell: true }, 'shell'],
      ];
      for (const [body, field] of cases) {
        const problem = await expectProblem(await requestSandbox(a!, body), 400, 'validation');
        expect(
          problem.errors?.map((e) => e.field),
          JSON.stringify(body),
        ).toContain(field);
      }
      // The default sandbox policy allows no egress: refused before anything is recorded (where a
      // policy allows it, the local provider still refuses an allowlist: sandbox-policy.test.ts).
      const held = await heldTask(a!);
      const problem = await expectProblem(
        await requestSandbox(a!, {
          task_id: held,
          egress: { allow: [{ cidr: '203.0.113.0/24', ports: [443] }] },
        }),
        403,
        'forbidden',
      );
      expect(problem.detail).toMatch(/^body\.egress\.allow\[0\]\.cidr: /);
      const { rows } = await api.db.query<{ status: string }>(
        'SELECT status FROM sandboxes WHERE task_id = $1',
        [held],
      );
      expect(rows).toEqual([]);
    });

    it('refuses bad exec bodies naming the field', async () => {
      const [a] = agents;
      const sandbox = await sandboxFor(a!);
      const cases: [Record<string, unknown>, string][] = [
        [{ command: [] }, 'command'],
        [{ command: 'ls -la' }, 'command'],
        [{ command: ['true'], timeout_ms: 0 }, 'timeout_ms'],
        [{ command: ['true'], env: { 'BAD NAME': 'x' } }, 'env.BAD NAME'],
      ];
      for (const [body, field] of cases) {
        const problem = await expectProblem(await exec(a!, sandbox.sandbox_id, body), 400, 'validation');
        expect(
          problem.errors?.map((e) => e.field),
          JSON.stringify(body),
        ).toContain(field);
      }
    });

    it('decides 12 concurrent requests for one task under its row lock: three sandboxes, nine 409s', async () => {
      const [a] = agents;
      const taskId = await heldTask(a!);
      const answers = await Promise.all(
        Array.from({ length: 12 }, () => requestSandbox(a!, { task_id: taskId })),
      );
      const codes = answers.map((r) => r.status);
      expect(codes.filter((c) => c === 201)).toHaveLength(3);
      expect(codes.filter((c) => c === 409)).toHaveLength(9);
    });

    it('runs at most SANDBOX_MAX_CONCURRENT_EXECS commands in one sandbox at once: one more is 429 naming the limit', async () => {
      const [a] = agents;
      const limit = defaultSettings.sandboxMaxConcurrentExecs;
      expect(limit).toBe(4);
      const sandbox = await sandboxFor(a!);
      const other = await sandboxFor(a!);
      const workspace = join(api.sandboxes.rootDir, sandbox.external_id, 'workspace');
      // Each command says it runs, then waits for the host to let it go.
      const waiting = 'touch "started-$0"; while [ ! -e go ]; do sleep 0.05; done; echo released';
      const running = Array.from({ length: limit }, (_, i) =>
        exec(a!, sandbox.sandbox_id, { command: ['sh', '-c', waiting, String(i)], timeout_ms: 30_000 }),
      );
      await waitUntil(() =>
        Array.from({ length: limit }, (_, i) => `started-${i}`).every((f) => existsSync(join(workspace, f))),
      );
      const refused = await exec(a!, sandbox.sandbox_id, { command: ['true'] });
      expect(refused.headers.get('retry-after')).toBe('1');
      const problem = await expectProblem(refused, 429, 'too_many_requests');
      expect(problem.detail).toContain(`already runs ${limit} commands`);
      expect(problem.detail).toContain(`SANDBOX_MAX_CONCURRENT_EXECS) is ${limit}`);
      // The cap is per sandbox: the agent's other sandbox still runs commands.
      expect((await exec(a!, other.sandbox_id, { command: ['true'] })).status).toBe(200);
      writeFileSync(join(workspace, 'go'), '');
      for (const res of await Promise.all(running)) {
        expect(res.status).toBe(200);
        expect(await res.json()).toMatchObject({ exit_code: 0, stdout: 'released\n' });
      }
      // Ended commands free their places.
      expect((await exec(a!, sandbox.sandbox_id, { command: ['true'] })).status).toBe(200);
    });

    it('kills a command at its timeout (124) and caps its output', async () => {
      const [a] = agents;
      const sandbox = await sandboxFor(a!);
      const slow = (await (
        await exec(a!, sandbox.sandbox_id, { command: ['sh', '-c', 'sleep 30'], timeout_ms: 300 })
      ).json()) as { exit_code: number; timed_out: boolean; duration_ms: number };
      expect(slow).toMatchObject({ exit_code: 124, timed_out: true });
      expect(slow.duration_ms).toBeLessThan(5000);
      const loud = (await (
        await exec(a!, sandbox.sandbox_id, { command: ['sh', '-c', 'yes | head -c 3000000'] })
      ).json()) as { stdout: string; truncated: boolean };
      expect(loud.truncated).toBe(true);
      expect(loud.stdout.length).toBeLessThan(3_000_000);
    });

    it('answers a slow command at once and keeps the body alive until it ends; a sandbox ended meanwhile reports the kill', async () => {
      const [a] = agents;
      const app = await api.replica({
        sandboxes: api.sandboxes.backend,
        settings: { ...defaultSettings, slowExecAfterMs: 100 },
      });
      const sandbox = await sandboxFor(a!);
      const post = (command: string[]) =>
        app.request(`/api/sandboxes/${sandbox.sandbox_id}/exec`, {
          method: 'POST',
          headers: { authorization: `Bearer ${a!.key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ command }),
        });
      const started = Date.now();
      const slow = await post(['sh', '-c', 'sleep 0.6; echo finished']);
      expect(slow.status).toBe(200);
      expect(Date.now() - started).toBeLessThan(600);
      const text = await slow.text();
      expect(text.startsWith(' ')).toBe(true);
      expect(JSON.parse(text)).toMatchObject({ exit_code: 0, stdout: 'finished\n', timed_out: false });

      const doomed = await post(['sh', '-c', 'sleep 30']);
      expect(doomed.status).toBe(200);
      await api.call('DELETE', `/api/sandboxes/${sandbox.sandbox_id}`, { auth: a!.key });
      const ended = JSON.parse(await doomed.text()) as { exit_code: number; error?: unknown };
      expect(ended.exit_code === -1 ? ended.error : ended.exit_code).toBeTruthy();
      expect(ended.exit_code).not.toBe(0);
    });

    it('terminates idempotently: DELETE twice answers the ended sandbox, its workspace is gone, exec is 409', async () => {
      const [a] = agents;
      const sandbox = await sandboxFor(a!);
      const workspace = join(api.sandboxes.rootDir, sandbox.external_id);
      expect(existsSync(workspace)).toBe(true);
      const supervisor = await api.token('supervisor');
      for (const auth of [a!.key, supervisor]) {
        const res = await api.call('DELETE', `/api/sandboxes/${sandbox.sandbox_id}`, { auth });
        expect(res.status).toBe(200);
        expect(await res.json()).toMatchObject({ status: 'TERMINATED', termination_reason: 'terminated' });
      }
      expect(existsSync(workspace)).toBe(false);
      expect(await api.sandboxes.provider.list()).not.toContain(sandbox.external_id);
      await expectProblem(await exec(a!, sandbox.sandbox_id, { command: ['true'] }), 409, 'conflict');
    });

    it('ends a sandbox when its task completes, fails or loses its lease, and when its TTL passes', async () => {
      const [a] = agents;
      const done = await sandboxFor(a!);
      const failed = await sandboxFor(a!);
      const expired = await sandboxFor(a!);
      const lapsed = await sandboxFor(a!);
      await api.db.query(`UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, [
        lapsed.task_id,
      ]);
      const reaped = await reapExpiredLeases(api.db, { backoff: { baseMs: 10, capMs: 10 } });
      expect(reaped.map((t) => t.id)).toEqual([lapsed.task_id]);
      expect(
        (
          await api.call('POST', `/api/tasks/${done.task_id}/complete`, {
            auth: a!.key,
            body: { result: {} },
          })
        ).status,
      ).toBe(200);
      expect(
        (
          await api.call('POST', `/api/tasks/${failed.task_id}/report-failure`, {
            auth: a!.key,
            body: { error: 'broke', retryable: false },
          })
        ).status,
      ).toBe(200);
      await api.db.query(`UPDATE sandboxes SET expires_at = now() - interval '1 second' WHERE id = $1`, [
        expired.sandbox_id,
      ]);
      // The sweep every API process runs on a timer (SANDBOX_SWEEP_SECONDS).
      expect(await api.sandboxes.service.sweep()).toBeGreaterThanOrEqual(4);
      expect(await statusOf(done.sandbox_id)).toEqual({
        status: 'TERMINATED',
        termination_reason: 'task_finished',
      });
      expect(await statusOf(failed.sandbox_id)).toEqual({
        status: 'TERMINATED',
        termination_reason: 'task_finished',
      });
      expect(await statusOf(expired.sandbox_id)).toEqual({ status: 'TERMINATED', termination_reason: 'ttl' });
      expect(await statusOf(lapsed.sandbox_id)).toEqual({
        status: 'TERMINATED',
        termination_reason: 'task_finished',
      });
      const left = await api.sandboxes.provider.list();
      for (const s of [done, failed, expired, lapsed]) expect(left).not.toContain(s.external_id);
    });

    it('counts sandboxes by provider and status in /metrics', async () => {
      const text = await (await api.call('GET', '/metrics')).text();
      const { rows } = await api.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM sandboxes WHERE provider = 'local' AND status = 'TERMINATED'",
      );
      expect(rows[0]!.n).toBeGreaterThan(0);
      expect(text).toContain(`devart_sandboxes{provider="local",status="TERMINATED"} ${rows[0]!.n}`);
    });

    it('answers exec for a task that left IN_PROGRESS with 409 and ends the sandbox at once', async () => {
      const [a] = agents;
      const sandbox = await sandboxFor(a!);
      await api.call('POST', `/api/tasks/${sandbox.task_id}/complete`, { auth: a!.key, body: {} });
      await expectProblem(await exec(a!, sandbox.sandbox_id, { command: ['true'] }), 409, 'conflict');
      expect((await statusOf(sandbox.sandbox_id))?.termination_reason).toBe('task_finished');
    });

    it('reconciles after a restart: provider sandboxes the table does not know are removed, lost rows recorded', async () => {
      const [a] = agents;
      const kept = await sandboxFor(a!);
      const vanished = await sandboxFor(a!);
      // Left behind by a crashed process: running at the provider, unknown (or already ended) in the table.
      const orphan = await api.sandboxes.provider.provision({
        taskId: kept.task_id,
        cpu: 500,
        memory: 128,
        ttlSeconds: 60,
        egress: 'none',
      });
      await api.sandboxes.provider.terminate(vanished.external_id);
      const restarted = createSandboxService({
        db: api.db,
        logger: pino({ level: 'silent' }),
        backend: { provider: api.sandboxes.provider },
      });
      const report = await restarted.reconcile();
      expect(report.removed).toContain(orphan.id);
      expect(report.removed).not.toContain(kept.external_id);
      expect(report.lost).toBeGreaterThanOrEqual(1);
      expect(await api.sandboxes.provider.list()).toContain(kept.external_id);
      expect(await api.sandboxes.provider.list()).not.toContain(orphan.id);
      expect(await statusOf(vanished.sandbox_id)).toEqual({
        status: 'TERMINATED',
        termination_reason: 'lost',
      });
      expect((await statusOf(kept.sandbox_id))?.status).toBe('RUNNING');
    });
  },
);

describe.skipIf(!bubblewrap.available)(`local sandboxes with replicas on several hosts on ${backend}`, () => {
  it('a replica on another host neither reaps, nor calls lost, nor terminates sandboxes it cannot see', async () => {
    const [a] = agents;
    const sandbox = await sandboxFor(a!);
    await api.call('POST', `/api/tasks/${sandbox.task_id}/complete`, { auth: a!.key, body: {} });
    const elsewhere = createTestSandboxes(api.db, pino({ level: 'silent' }), {
      providerKey: 'local@other-host',
    });
    try {
      expect(await elsewhere.service.sweep()).toBe(0);
      expect(await elsewhere.service.reconcile()).toEqual({ removed: [], lost: 0 });
      const agentPrincipal = { kind: 'agent', agent: { id: a!.id } } as never;
      await expect(elsewhere.service.terminate(agentPrincipal, sandbox.sandbox_id)).rejects.toThrow(
        /other-host|lives at provider/,
      );
      expect((await statusOf(sandbox.sandbox_id))?.status).toBe('RUNNING');
      // This host's sweep ends it.
      expect(await api.sandboxes.service.sweep()).toBeGreaterThanOrEqual(1);
      expect((await statusOf(sandbox.sandbox_id))?.status).toBe('TERMINATED');
    } finally {
      await elsewhere.cleanup();
    }
  });
});

describe(`sandboxes without a provider on ${backend}`, () => {
  it('answers 503 problem+json saying how to install bubblewrap, and writes nothing', async () => {
    const missing = await detectBubblewrap('/nonexistent/bwrap');
    expect(missing.available).toBe(false);
    const hint = missing.available ? '' : missing.hint;
    const app = await api.replica({
      sandboxes: { unavailable: `Sandboxes are unavailable on this server: ${hint}.` },
    });
    const [a] = agents;
    const taskId = await heldTask(a!);
    const before = await digestRows(api.db);
    const res = await app.request(`/api/agents/${a!.id}/request-sandbox`, {
      method: 'POST',
      headers: { authorization: `Bearer ${a!.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ task_id: taskId }),
    });
    const problem = await expectProblem(res, 503, 'unavailable');
    expect(problem.detail).toContain('apt-get install bubblewrap');
    expect(await digestRows(api.db)).toBe(before);
  });
});

describe.skipIf(!bubblewrap.available)(`sandbox lifecycle in the running platform on ${backend}`, () => {
  let platform: TestPlatform | undefined;
  afterEach(async () => {
    await platform?.close();
    platform = undefined;
  });

  it('the platform’s sweeper ends a sandbox once its task is done, with nothing left at the provider', async () => {
    platform = await createTestPlatform();
    const p = platform;
    const agent = await p.registerAgent(['shell']);
    const [task] = await insertTasks(p.db, [{ title: 'lifecycle', capability: 'shell', created_by: null }]);
    expect(
      (await p.call('POST', `/api/tasks/${task!.id}/start`, { auth: agent.apiKey, body: {} })).status,
    ).toBe(200);
    const res = await p.call('POST', `/api/agents/${agent.id}/request-sandbox`, {
      auth: agent.apiKey,
      body: { task_id: task!.id },
    });
    const sandbox = (await res.json()) as { sandbox_id: string; external_id: string };
    expect(await p.sandboxes.provider.list()).toContain(sandbox.external_id);
    await p.call('POST', `/api/tasks/${task!.id}/complete`, { auth: agent.apiKey, body: {} });
    await p.waitFor('sandbox terminated by the sweeper', async () => {
      const { rows } = await p.db.query<{ status: string }>('SELECT status FROM sandboxes WHERE id = $1', [
        sandbox.sandbox_id,
      ]);
      return rows[0]?.status === 'TERMINATED';
    });
    // The row is marked first; the provider's removal follows it.
    await p.waitFor(
      'sandbox removed at the provider',
      async () => !(await p.sandboxes.provider.list()).includes(sandbox.external_id),
    );
  });
});
