import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backend, createTestDatabase, type TestDatabase } from '../../../test/db';
import { type DevartProcess, spawnDevart } from '../../../test/devart-process';
import { loginLinkPolicy } from './commands/start';

const root = join(import.meta.dirname, '../../..');
const bin = join(root, 'bin/devart.mjs');
const exec = promisify(execFile);

/** Anything shaped like a JWT (three base64url parts, the first a JSON object) or an agent key. */
const secretLike = /eyJ[\w-]+\.[\w-]+\.[\w-]+|dva_[\w-]+/;

describe('loginLinkPolicy', () => {
  it('prints the link only for the embedded database on a terminal, or when asked on the embedded one', () => {
    expect(loginLinkPolicy({ embedded: true, interactive: true, optIn: undefined })).toBe('print');
    expect(loginLinkPolicy({ embedded: true, interactive: false, optIn: '1' })).toBe('print');
    expect(loginLinkPolicy({ embedded: true, interactive: false, optIn: undefined })).toEqual({
      reason: expect.stringMatching(/only on an interactive terminal/),
    });
    expect(loginLinkPolicy({ embedded: true, interactive: true, optIn: '0' })).not.toBe('print');
    expect(loginLinkPolicy({ embedded: false, interactive: true, optIn: '1' })).toEqual({
      reason: expect.stringMatching(/DATABASE_URL/),
    });
  });
});

describe(`devart start in production mode on ${backend}: nothing secret in its output`, () => {
  let dataDir: string;
  let database: TestDatabase | undefined;
  let env: NodeJS.ProcessEnv;
  let devart: DevartProcess;
  let url: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'devart-secrets-'));
    // As deploy/k8s runs it: JWT_SECRET set, stdout a pipe to the log collector, info logs or more.
    env = {
      ...process.env,
      DEVART_DATA_DIR: dataDir,
      LOG_LEVEL: 'debug',
      JWT_SECRET: randomBytes(48).toString('base64url'),
    };
    delete env.DEVART_PRINT_LOGIN_LINK;
    // The embedded broker keeps the test self-contained; registration over RabbitMQ has tests of its own.
    delete env.AMQP_URL;
    if (backend === 'postgres') {
      database = await createTestDatabase({ empty: true });
      env.DATABASE_URL = database.url;
    } else {
      delete env.DATABASE_URL;
    }
    devart = spawnDevart(['start', '--port', '0', '--agents', '0'], env);
    url = await devart.url;
    // The banner's last line; the URL comes before the rest of it.
    for (let i = 0; i < 200 && !devart.stdout.includes('Press Ctrl-C'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }, 90_000);

  afterAll(async () => {
    if (devart.child.exitCode === null) devart.child.kill('SIGKILL');
    await database?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('says how to get a token instead of printing one', () => {
    expect(devart.stdout).not.toMatch(/Admin login/);
    expect(devart.stdout).toMatch(
      /Sign in:\s+with a token from: npx devart token --role admin \(run with the same JWT_SECRET\)/,
    );
  });

  it('logs no JWT or agent key while tokens and keys are used, refused and revoked', async () => {
    const { stdout } = await exec(process.execPath, [bin, 'token', '--role', 'admin'], { env, cwd: root });
    const admin = { authorization: `Bearer ${stdout.trim()}`, 'content-type': 'application/json' };
    const post = (path: string, headers: Record<string, string>, body: unknown = {}) =>
      fetch(`${url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });

    const registered = await post('/api/agents', admin, { name: 'secrets', capabilities: ['lint'] });
    expect(registered.status).toBe(201);
    const { id: agentId, api_key: apiKey } = (await registered.json()) as { id: string; api_key: string };
    const agent = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' };
    const created = await post('/api/tasks', admin, { title: 'secrets', capability: 'lint' });
    expect(created.status).toBe(201);
    const { id: taskId } = (await created.json()) as { id: string };

    expect((await post(`/api/tasks/${taskId}/start`, agent)).status).toBe(200);
    expect((await post(`/api/tasks/${taskId}/heartbeat`, agent)).status).toBe(200);
    expect((await post(`/api/tasks/${taskId}/complete`, agent, { result: { ok: true } })).status).toBe(200);
    // Refused credentials, and a token in the query string, where a careless log would copy it.
    const forged = `${stdout.trim().slice(0, -4)}AAAA`;
    expect((await fetch(`${url}/api/tasks`, { headers: { authorization: `Bearer ${forged}` } })).status).toBe(
      401,
    );
    expect((await fetch(`${url}/api/tasks?access_token=${forged}`)).status).toBe(401);
    expect(
      (await fetch(`${url}/api/agents/me`, { headers: { authorization: 'Bearer dva_wrong' } })).status,
    ).toBe(401);
    expect((await fetch(`${url}/api/agents/${agentId}`, { method: 'DELETE', headers: admin })).status).toBe(
      204,
    );
    expect((await post(`/api/tasks/${taskId}/heartbeat`, agent)).status).toBe(401);

    const exited = new Promise((resolve) => devart.child.once('exit', resolve));
    devart.child.kill('SIGTERM');
    await exited;
    const output = `${devart.stdout}\n${devart.stderr}`;
    // The request log ran (so this checks its lines too), and none of them holds a credential.
    expect(output).toMatch(/"path":"\/api\/tasks\/[^"]+\/heartbeat"/);
    expect(output).not.toMatch(secretLike);
    expect(output).not.toContain(env.JWT_SECRET);
  }, 60_000);
});
