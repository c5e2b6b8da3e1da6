import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callOf, createTestApi, type TestApi } from '../../../test/api';
import { backend } from '../../../test/db';
import { createAgentKeyCache } from './auth/agent-key-cache';
import { followRevocations } from './auth/agent-revocations';

describe(`a revoked agent key on ${backend}, across replicas`, () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await createTestApi();
  });
  afterAll(() => api.drop());

  async function register(): Promise<{ id: string; key: string }> {
    const res = await api.call('POST', '/api/agents', {
      auth: await api.token('admin'),
      body: { name: 'to revoke', capabilities: ['lint'] },
    });
    expect(res.status).toBe(201);
    const { id, api_key } = (await res.json()) as { id: string; api_key: string };
    return { id, key: api_key };
  }

  it('is refused by the other replica at once (its NOTIFY, not the 5 s cache), on every agent call', async () => {
    const other = callOf(await api.replica());
    const { id, key } = await register();
    const created = await api.call('POST', '/api/tasks', {
      auth: await api.token('supervisor'),
      body: { title: 'held while revoked', capability: 'lint' },
    });
    const { id: taskId } = (await created.json()) as { id: string };
    // The other replica has the key cached: it took the task and heartbeats it.
    expect((await other('POST', `/api/tasks/${taskId}/start`, { auth: key, body: {} })).status).toBe(200);
    expect((await other('POST', `/api/tasks/${taskId}/heartbeat`, { auth: key })).status).toBe(200);
    // Authenticated, so the exec gets as far as looking for the sandbox.
    const exec = { auth: key, body: { command: ['true'] } };
    expect((await other('POST', `/api/sandboxes/${randomUUID()}/exec`, exec)).status).toBe(404);

    expect((await api.call('DELETE', `/api/agents/${id}`, { auth: await api.token('admin') })).status).toBe(
      204,
    );
    const revokedAt = Date.now();
    // This replica: at once. The other: as soon as the NOTIFY arrives, well inside the cache's 5 s.
    expect((await api.call('POST', `/api/tasks/${taskId}/heartbeat`, { auth: key })).status).toBe(401);
    let status = 200;
    while (status !== 401 && Date.now() - revokedAt < 5000) {
      status = (await other('POST', `/api/tasks/${taskId}/heartbeat`, { auth: key })).status;
      if (status !== 401) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(status).toBe(401);
    expect(Date.now() - revokedAt).toBeLessThan(1000);

    const calls: [string, string, unknown][] = [
      ['POST', `/api/tasks/${taskId}/start`, {}],
      ['POST', `/api/tasks/${taskId}/heartbeat`, undefined],
      ['POST', `/api/tasks/${taskId}/complete`, { result: { forged: true } }],
      ['POST', `/api/tasks/${taskId}/report-failure`, { error: 'x' }],
      ['POST', '/api/tasks/complete-batch', { items: [{ task_id: taskId, result: {} }] }],
      ['POST', `/api/sandboxes/${randomUUID()}/exec`, { command: ['true'] }],
      ['POST', `/api/agents/${id}/request-sandbox`, {}],
      ['GET', '/api/agents/me', undefined],
    ];
    for (const [method, path, body] of calls) {
      const res = await other(method, path, { auth: key, body });
      expect({ path, status: res.status }).toEqual({ path, status: 401 });
      expect(((await res.json()) as { detail: string }).detail).toMatch(/unknown or revoked agent key/);
    }
  });
});

describe('followRevocations', () => {
  it('forgets the announced agent, and every key after LISTEN reconnected', async () => {
    const agent = (id: string) => ({ id }) as never;
    const owners: Record<string, string> = { h1: 'a1', h2: 'a2' };
    let lookups = 0;
    const agentKeys = createAgentKeyCache({
      lookup: async (hash) => {
        lookups++;
        return agent(owners[hash]!);
      },
    });
    let notify: (payload: string) => void = () => {};
    const stop = await followRevocations({
      db: {
        listen: async (_channel, onNotify) => {
          notify = onNotify;
          return async () => {};
        },
      },
      agentKeys,
      logger: pino({ level: 'silent' }),
    });
    await agentKeys.find('h1');
    await agentKeys.find('h2');
    notify('a1');
    await agentKeys.find('h1');
    await agentKeys.find('h2');
    expect(lookups).toBe(3);
    notify('');
    await agentKeys.find('h2');
    expect(lookups).toBe(4);
    await stop();
  });
});
