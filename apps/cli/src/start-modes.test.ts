import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { backend, createTestDatabase, type TestDatabase } from '../../../test/db';
import { type DevartProcess, freePort, repoRoot, spawnDevart } from '../../../test/devart-process';

const exec = promisify(execFile);
const amqpUrl = process.env.AMQP_URL;
const broker = amqpUrl ? 'RabbitMQ' : 'the embedded broker';

let server: DevartProcess | undefined;
let database: TestDatabase | undefined;
let dataDir: string | undefined;
afterEach(async () => {
  if (server && server.child.exitCode === null) {
    const exited = new Promise((resolve) => server!.child.once('exit', resolve));
    server.child.kill('SIGTERM');
    await exited;
  }
  server = undefined;
  await database?.drop();
  database = undefined;
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  dataDir = undefined;
});

/** The environment of a devart on a database of its own. */
async function freshEnv(): Promise<NodeJS.ProcessEnv> {
  dataDir = mkdtempSync(join(tmpdir(), 'devart-modes-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DEVART_DATA_DIR: dataDir,
    JWT_SECRET: 'start-modes-test-secret-0123456789abcdef',
    LOG_LEVEL: 'warn',
    DEVART_PRINT_LOGIN_LINK: '0',
  };
  if (backend === 'postgres') {
    database = await createTestDatabase({ empty: true });
    env.DATABASE_URL = database.url;
  } else {
    delete env.DATABASE_URL;
  }
  return env;
}

function exitOf(process: DevartProcess): Promise<number | null> {
  if (process.child.exitCode !== null) return Promise.resolve(process.child.exitCode);
  return new Promise((resolve) => process.child.once('exit', (code) => resolve(code)));
}

async function workflowNames(url: string, env: NodeJS.ProcessEnv): Promise<string[]> {
  const { stdout } = await exec(
    process.execPath,
    [join(repoRoot, 'bin/devart.mjs'), 'token', '--role', 'admin'],
    {
      env,
      cwd: repoRoot,
    },
  );
  const res = await fetch(`${url}/api/workflows`, { headers: { authorization: `Bearer ${stdout.trim()}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: { name: string }[] }).items.map((w) => w.name);
}

describe(`devart start on ${backend} with ${broker}`, () => {
  it('with AMQP_URL and no management API, stops at once naming RABBITMQ_MANAGEMENT_URL and the plugin', async () => {
    const env = await freshEnv();
    const closed = await freePort();
    env.AMQP_URL = amqpUrl ?? 'amqp://guest:guest@127.0.0.1:5672';
    env.RABBITMQ_MANAGEMENT_URL = `http://admin:pa55word@127.0.0.1:${closed}`;
    server = spawnDevart(['start', '--port', '0'], env);
    expect(await exitOf(server)).toBe(1);
    expect(server.stderr).toContain(`The RabbitMQ management API at http://admin:***@127.0.0.1:${closed}`);
    expect(server.stderr).toContain('(RABBITMQ_MANAGEMENT_URL) did not answer (ECONNREFUSED)');
    expect(server.stderr).toContain('rabbitmq_management plugin');
    expect(server.stderr).not.toContain('pa55word');
    expect(server.stdout).not.toContain('running at');
  }, 60_000);

  it('defines the demo workflow without demo agents, and not with --no-demo', async () => {
    const env = await freshEnv();
    server = spawnDevart(['start', '--port', '0', '--agents', '0', '--no-demo'], env);
    expect(await workflowNames(await server.url, env)).toEqual([]);
    const first = server;
    server.child.kill('SIGTERM');
    expect(await exitOf(first)).toBe(0);

    // The same database, started again without the flag and without agents (as with AMQP_URL).
    server = spawnDevart(['start', '--port', '0', '--agents', '0'], env);
    expect(await workflowNames(await server.url, env)).toEqual(['ci-pipeline']);
    server.child.kill('SIGTERM');
    expect(await exitOf(server)).toBe(0);

    // Once: a restart leaves it as it is.
    server = spawnDevart(['start', '--port', '0'], env);
    expect(await workflowNames(await server.url, env)).toEqual(['ci-pipeline']);
  }, 120_000);
});
