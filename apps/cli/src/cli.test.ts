import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt, jwtVerify } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './main';

const secret = 'cli-test-secret-cli-test-secret-0123456789';
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function run(argv: string[], env: Record<string, string | undefined> = { JWT_SECRET: secret }) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, {
    env,
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    onSignal: () => {},
  });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

describe('devart token', () => {
  it('prints only a JWT with the role in app_metadata, signed with JWT_SECRET', async () => {
    const { code, stdout, stderr } = await run([
      'token',
      '--role',
      'supervisor',
      '--email',
      'a@b.c',
      '--ttl',
      '15m',
    ]);
    expect(code).toBe(0);
    expect(stderr).toBe('');
    expect(stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const { payload } = await jwtVerify(stdout, new TextEncoder().encode(secret), { algorithms: ['HS256'] });
    expect(payload.app_metadata).toEqual({ role: 'supervisor' });
    expect(payload.email).toBe('a@b.c');
    expect(payload.exp! - payload.iat!).toBe(15 * 60);
  });

  it('acts as the same user every time unless --sub says otherwise', async () => {
    const a = decodeJwt((await run(['token', '--role', 'admin'])).stdout);
    const b = decodeJwt((await run(['token', '--role', 'admin'])).stdout);
    const c = decodeJwt(
      (await run(['token', '--role', 'admin', '--sub', '0b7c3d7e-1d7a-4c55-9a43-0c1c1d1e1f10'])).stdout,
    );
    expect(a.sub).toBe(b.sub);
    expect(c.sub).toBe('0b7c3d7e-1d7a-4c55-9a43-0c1c1d1e1f10');
  });

  it('uses the secret devart start keeps in the data directory when JWT_SECRET is unset', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'devart-cli-'));
    dirs.push(dir);
    const missing = await run(['token', '--role', 'viewer'], { DEVART_DATA_DIR: dir });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/JWT_SECRET.*devart start/);
    const { readOrCreateSecret } = await import('@devart/api');
    const stored = readOrCreateSecret(dir);
    const { code, stdout } = await run(['token', '--role', 'viewer'], { DEVART_DATA_DIR: dir });
    expect(code).toBe(0);
    await expect(jwtVerify(stdout, new TextEncoder().encode(stored))).resolves.toBeTruthy();
  });

  it.each([
    [['token', '--rol', 'admin'], /unknown option '--rol'/],
    [['token'], /--role is required/],
    [['token', '--role', 'root'], /--role must be viewer, supervisor or admin/],
    [['token', '--role', 'admin', '--ttl', 'forever'], /--ttl must be a duration/],
    [['token', '--role', 'admin', '--ttl', '90d'], /--ttl must be between/],
    [['token', '--role', 'admin', '--sub', 'bob'], /--sub must be a UUID/],
    [['token', '--role'], /--role/],
    [['start', '--port', 'http'], /--port must be a number/],
    [['start', '--verbose'], /unknown option '--verbose'/],
    [['migrate', '--force'], /unknown option '--force'/],
  ])('exits 2 naming the flag for %j', async (argv, message) => {
    const { code, stdout, stderr } = await run(argv);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(message);
  });

  it('exits 2 on an unknown command and with no command', async () => {
    expect((await run(['serve'])).code).toBe(2);
    expect((await run(['serve'])).stderr).toMatch(/unknown command "serve"/);
    expect((await run([])).code).toBe(2);
  });

  it('explains a bad environment variable by name', async () => {
    const { code, stderr } = await run(['token', '--role', 'admin'], { JWT_SECRET: 'short' });
    expect(code).toBe(1);
    expect(stderr).toMatch(/JWT_SECRET: must be at least 32 characters/);
  });
});

describe('--help', () => {
  it.each([[['--help']], [['start', '--help']], [['migrate', '-h']], [['token', '--help']]])(
    'prints usage for %j and exits 0',
    async (argv) => {
      const { code, stdout } = await run(argv);
      expect(code).toBe(0);
      expect(stdout).toMatch(/^Usage: devart/);
    },
  );
});
