import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signUserToken } from '../apps/api/src/auth/jwt';
import {
  amqpUrl,
  createTestVhost,
  managementUrl,
  type TestVhost,
} from '../packages/queue/src/rabbitmq/test-support';
import { backend, createTestDatabase, type TestDatabase } from './db';
import { type DevartProcess, repoRoot, spawnDevart } from './devart-process';

const exec = promisify(execFile);
const npm = (args: string[], cwd: string) =>
  exec('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, maxBuffer: 16 << 20 });

/** What a TypeScript developer outside the repository writes: it must check against the shipped declarations. */
const typedAgent = `import { type AgentOptions, createAgent, checkTaskMessage, NonRetryableError } from '@devart/sdk';
const options: AgentOptions = { apiUrl: 'http://127.0.0.1:8787', apiKey: 'dva_x', amqpUrl: 'amqp://127.0.0.1', prefix: 'p.', capabilities: ['x'] };
const agent = createAgent(options);
await agent.startConsuming(async (task) => {
  const verdict = checkTaskMessage({ ...task });
  if (!verdict.valid) throw new NonRetryableError(verdict.reason);
  return { result: { attempt: verdict.message.attempt, title: task.title }, cost: 0.5 };
});
`;

/** The agent of packages/sdk/README.md, as a user copies it: plain ESM, no build step. */
const agentMjs = `import { createAgent, NonRetryableError } from '@devart/sdk';

const agent = createAgent({
  apiUrl: process.env.DEVART_API_URL,
  apiKey: process.env.DEVART_AGENT_KEY,
  amqpUrl: process.env.DEVART_AMQP_URL,
  prefix: process.env.DEVART_AMQP_PREFIX,
  capabilities: ['packed'],
  concurrency: 2,
  handleSignals: true,
});
await agent.startConsuming(async (task) => {
  if (!task.payload.words) throw new NonRetryableError('payload.words is missing');
  return { result: { count: task.payload.words.length, by: 'packed sdk' }, cost: 0.25 };
});
console.log('consuming');
`;

/** The temp folder and the app folder the packed tarball is installed in: built once for the file. */
interface Packed {
  work: string;
  app: string;
  packedFiles: string[];
}
let packing: Promise<Packed> | undefined;
function packSdk(): Promise<Packed> {
  packing ??= (async () => {
    const work = mkdtempSync(join(tmpdir(), 'devart-sdk-pack-'));
    // Built into a folder of its own, so a build in the working tree is left alone.
    const out = join(work, 'build');
    await exec('npm', ['run', 'build', '--silent', '-w', '@devart/sdk', '--', out], { cwd: repoRoot });
    const { stdout } = await npm(['pack', out, '--json', '--pack-destination', work], repoRoot);
    const [packed] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
    const app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({ name: 'my-agent', private: true, type: 'module' }),
    );
    await npm(['install', join(work, packed!.filename)], app);
    return { work, app, packedFiles: packed!.files.map((f) => f.path).sort() };
  })();
  return packing;
}

/** What the RabbitMQ part started; the one afterAll stops it. */
const running: {
  agents: ChildProcess[];
  agentIds: string[];
  devart?: DevartProcess;
  vhost?: TestVhost;
  database?: TestDatabase;
  revoke?: (agentId: string) => Promise<unknown>;
} = { agents: [], agentIds: [] };

afterAll(async () => {
  for (const child of running.agents) if (child.exitCode === null) child.kill('SIGKILL');
  // Broker users live outside the vhost: revoking the agents deletes them.
  for (const id of running.agentIds) await running.revoke?.(id).catch(() => {});
  const devart = running.devart;
  if (devart && devart.child.exitCode === null) {
    const exited = new Promise((resolve) => devart.child.once('exit', resolve));
    devart.child.kill('SIGTERM');
    await exited;
  }
  await running.vhost?.remove();
  await running.database?.drop();
  if (packing) rmSync((await packing).work, { recursive: true, force: true });
}, 60_000);

describe('the packed @devart/sdk, installed outside the repository', () => {
  let app: string;
  let packedFiles: string[];

  beforeAll(async () => {
    ({ app, packedFiles } = await packSdk());
  }, 180_000);

  it('ships JavaScript, declarations, its README and package.json, and nothing of the TypeScript sources', () => {
    expect(packedFiles).toEqual(
      expect.arrayContaining(['README.md', 'package.json', 'lib/index.js', 'lib/index.d.ts']),
    );
    expect(packedFiles.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    // The workspace packages it needs are compiled in; only npm packages are left to install.
    const installed = readdirSync(join(app, 'node_modules')).filter((name) => !name.startsWith('.'));
    expect(installed.sort()).toEqual(['@devart', 'amqplib', 'zod']);
  });

  it('imports from plain node, and its declarations type-check a TypeScript agent (strict, nodenext, no skipLibCheck)', {
    timeout: 90_000,
  }, async () => {
    const { stdout } = await exec(
      process.execPath,
      ['--input-type=module', '-e', "console.log(Object.keys(await import('@devart/sdk')).sort().join(','))"],
      { cwd: app },
    );
    expect(stdout.trim().split(',')).toEqual(
      expect.arrayContaining(['createAgent', 'NonRetryableError', 'AccessRefusedError', 'checkTaskMessage']),
    );
    writeFileSync(join(app, 'typed-agent.mts'), typedAgent);
    const tsc = join(repoRoot, 'node_modules/typescript/bin/tsc');
    const flags = [
      '--noEmit',
      '--strict',
      '--module',
      'nodenext',
      '--target',
      'es2023',
      '--skipLibCheck',
      'false',
    ];
    // @types/node from the repository: the app folder installs nothing but the SDK.
    const types = ['--types', 'node', '--typeRoots', join(repoRoot, 'node_modules/@types')];
    await expect(
      exec(process.execPath, [tsc, ...flags, ...types, 'typed-agent.mts'], { cwd: app }).catch(
        (error: { stdout: string }) => Promise.reject(new Error(error.stdout)),
      ),
    ).resolves.toBeDefined();
  });
});

// An agent outside devart's process needs a broker it can reach: RabbitMQ runs only.
describe.runIf(!!amqpUrl)(
  `an agent.mjs on the packed SDK, against devart start on ${backend} + RabbitMQ with AMQP_PREFIX`,
  () => {
    const prefix = `pack${randomBytes(3).toString('hex')}.`;
    const secret = randomBytes(24).toString('hex');
    let app: string;
    let api: string;
    let admin: string;

    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${api}${path}`, {
        method,
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    };

    beforeAll(async () => {
      const packed = await packSdk();
      app = packed.app;
      running.vhost = await createTestVhost(amqpUrl!);
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        AMQP_URL: running.vhost.url,
        AMQP_PREFIX: prefix,
        // Agents' broker users are created by the administrator, not by the vhost's own user.
        RABBITMQ_MANAGEMENT_URL: managementUrl(amqpUrl!),
        JWT_SECRET: secret,
        DEVART_DATA_DIR: join(packed.work, 'data'),
        LOG_LEVEL: 'warn',
      };
      if (backend === 'postgres') {
        running.database = await createTestDatabase({ empty: true });
        env.DATABASE_URL = running.database.url;
      } else {
        delete env.DATABASE_URL;
      }
      running.devart = spawnDevart(['start', '--port', '0', '--agents', '0'], env);
      api = await running.devart.url;
      admin = await signUserToken(secret, { role: 'admin', ttlSeconds: 600 });
      running.revoke = (id) => call('DELETE', `/api/agents/${id}`);
    }, 180_000);

    /** Runs `node agent.mjs` in the app folder as its user would, with only `env` (and PATH). */
    function runAgent(env: Record<string, string>) {
      const child = spawn(process.execPath, ['agent.mjs'], {
        cwd: app,
        env: { PATH: process.env.PATH, ...env },
      });
      running.agents.push(child);
      let output = '';
      const collect = (chunk: Buffer) => {
        output += chunk.toString();
      };
      child.stdout.on('data', collect);
      child.stderr.on('data', collect);
      const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      return { child, output: () => output, exit };
    }

    async function until(what: string, probe: () => Promise<boolean> | boolean, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!(await probe())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }

    it('registers (the answer names the prefix and the queues), consumes with that prefix, and completes a task: DONE with its result', async () => {
      const registered = await call('POST', '/api/agents', {
        name: 'packed agent',
        capabilities: ['packed'],
      });
      expect(registered.status).toBe(201);
      running.agentIds.push(registered.body.id);
      const { broker, api_key: key } = registered.body;
      expect(broker.amqp_prefix).toBe(prefix);
      expect(broker.queues).toEqual([`${prefix}tasks.todo`, `${prefix}tasks.todo.packed`]);

      writeFileSync(join(app, 'agent.mjs'), agentMjs);
      const agent = runAgent({
        DEVART_API_URL: api,
        DEVART_AGENT_KEY: key,
        DEVART_AMQP_URL: broker.url,
        DEVART_AMQP_PREFIX: broker.amqp_prefix,
      });
      await until(
        'the agent to consume',
        () => agent.output().includes('consuming') || agent.child.exitCode !== null,
      );
      expect(agent.output()).toContain('consuming');

      const created = await call('POST', '/api/tasks', {
        title: 'count words',
        capability: 'packed',
        payload: { words: ['a', 'b', 'c'] },
      });
      expect(created.status).toBe(201);
      let task: { status: string; result: unknown } | undefined;
      await until('the task to end DONE', async () => {
        task = (await call('GET', `/api/tasks/${created.body.id}`)).body;
        return task?.status === 'DONE';
      });
      expect(task?.result).toEqual({ count: 3, by: 'packed sdk' });

      agent.child.kill('SIGTERM');
      expect(await agent.exit).toBe(0);
    });

    it('without the prefix, the agent stops with an error saying no devart topology exists under that name, and which prefix it used', async () => {
      const registered = await call('POST', '/api/agents', {
        name: 'unprefixed agent',
        capabilities: ['packed'],
      });
      running.agentIds.push(registered.body.id);
      writeFileSync(join(app, 'agent.mjs'), agentMjs);
      const agent = runAgent({
        DEVART_API_URL: api,
        DEVART_AGENT_KEY: registered.body.api_key,
        DEVART_AMQP_URL: registered.body.broker.url,
      });
      expect(await agent.exit).not.toBe(0);
      expect(agent.output()).toContain('exchange "tasks" does not exist (no prefix)');
      expect(agent.output()).toContain('broker.amqp_prefix');
    });
  },
);
