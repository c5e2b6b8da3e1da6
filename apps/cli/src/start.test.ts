import { type ChildProcess, execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backend, createTestDatabase, type TestDatabase } from '../../../test/db';
import { type DevartProcess, spawnDevart } from '../../../test/devart-process';
import { bubblewrap } from '../../../test/sandbox';

const root = join(import.meta.dirname, '../../..');
const bin = join(root, 'bin/devart.mjs');
const exec = promisify(execFile);

describe(`devart start on ${backend}, as a user runs it`, () => {
  let child: ChildProcess;
  let url: string;
  let dataDir: string;
  let database: TestDatabase | undefined;
  let env: NodeJS.ProcessEnv;
  let devart: DevartProcess;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'devart-start-'));
    env = {
      ...process.env,
      DEVART_DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      JWT_SECRET: '',
      // stdout is a pipe: without the opt-in the embedded start prints no link either.
      DEVART_PRINT_LOGIN_LINK: '1',
    };
    // The embedded broker, so the demo agents run; dispatch over RabbitMQ has tests of its own.
    delete env.AMQP_URL;
    if (backend === 'postgres') {
      database = await createTestDatabase({ empty: true });
      env.DATABASE_URL = database.url;
    } else {
      delete env.DATABASE_URL;
    }
    devart = spawnDevart(['start', '--port', '0'], env);
    child = devart.child;
    url = await devart.url;
    // The banner's last line; the URL comes before the rest of it.
    for (let i = 0; i < 200 && !devart.stdout.includes('Press Ctrl-C'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }, 90_000);

  afterAll(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await database?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const token = async (role: string) =>
    (await exec(process.execPath, [bin, 'token', '--role', role], { env, cwd: root })).stdout.trim();

  it('answers /health and /ready', async () => {
    expect(await (await fetch(`${url}/health`)).json()).toEqual({ status: 'ok' });
    expect(await (await fetch(`${url}/ready`)).json()).toEqual({ status: 'ready', database: backend });
  });

  it.runIf(backend === 'postgres')('prints no login link with DATABASE_URL, even when asked to', () => {
    expect(devart.stdout).not.toMatch(/Admin login|#token=/);
    expect(devart.stdout).toMatch(/Sign in:\s+with a token from: npx devart token --role admin/);
  });

  it.runIf(backend === 'pglite')('prints an admin login link whose token works', async () => {
    const link = /Admin login:\s+(\S+)/.exec(devart.stdout)?.[1];
    expect(link).toBeDefined();
    const loginToken = new URL(link!).hash.replace('#token=', '');
    const res = await fetch(`${url}/api/agents`, { headers: { authorization: `Bearer ${loginToken}` } });
    expect(res.status).toBe(200);
  });

  it('accepts tokens minted by `devart token` while it runs: admin registers, supervisor creates, viewer 403, nobody 401', async () => {
    const admin = await token('admin');
    const json = { 'content-type': 'application/json' };
    const agent = await fetch(`${url}/api/agents`, {
      method: 'POST',
      headers: { ...json, authorization: `Bearer ${admin}` },
      body: JSON.stringify({ name: 'e2e', capabilities: ['echo'] }),
    });
    expect(agent.status).toBe(201);
    expect((await agent.json()).api_key).toMatch(/^dva_/);

    const task = await fetch(`${url}/api/tasks`, {
      method: 'POST',
      headers: { ...json, authorization: `Bearer ${await token('supervisor')}` },
      body: JSON.stringify({ title: 'from the e2e test' }),
    });
    expect(task.status).toBe(201);

    const viewer = await fetch(`${url}/api/tasks`, {
      method: 'POST',
      headers: { ...json, authorization: `Bearer ${await token('viewer')}` },
      body: JSON.stringify({ title: 'nope' }),
    });
    expect(viewer.status).toBe(403);
    const nobody = await fetch(`${url}/api/tasks`, { method: 'POST', headers: json, body: '{"title":"x"}' });
    expect(nobody.status).toBe(401);
    expect(nobody.headers.get('content-type')).toBe('application/problem+json');
  });

  it('prints the demo agents and where their shell tasks run', () => {
    expect(devart.stdout).toMatch(/demo agents \(echo, shell\): 2/);
    if (bubblewrap.available) expect(devart.stdout).toMatch(/Sandboxes:\s+local \(bubblewrap, no network\)/);
    else
      expect(devart.stdout).toMatch(/Sandboxes:\s+none, so shell tasks fail: .*apt-get install bubblewrap/);
  });

  it.skipIf(!bubblewrap.available)(
    'defines the demo workflow, and a run of it is completed by the demo agents',
    async () => {
      const auth = { authorization: `Bearer ${await token('supervisor')}` };
      const list = (await (await fetch(`${url}/api/workflows`, { headers: auth })).json()) as {
        items: { id: string; name: string }[];
      };
      const demo = list.items.find((w) => w.name === 'ci-pipeline');
      expect(demo).toBeDefined();
      const triggered = await fetch(`${url}/api/workflows/${demo!.id}/trigger`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ variables: { branch: 'feature-x' } }),
      });
      expect(triggered.status).toBe(201);
      const { run_id } = (await triggered.json()) as { run_id: string };
      let run: { status: string; steps: { step_key: string; status: string }[] } | undefined;
      for (let i = 0; i < 100 && run?.status !== 'COMPLETED'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        run = await (await fetch(`${url}/api/workflow-runs/${run_id}`, { headers: auth })).json();
      }
      expect(run?.status).toBe('COMPLETED');
      expect(run?.steps.map((s) => s.step_key)).toEqual(['checkout', 'lint', 'test', 'report']);
      const tasks = (await (
        await fetch(`${url}/api/tasks?workflow_run_id=${run_id}&limit=10`, { headers: auth })
      ).json()) as { items: { step_key: string; result: Record<string, unknown> }[] };
      const result = (key: string) => tasks.items.find((t) => t.step_key === key)?.result;
      // The test step is a shell task: the demo agents ran it in a bubblewrap sandbox.
      expect(result('test')).toMatchObject({
        exit_code: 0,
        stdout: expect.stringMatching(/^testing d3adb33f/),
      });
      expect(result('report')?.summary).toBe('lint passed, test exited 0 on feature-x');
    },
  );

  it('serves the API docs without reaching the Internet', async () => {
    const page = await (await fetch(`${url}/api/docs`)).text();
    expect(page).toContain('/api/docs/assets/swagger-ui-bundle.js');
    const bundle = await fetch(`${url}/api/docs/assets/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
    const spec = await (await fetch(`${url}/api/openapi.json`)).json();
    expect(Object.keys(spec.paths)).toContain('/api/tasks/{taskId}/cancel');
  });

  it('stops cleanly on SIGTERM and releases the data directory', async () => {
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(join(dataDir, 'devart.pid'))).toBe(false);
    const { stdout: migrated } = await exec(process.execPath, [bin, 'migrate'], { env, cwd: root });
    expect(migrated).toMatch(/Nothing to apply/);
  });
});
