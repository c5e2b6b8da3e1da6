import { insertTasks } from '@devart/db';
import type { SandboxProvider } from '@devart/sandbox';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi } from '../../../test/api';
import { backend } from '../../../test/db';
import { markAgentsOffline } from './services/agents';
import { startEventRetention } from './services/event-retention';
import { startLeaseReaper } from './services/lease-reaper';
import { createSandboxService } from './services/sandboxes';

let api: TestApi;
let admin: string;
const logger = pino({ level: 'silent' });

beforeAll(async () => {
  api = await createTestApi();
  admin = await api.token('admin');
});

afterAll(async () => {
  await api?.drop();
});

interface EventRow {
  id: string;
  type: string;
  agent_id: string | null;
  task_id: string | null;
  sandbox_id: string | null;
  item_id: string | null;
  data: Record<string, unknown>;
}

/** The events table as it is, in id order, optionally after an id. */
async function eventsAfter(after = '0'): Promise<EventRow[]> {
  const { rows } = await api.db.query<EventRow>(
    `SELECT id::text, type, agent_id, task_id, sandbox_id, item_id, data FROM events
     WHERE id > $1::bigint ORDER BY id`,
    [after],
  );
  return rows;
}

async function lastId(): Promise<string> {
  const { rows } = await api.db.query<{ id: string }>('SELECT coalesce(max(id), 0)::text AS id FROM events');
  return rows[0]!.id;
}

async function register(name: string, capabilities = ['echo']) {
  const res = await api.call('POST', '/api/agents', { auth: admin, body: { name, capabilities } });
  const text = await res.text();
  expect(res.status, text).toBe(201);
  const body = JSON.parse(text) as { id: string; api_key: string };
  return { id: body.id, key: body.api_key };
}

/** Moves an agent's last sign of life into the past, as if it had been silent that long. */
async function silence(agentId: string, seconds: number) {
  await api.db.query(
    `UPDATE agents SET last_heartbeat_at = now() - make_interval(secs => $2), created_at = now() - make_interval(secs => $2)
     WHERE id = $1`,
    [agentId, seconds],
  );
}

describe(`agent, sandbox and marketplace events on ${backend}`, () => {
  it('records agent.registered and agent.revoked (once) with their transaction, without the key', async () => {
    const before = await lastId();
    const agent = await register('evented agent', ['echo', 'shell']);
    const revoke = await api.call('DELETE', `/api/agents/${agent.id}`, { auth: admin });
    expect(revoke.status).toBe(204);
    // Revoking again changes nothing, so it records nothing.
    expect((await api.call('DELETE', `/api/agents/${agent.id}`, { auth: admin })).status).toBe(204);

    const events = await eventsAfter(before);
    expect(events.map((e) => [e.type, e.agent_id])).toEqual([
      ['agent.registered', agent.id],
      ['agent.revoked', agent.id],
    ]);
    expect(events[0]!.data).toMatchObject({
      name: 'evented agent',
      capabilities: ['echo', 'shell'],
      status: 'IDLE',
    });
    expect(events[1]!.data).toMatchObject({ status: 'OFFLINE' });
    expect(JSON.stringify(events)).not.toContain(agent.key);
  });

  it('marks a silent agent OFFLINE once (agent.offline), and agent.online when it starts a task again', async () => {
    const agent = await register('sleepy agent');
    const busy = await register('busy agent');
    const [held] = await insertTasks(api.db, [{ title: 'held', capability: 'echo', created_by: null }]);
    expect(
      (await api.call('POST', `/api/tasks/${held!.id}/start`, { auth: busy.key, body: {} })).status,
    ).toBe(200);
    await silence(agent.id, 5);
    await silence(busy.id, 5);
    const before = await lastId();

    // Two sweeps at once, as two replicas would run them: the agent goes OFFLINE exactly once.
    const [a, b] = await Promise.all([markAgentsOffline(api.db, 2), markAgentsOffline(api.db, 2)]);
    expect([...a, ...b].map((x) => x.id)).toEqual([agent.id]);
    expect(await markAgentsOffline(api.db, 2)).toEqual([]);
    // The agent holding a task stays as it is: its lease speaks for it.
    const { rows: statuses } = await api.db.query<{ id: string; status: string }>(
      'SELECT id, status FROM agents WHERE id = ANY ($1::uuid[]) ORDER BY name',
      [[agent.id, busy.id]],
    );
    expect(Object.fromEntries(statuses.map((r) => [r.id, r.status]))).toEqual({
      [agent.id]: 'OFFLINE',
      [busy.id]: 'BUSY',
    });

    const [next] = await insertTasks(api.db, [{ title: 'wake up', capability: 'echo', created_by: null }]);
    const start = await api.call('POST', '/api/tasks/start-batch', {
      auth: agent.key,
      body: { items: [{ task_id: next!.id }] },
    });
    expect(start.status).toBe(200);
    const complete = await api.call('POST', `/api/tasks/${next!.id}/complete`, {
      auth: agent.key,
      body: { result: { ok: true } },
    });
    expect(complete.status).toBe(200);

    const mine = (await eventsAfter(before)).filter((e) => e.type.startsWith('agent.'));
    expect(mine.map((e) => [e.type, e.agent_id, e.data.status])).toEqual([
      ['agent.offline', agent.id, 'OFFLINE'],
      ['agent.online', agent.id, 'IDLE'],
    ]);
    const { rows } = await api.db.query<{ status: string }>('SELECT status FROM agents WHERE id = $1', [
      agent.id,
    ]);
    expect(rows[0]!.status).toBe('IDLE');
  });

  it('an idle agent calling GET /api/agents/me (the SDK presence ping) stays online, and comes back if it was marked OFFLINE', async () => {
    const idle = await register('idle agent');
    await silence(idle.id, 5);
    // The ping moves its last sign of life: the sweep finds nobody silent.
    expect((await api.call('GET', '/api/agents/me', { auth: idle.key })).status).toBe(200);
    expect((await markAgentsOffline(api.db, 2)).map((a) => a.id)).not.toContain(idle.id);

    await silence(idle.id, 5);
    expect((await markAgentsOffline(api.db, 2)).map((a) => a.id)).toContain(idle.id);
    const before = await lastId();
    expect((await api.call('GET', '/api/agents/me', { auth: idle.key })).status).toBe(200);
    const back = (await eventsAfter(before)).filter((e) => e.agent_id === idle.id);
    expect(back.map((e) => [e.type, e.data.status])).toEqual([['agent.online', 'IDLE']]);
  });

  it('runs the offline check on the lease reaper tick, with AGENT_OFFLINE_SECONDS', async () => {
    const agent = await register('reaped agent');
    await silence(agent.id, 3);
    const before = await lastId();
    const reaper = startLeaseReaper({
      db: api.db,
      logger,
      intervalMs: 3_600_000,
      failures: { backoff: { baseMs: 10, capMs: 50 } },
      agentOfflineSeconds: 1,
    });
    try {
      await reaper.reapNow();
      await reaper.reapNow();
    } finally {
      reaper.stop();
    }
    const offline = (await eventsAfter(before)).filter((e) => e.agent_id === agent.id);
    expect(offline.map((e) => e.type)).toEqual(['agent.offline']);
  });

  it('records sandbox.provisioned and sandbox.terminated, a failed provision and a lost sandbox too', async () => {
    const agent = await register('sandboxing agent', ['shell']);
    const alive = new Set<string>();
    let next = 0;
    let refuse = false;
    const provider: SandboxProvider = {
      name: 'fake',
      async provision() {
        if (refuse) throw new Error('no room');
        const id = `fake-${++next}`;
        alive.add(id);
        return { id, status: 'running' };
      },
      get: async (id) => (alive.has(id) ? { id, status: 'running' } : undefined),
      exec: async () => ({
        exitCode: 0,
        stdout: '',
        stderr: '',
        truncated: false,
        timedOut: false,
        durationMs: 1,
      }),
      terminate: async (id) => {
        alive.delete(id);
      },
      list: async () => [...alive],
    };
    const service = createSandboxService({ db: api.db, backend: { provider }, logger });
    const [task] = await insertTasks(api.db, [{ title: 'sandboxed', capability: 'shell', created_by: null }]);
    expect(
      (await api.call('POST', `/api/tasks/${task!.id}/start`, { auth: agent.key, body: {} })).status,
    ).toBe(200);
    const caller = { kind: 'agent' as const, agent: { id: agent.id } };
    const before = await lastId();

    const first = await service.request(caller, agent.id, {
      task_id: task!.id,
      ttl_seconds: 60,
      egress: 'none',
    });
    await service.terminate(caller, first.sandbox_id);
    await service.terminate(caller, first.sandbox_id); // already ended: nothing more
    refuse = true;
    await expect(
      service.request(caller, agent.id, { task_id: task!.id, ttl_seconds: 60, egress: 'none' }),
    ).rejects.toThrow('no room');
    refuse = false;
    const lost = await service.request(caller, agent.id, {
      task_id: task!.id,
      ttl_seconds: 60,
      egress: 'none',
    });
    alive.clear();
    expect(await service.reconcile()).toEqual({ removed: [], lost: 1 });

    const events = await eventsAfter(before);
    expect(events.map((e) => [e.type, e.data.status, e.data.reason ?? null])).toEqual([
      ['sandbox.provisioned', 'RUNNING', null],
      ['sandbox.terminated', 'TERMINATED', 'terminated'],
      ['sandbox.terminated', 'FAILED', 'no room'],
      ['sandbox.provisioned', 'RUNNING', null],
      ['sandbox.terminated', 'TERMINATED', 'lost'],
    ]);
    expect(events[0]).toMatchObject({ sandbox_id: first.sandbox_id, task_id: task!.id, agent_id: agent.id });
    expect(events[4]!.sandbox_id).toBe(lost.sandbox_id);
    expect(events[0]!.data).toMatchObject({ provider: 'fake', cpu: 1000, memory: 512 });
  });

  it('records marketplace.published and marketplace.yanked (once)', async () => {
    const supervisor = await api.token('supervisor');
    const before = await lastId();
    const res = await api.call('POST', '/api/marketplace', {
      auth: supervisor,
      body: {
        item_type: 'agent',
        name: `evented-${Date.now()}`,
        version: '1.0.0',
        manifest: { capabilities: ['echo'] },
      },
    });
    const text = await res.text();
    expect(res.status, text).toBe(201);
    const item = JSON.parse(text) as { id: string; name: string };
    expect((await api.call('DELETE', `/api/marketplace/${item.id}`, { auth: supervisor })).status).toBe(200);
    expect((await api.call('DELETE', `/api/marketplace/${item.id}`, { auth: supervisor })).status).toBe(200);

    const events = await eventsAfter(before);
    expect(events.map((e) => [e.type, e.item_id, e.data.name, e.data.version])).toEqual([
      ['marketplace.published', item.id, item.name, '1.0.0'],
      ['marketplace.yanked', item.id, item.name, '1.0.0'],
    ]);
    expect(events[1]!.data.yanked_at).toEqual(expect.any(String));
  });

  it('retention deletes only the events older than EVENTS_RETENTION_DAYS', async () => {
    await api.db.query(
      `INSERT INTO events (type, at, data) SELECT 'agent.offline', now() - interval '15 days', '{"old": true}'
       FROM generate_series(1, 7)`,
    );
    await api.db.query(
      `INSERT INTO events (type, at, data) VALUES ('agent.offline', now() - interval '13 days', '{"old": false}')`,
    );
    const kept = await api.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM events WHERE NOT (data ? 'old')`,
    );
    const retention = startEventRetention({ db: api.db, logger, days: 14, intervalMs: 3_600_000 });
    try {
      expect(await retention.cleanNow()).toBe(7);
      expect(await retention.cleanNow()).toBe(0);
    } finally {
      retention.stop();
    }
    const { rows } = await api.db.query<{ old: boolean | null; n: number }>(
      `SELECT (data->>'old')::boolean AS old, count(*)::int AS n FROM events GROUP BY 1 ORDER BY 1 NULLS FIRST`,
    );
    expect(rows).toEqual([
      ...(kept.rows[0]!.n > 0 ? [{ old: null, n: kept.rows[0]!.n }] : []),
      { old: false, n: 1 },
    ]);
  });
});
