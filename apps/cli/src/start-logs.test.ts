import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backend, createTestDatabase, type TestDatabase } from '../../../test/db';
import { type DevartProcess, repoRoot, spawnDevart } from '../../../test/devart-process';

const exec = promisify(execFile);

describe(`devart start's log at info on ${backend}`, () => {
  let server: DevartProcess;
  let dataDir: string;
  let database: TestDatabase | undefined;
  let env: NodeJS.ProcessEnv;
  let url: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'devart-logs-'));
    env = { ...process.env, DEVART_DATA_DIR: dataDir, LOG_LEVEL: 'info', LOG_FORMAT: 'json', JWT_SECRET: '' };
    delete env.AMQP_URL;
    if (backend === 'postgres') {
      database = await createTestDatabase({ empty: true });
      env.DATABASE_URL = database.url;
    } else {
      delete env.DATABASE_URL;
    }
    server = spawnDevart(['start', '--port', '0'], env);
    url = await server.url;
  }, 90_000);

  afterAll(async () => {
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
    await database?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const records = () =>
    server.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);

  it("tells a task's life in one line per transition, with its id and duration, and no access lines", async () => {
    const token = (
      await exec(process.execPath, [join(repoRoot, 'bin/devart.mjs'), 'token', '--role', 'supervisor'], {
        env,
        cwd: repoRoot,
      })
    ).stdout.trim();
    const res = await fetch(`${url}/api/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'logged', capability: 'echo', payload: { n: 1 } }),
    });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const about = () => records().filter((r) => r.task_id === id && r.component === 'transitions');
    for (let i = 0; i < 400 && !about().some((r) => r.event === 'task.done'); i++)
      await new Promise((r) => setTimeout(r, 25));
    const lines = about();
    expect(lines.map((r) => r.event)).toEqual(['task.created', 'task.started', 'task.done']);
    for (const line of lines) expect(line).toMatchObject({ level: 30, title: 'logged', capability: 'echo' });
    expect(lines[0]!.msg).toBe('task created: "logged" (echo)');
    expect(lines[2]).toMatchObject({ status: 'DONE', attempt: 1, duration_ms: expect.any(Number) });
    expect(lines[2]!.msg).toMatch(/^task done: "logged" \(echo\) attempt 1 in \d+ms$/);
    expect(records().filter((r) => r.msg === 'request')).toEqual([]);
  });
});

describe(`devart start with LOG_FORMAT=pretty LOG_LEVEL=debug on ${backend}`, () => {
  it("prints one readable line per record: access lines, transitions and the agent's own line per task", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'devart-logs-pretty-'));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DEVART_DATA_DIR: dataDir,
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'pretty',
      JWT_SECRET: '',
    };
    delete env.AMQP_URL;
    const database = backend === 'postgres' ? await createTestDatabase({ empty: true }) : undefined;
    if (database) env.DATABASE_URL = database.url;
    else delete env.DATABASE_URL;
    const server = spawnDevart(['start', '--port', '0', '--agents', '1'], env);
    try {
      const url = await server.url;
      const token = (
        await exec(process.execPath, [join(repoRoot, 'bin/devart.mjs'), 'token', '--role', 'supervisor'], {
          env,
          cwd: repoRoot,
        })
      ).stdout.trim();
      const res = await fetch(`${url}/api/tasks`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ title: 'pretty', capability: 'echo', payload: {} }),
      });
      const { id } = (await res.json()) as { id: string };
      const agentLine = new RegExp(
        `INFO {2}task done: "pretty" \\(echo\\) attempt 1 in \\d+ms {2}task_id=${id} .*outcome=done`,
      );
      for (let i = 0; i < 400 && !agentLine.test(server.stdout); i++)
        await new Promise((r) => setTimeout(r, 25));
      const lines = server.stdout.split('\n');
      expect(lines).toContainEqual(expect.stringMatching(agentLine));
      expect(lines).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} INFO {2}task created: "pretty" \\(echo\\) {2}event=task\\.created event_id=\\d+ task_id=${id}`,
          ),
        ),
      );
      expect(lines).toContainEqual(
        expect.stringMatching(
          / DEBUG request {2}request_id=\S+ method=POST path=\/api\/tasks status=201 ms=\d+/,
        ),
      );
      expect(server.stdout).not.toMatch(/^\{/m);
    } finally {
      server.child.kill('SIGKILL');
      await database?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});
