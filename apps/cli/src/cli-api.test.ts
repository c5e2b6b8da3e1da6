import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backend, createTestDatabase, type TestDatabase } from '../../../test/db';
import { type DevartProcess, repoRoot, spawnDevart } from '../../../test/devart-process';

const bin = join(repoRoot, 'bin/devart.mjs');

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** `devart <args>` as its own process, with stdout a pipe (so the plain, line-per-change display). */
const devart = (args: string[], env: NodeJS.ProcessEnv): Promise<Ran> =>
  new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { env, cwd: repoRoot, timeout: 60_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });

describe(`the terminal commands (tasks, runs, trigger, agents) against a real devart start on ${backend}`, () => {
  let server: DevartProcess;
  let dataDir: string;
  let database: TestDatabase | undefined;
  let serverEnv: NodeJS.ProcessEnv;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'devart-cli-api-'));
    serverEnv = { ...process.env, DEVART_DATA_DIR: dataDir, LOG_LEVEL: 'warn', JWT_SECRET: '' };
    // The embedded broker, so the demo agents run and the demo workflow is defined.
    delete serverEnv.AMQP_URL;
    if (backend === 'postgres') {
      database = await createTestDatabase({ empty: true });
      serverEnv.DATABASE_URL = database.url;
    } else {
      delete serverEnv.DATABASE_URL;
    }
    server = spawnDevart(['start', '--port', '0'], serverEnv);
    const url = await server.url;
    const supervisor = await devart(['token', '--role', 'supervisor'], serverEnv);
    env = { ...serverEnv, DEVART_API_URL: url, DEVART_TOKEN: supervisor.stdout.trim() };
  }, 90_000);

  afterAll(async () => {
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
    await database?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('trigger ci-pipeline --watch follows the run step by step to COMPLETED and exits 0', async () => {
    const ran = await devart(['trigger', 'ci-pipeline', '--var', 'branch=dev', '--watch'], env);
    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(0);
    const lines = ran.stdout.trim().split('\n');
    const runId = lines[0]!;
    expect(runId).toMatch(/^[0-9a-f-]{36}$/);
    for (const step of ['checkout', 'lint', 'test', 'report'])
      expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^run ${runId}  step ${step}  DONE`)));
    expect(lines.at(-1)).toMatch(new RegExp(`^run ${runId}  ci-pipeline  COMPLETED  4/4 steps`));

    const runs = await devart(['runs', 'ci-pipeline'], env);
    expect(runs.code).toBe(0);
    expect(runs.stdout).toMatch(new RegExp(`${runId}\\s+COMPLETED`));
  });

  it('trigger without --watch prints only the run id', async () => {
    const ran = await devart(['trigger', 'ci-pipeline'], env);
    expect(ran.code).toBe(0);
    expect(ran.stdout).toMatch(/^[0-9a-f-]{36}\n$/);
  });

  it('tasks lists tasks, filtered by --status and --capability', async () => {
    const all = await devart(['tasks'], env);
    expect(all.code).toBe(0);
    expect(all.stdout.split('\n')[0]).toMatch(/^ID\s+STATUS\s+CAPABILITY\s+RETRIES\s+CREATED\s+TITLE$/);
    expect(all.stdout).toContain('Test (in a sandbox)');
    const shell = await devart(['tasks', '--status', 'DONE', '--capability', 'shell'], env);
    expect(shell.code).toBe(0);
    const rows = shell.stdout.trim().split('\n').slice(1);
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(row).toMatch(/^\S+\s+DONE\s+shell\s/);
  });

  it('tasks --watch prints a line per change of a task as it happens', async () => {
    const child = execFile(process.execPath, [bin, 'tasks', '--watch', '--capability', 'echo'], {
      env,
      cwd: repoRoot,
    });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    try {
      for (let i = 0; i < 400 && !out.includes('watching task changes'); i++)
        await new Promise((r) => setTimeout(r, 25));
      // The stream opens just after the line; give it a moment before the change it should see.
      await new Promise((r) => setTimeout(r, 500));
      const created = await fetch(`${env.DEVART_API_URL}/api/tasks`, {
        method: 'POST',
        headers: { authorization: `Bearer ${env.DEVART_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ title: 'watched', capability: 'echo', payload: { hello: 1 } }),
      });
      const { id } = (await created.json()) as { id: string };
      for (let i = 0; i < 400 && !new RegExp(`task\\.done\\s+${id}`).test(out); i++)
        await new Promise((r) => setTimeout(r, 25));
      expect(out).toMatch(new RegExp(`task\\.created\\s+${id}  TODO  watched \\(echo\\)`));
      expect(out).toMatch(new RegExp(`task\\.started\\s+${id}  IN_PROGRESS`));
      expect(out).toMatch(new RegExp(`task\\.done\\s+${id}  DONE  watched \\(echo\\)  attempt 1  \\d+ms`));
    } finally {
      child.kill('SIGTERM');
    }
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
  });

  it('runs --watch follows a new run of the workflow step by step, and Ctrl-C ends it with 0', async () => {
    const child = execFile(process.execPath, [bin, 'runs', 'ci-pipeline', '--watch'], { env, cwd: repoRoot });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    try {
      for (let i = 0; i < 400 && !out.includes('watching runs of ci-pipeline'); i++)
        await new Promise((r) => setTimeout(r, 25));
      await new Promise((r) => setTimeout(r, 500));
      const runId = (await devart(['trigger', 'ci-pipeline'], env)).stdout.trim();
      const finished = new RegExp(`run ${runId}  ci-pipeline  COMPLETED  4/4 steps`);
      for (let i = 0; i < 600 && !finished.test(out); i++) await new Promise((r) => setTimeout(r, 25));
      expect(out).toMatch(finished);
      expect(out).toMatch(new RegExp(`run ${runId}  step test  DONE`));
    } finally {
      child.kill('SIGINT');
    }
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
  });

  it('agents lists the demo agents', async () => {
    const ran = await devart(['agents'], env);
    expect(ran.code).toBe(0);
    expect(ran.stdout).toMatch(/^ID\s+NAME\s+STATUS\s+CAPABILITIES\s+LAST SEEN\n/);
    expect(ran.stdout).toMatch(/demo-agent-1\s+(IDLE|BUSY|OFFLINE)\s+echo,shell/);
    expect(ran.stdout).toMatch(/demo-agent-2/);
  });

  it('says how to get a token when there is none, and the problem when the API refuses', async () => {
    const none = await devart(['tasks'], { ...env, DEVART_TOKEN: '' });
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(
      /^devart tasks: no token: set DEVART_TOKEN or pass --token.*devart token --role viewer/,
    );

    const bad = await devart(['agents', '--token', 'not-a-jwt'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^devart agents: 401 Authentication required/);

    const viewer = (await devart(['token', '--role', 'viewer'], serverEnv)).stdout.trim();
    const forbidden = await devart(['trigger', 'ci-pipeline', '--token', viewer], env);
    expect(forbidden.code).toBe(1);
    expect(forbidden.stderr).toMatch(/^devart trigger: 403 Forbidden: .*workflows\.trigger/);

    const missing = await devart(['runs', 'no-such-workflow'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(
      /^devart runs: 404 Not Found: no workflow is named "no-such-workflow" \(there are: .*ci-pipeline/,
    );

    const unknownRun = await devart(['runs', '00000000-0000-4000-8000-000000000000'], env);
    expect(unknownRun.code).toBe(1);
    expect(unknownRun.stderr).toMatch(/^devart runs: 404 /);

    const down = await devart(['agents', '--api', 'http://127.0.0.1:9'], env);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/cannot reach the API at http:\/\/127\.0\.0\.1:9 .*devart start/);
  });

  it('names a wrong flag or argument and exits 2; --help exits 0', async () => {
    for (const [args, message] of [
      [['tasks', '--stat', 'DONE'], /devart tasks: unknown option '--stat'/],
      [['tasks', '--status', 'done'], /--status must be one of PENDING, TODO/],
      [['runs'], /devart runs: name the workflow/],
      [['trigger', 'ci-pipeline', '--var', 'novalue'], /--var must be name=value \(got "novalue"\)/],
      [['agents', 'extra'], /devart agents: .*extra/],
    ] as const) {
      const ran = await devart([...args], env);
      expect(ran.code, args.join(' ')).toBe(2);
      expect(ran.stderr).toMatch(message);
    }
    for (const command of ['tasks', 'runs', 'trigger', 'agents']) {
      const help = await devart([command, '--help'], env);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`^Usage: devart ${command} `));
      expect(help.stdout).toContain('--token');
    }
  });
});
