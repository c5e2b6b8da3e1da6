import { Overview, Session } from '@devart/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi } from '../../../test/api';
import { backend } from '../../../test/db';

let api: TestApi;
beforeAll(async () => {
  api = await createTestApi();
});
afterAll(async () => {
  await api?.drop();
});

describe(`GET /api/me on ${backend}`, () => {
  it('tells a user their subject, role and token expiry', async () => {
    const sub = '7d0a0000-0000-4000-8000-00000000000a';
    const before = Date.now();
    const res = await api.call('GET', '/api/me', {
      auth: await api.token('supervisor', { sub, ttlSeconds: 600 }),
    });
    expect(res.status).toBe(200);
    const me = Session.parse(await res.json());
    expect(me).toMatchObject({ kind: 'user', subject: sub, role: 'supervisor' });
    const expires = Date.parse((me as { expires_at: string }).expires_at);
    expect(expires).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 599_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 601_000);
  });

  it('tells an agent key that it is an agent, and which', async () => {
    const admin = await api.token('admin');
    const created = (await (
      await api.call('POST', '/api/agents', {
        auth: admin,
        body: { name: 'me-agent', capabilities: ['echo'] },
      })
    ).json()) as { id: string; api_key: string };
    const res = await api.call('GET', '/api/me', { auth: created.api_key });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ kind: 'agent', agent_id: created.id, name: 'me-agent' });
  });

  it('refuses a missing, broken or expired token with a problem saying why', async () => {
    const nobody = await api.call('GET', '/api/me');
    expect(nobody.status).toBe(401);
    expect(nobody.headers.get('content-type')).toContain('application/problem+json');
    expect((await api.call('GET', '/api/me', { auth: 'not-a-jwt' })).status).toBe(401);
    const expired = await api.call('GET', '/api/me', { auth: await api.token('admin', { ttlSeconds: -60 }) });
    expect(expired.status).toBe(401);
    expect(((await expired.json()) as { detail: string }).detail).toMatch(/exp/i);
  });
});

describe(`GET /api/overview on ${backend}`, () => {
  it('answers viewers with the counts of the platform, and refuses agents', async () => {
    const supervisor = await api.token('supervisor');
    const created = await api.call('POST', '/api/tasks', {
      auth: supervisor,
      body: { title: 'count me', capability: 'echo' },
    });
    expect(created.status).toBe(201);
    const res = await api.call('GET', '/api/overview', { auth: await api.token('viewer') });
    expect(res.status).toBe(200);
    const overview = Overview.parse(await res.json());
    expect(overview.tasks_by_status.TODO).toBeGreaterThanOrEqual(1);
    expect(overview.throughput.at(-1)!.created).toBeGreaterThanOrEqual(1);
    expect(overview.recent_events[0]).toMatchObject({ type: 'task.created' });
    expect(overview.agents.online + overview.agents.offline).toBeGreaterThanOrEqual(1);
    expect((await api.call('GET', '/api/overview?limit=1', { auth: await api.token('viewer') })).status).toBe(
      400,
    );
  });
});
