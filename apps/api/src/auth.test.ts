import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, TEST_JWT_SECRET, type TestApi } from '../../../test/api';
import { backend } from '../../../test/db';
import { countRows, expectProblem } from '../../../test/http';
import { signUserToken } from './auth/jwt';

let api: TestApi;

beforeAll(async () => {
  api = await createTestApi();
});

afterAll(async () => {
  await api?.drop();
});

const secret = new TextEncoder().encode(TEST_JWT_SECRET);
const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** An HS256 token with exactly these claims (and a future `exp` unless one is given). */
function signClaims(claims: Record<string, unknown>, key: Uint8Array = secret): Promise<string> {
  return new SignJWT({ exp: Math.floor(Date.now() / 1000) + 300, ...claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(key);
}

/** Expects the 401 every refused credential gets: problem+json, a Bearer challenge, and a reason. */
async function expectUnauthenticated(res: Response, reason: RegExp): Promise<void> {
  expect(res.headers.get('www-authenticate')).toBe('Bearer');
  const problem = await expectProblem(res, 401, 'unauthenticated');
  expect(problem.detail).toMatch(reason);
}

async function usersWithId(id: string): Promise<{ email: string | null; role: string | null }[]> {
  const { rows } = await api.db.query<{ email: string | null; role: string | null }>(
    "SELECT email, raw_app_meta_data ->> 'role' AS role FROM auth.users WHERE id = $1",
    [id],
  );
  return rows;
}

async function registerAgent(name: string): Promise<{ id: string; api_key: string }> {
  const res = await api.call('POST', '/api/agents', {
    auth: await api.token('admin'),
    body: { name, capabilities: ['shell'] },
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; api_key: string };
}

describe(`authentication on ${backend}`, () => {
  it('accepts a valid viewer token on a viewer route', async () => {
    const res = await api.call('GET', '/api/tasks', { auth: await api.token('viewer') });
    expect(res.status).toBe(200);
  });

  it('refuses an expired token with 401 and says it expired', async () => {
    const expired = await api.token('admin', { ttlSeconds: -60 });
    await expectUnauthenticated(await api.call('GET', '/api/tasks', { auth: expired }), /expired/);
  });

  it('refuses a token signed with another secret', async () => {
    const forged = await signUserToken('another-secret-another-secret-0123456789', {
      role: 'admin',
      ttlSeconds: 300,
    });
    await expectUnauthenticated(await api.call('GET', '/api/tasks', { auth: forged }), /invalid/);
  });

  it('refuses a token whose signature was altered', async () => {
    const token = await api.token('admin');
    const [header, payload, signature] = token.split('.');
    const flipped = `${signature!.startsWith('A') ? 'B' : 'A'}${signature!.slice(1)}`;
    const res = await api.call('GET', '/api/tasks', { auth: `${header}.${payload}.${flipped}` });
    await expectUnauthenticated(res, /invalid/);
  });

  it('refuses an unsigned alg:none token even with a valid-looking admin payload', async () => {
    const payload = {
      sub: randomUUID(),
      exp: Math.floor(Date.now() / 1000) + 300,
      role: 'authenticated',
      app_metadata: { role: 'admin' },
    };
    const unsigned = `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(payload)}.`;
    await expectUnauthenticated(await api.call('GET', '/api/tasks', { auth: unsigned }), /none/);
    const before = await countRows(api.db);
    const create = await api.call('POST', '/api/tasks', { auth: unsigned, body: { title: 'sneaky' } });
    await expectUnauthenticated(create, /none/);
    expect(await countRows(api.db)).toEqual(before);
  });

  it('refuses an HS256 token whose subject is not a UUID', async () => {
    const token = await signClaims({ sub: 'alice', app_metadata: { role: 'admin' } });
    await expectUnauthenticated(await api.call('GET', '/api/tasks', { auth: token }), /sub.*UUID/);
  });

  it('refuses a token without a subject or without an expiry', async () => {
    const noSub = await signClaims({ app_metadata: { role: 'admin' } });
    await expectUnauthenticated(await api.call('GET', '/api/tasks', { auth: noSub }), /invalid/);
    const noExp = await new SignJWT({ sub: randomUUID(), app_metadata: { role: 'admin' } })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(secret);
    await expectUnauthenticated(await api.call('GET', '/api/tasks', { auth: noExp }), /invalid/);
  });

  it('answers 403 to a valid token that carries no app_metadata.role, even on a viewer route', async () => {
    const token = await signClaims({ sub: randomUUID(), role: 'authenticated' });
    const problem = await expectProblem(
      await api.call('GET', '/api/tasks', { auth: token }),
      403,
      'forbidden',
    );
    expect(problem.detail).toMatch(/app_metadata\.role/);
  });

  it("answers 403 to a token whose role is 'root'", async () => {
    const token = await signClaims({ sub: randomUUID(), app_metadata: { role: 'root' } });
    await expectProblem(await api.call('GET', '/api/tasks', { auth: token }), 403, 'forbidden');
    const before = await countRows(api.db);
    const create = await api.call('POST', '/api/agents', { auth: token, body: { name: 'root agent' } });
    await expectProblem(create, 403, 'forbidden');
    expect(await countRows(api.db)).toEqual(before);
  });

  it('takes the role from app_metadata, never from the top-level role claim', async () => {
    const token = await signClaims({ sub: randomUUID(), role: 'admin', app_metadata: { role: 'viewer' } });
    await expectProblem(
      await api.call('POST', '/api/agents', { auth: token, body: { name: 'x' } }),
      403,
      'forbidden',
    );
  });

  it('refuses malformed Authorization headers with 401', async () => {
    const token = await api.token('admin');
    for (const header of [
      `Basic ${Buffer.from('admin:admin').toString('base64')}`,
      'Bearer',
      'Bearer ',
      `Token ${token}`,
      `Bearer ${token} extra`,
      'Bearer not-a-jwt',
    ]) {
      const res = await api.call('GET', '/api/tasks', { headers: { authorization: header } });
      expect(res.status, header).toBe(401);
      await expectUnauthenticated(res, /.+/);
    }
  });

  it('answers 401 before looking at the body of an unauthenticated request', async () => {
    const before = await countRows(api.db);
    const res = await api.call('POST', '/api/tasks', { body: { title: 5, unknown: true } });
    await expectUnauthenticated(res, /Authorization/);
    expect(await countRows(api.db)).toEqual(before);
  });

  it('lets an agent key do nothing but agent actions', async () => {
    const agent = await registerAgent('keyed agent');
    expect(agent.api_key).toMatch(/^dva_/);
    const before = await countRows(api.db);
    for (const [method, path, body] of [
      ['GET', '/api/tasks', undefined],
      ['POST', '/api/tasks', { title: 'from an agent' }],
      ['GET', '/api/agents', undefined],
      ['POST', '/api/agents', { name: 'agent-made agent' }],
      ['DELETE', `/api/agents/${agent.id}`, undefined],
    ] as const) {
      const res = await api.call(method, path, { auth: agent.api_key, body });
      const problem = await expectProblem(res, 403, 'forbidden');
      expect(problem.detail).toMatch(/agent role/);
    }
    expect(await countRows(api.db)).toEqual(before);
    const { rows } = await api.db.query<{ revoked_at: Date | null }>(
      'SELECT revoked_at FROM agents WHERE id = $1',
      [agent.id],
    );
    expect(rows[0]!.revoked_at).toBeNull();
  });

  it('refuses the key of a revoked agent with 401 at once', async () => {
    const agent = await registerAgent('soon revoked');
    expect((await api.call('GET', '/api/tasks', { auth: agent.api_key })).status).toBe(403);
    const revoke = await api.call('DELETE', `/api/agents/${agent.id}`, { auth: await api.token('admin') });
    expect(revoke.status).toBe(204);
    await expectUnauthenticated(await api.call('GET', '/api/tasks', { auth: agent.api_key }), /revoked/);
  });

  it('refuses an unknown dva_ key with 401', async () => {
    await registerAgent('a real one');
    const unknown = `dva_${Buffer.alloc(32, 7).toString('base64url')}`;
    await expectUnauthenticated(await api.call('GET', '/api/tasks', { auth: unknown }), /unknown/);
  });

  it('records a first-seen user in auth.users exactly once, with the email when the token has one', async () => {
    const sub = randomUUID();
    expect(await usersWithId(sub)).toEqual([]);
    const token = await signUserToken(TEST_JWT_SECRET, {
      role: 'viewer',
      sub,
      email: 'ada@example.com',
      ttlSeconds: 300,
    });
    // Concurrent first requests race to record the user; one row must come out of it.
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => api.call('GET', '/api/tasks', { auth: token })),
    );
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect((await api.call('GET', '/api/agents', { auth: token })).status).toBe(200);
    expect(await usersWithId(sub)).toEqual([{ email: 'ada@example.com', role: 'viewer' }]);

    const noEmail = randomUUID();
    await api.call('GET', '/api/tasks', { auth: await api.token('supervisor', { sub: noEmail }) });
    expect(await usersWithId(noEmail)).toEqual([{ email: null, role: 'supervisor' }]);
  });

  it('records no user for a token it refused', async () => {
    const sub = randomUUID();
    const expired = await signUserToken(TEST_JWT_SECRET, {
      role: 'viewer',
      sub,
      email: 'late@example.com',
      ttlSeconds: -60,
    });
    expect((await api.call('GET', '/api/tasks', { auth: expired })).status).toBe(401);
    const forged = await signUserToken('another-secret-another-secret-0123456789', {
      role: 'viewer',
      sub,
      ttlSeconds: 300,
    });
    expect((await api.call('GET', '/api/tasks', { auth: forged })).status).toBe(401);
    expect(await usersWithId(sub)).toEqual([]);
  });
});
