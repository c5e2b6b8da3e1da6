import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { noSandboxFetch } from '../../../test/no-sandbox-api';
import { createTestPlatform, type TestPlatform } from '../../../test/platform';
import { bubblewrap } from '../../../test/sandbox';
import { seedDemoWorkflow } from '../../api/src/services/demo-workflow';
import { referenceCallback } from './reference-agent';

let platform: TestPlatform | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await platform?.close();
  platform = undefined;
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

interface TaskRow {
  status: string;
  result: unknown;
  last_error: string | null;
  attempt: number;
}

/** Runs one `shell` task (no retries) through a reference agent; resolves once it is DONE or QUARANTINED. */
async function shellTask(p: TestPlatform, payload: Record<string, unknown>, fetch?: typeof globalThis.fetch) {
  const agent = await p.registerAgent(['shell'], 'reference');
  await p.startAgent(agent, referenceCallback(), { capabilities: ['shell'], ...(fetch ? { fetch } : {}) });
  const [taskId] = await p.createTasks(1, { capability: 'shell', payload, max_retries: 0 });
  const task = await p.waitFor('the shell task to end', async () => {
    const { rows } = await p.db.query<TaskRow>(
      'SELECT status, result, last_error, attempt FROM tasks WHERE id = $1',
      [taskId],
    );
    return rows[0]!.status === 'DONE' || rows[0]!.status === 'QUARANTINED' ? rows[0] : undefined;
  });
  const attempts = await p.call('GET', `/api/tasks/${taskId}/attempts`, { auth: await p.token('viewer') });
  const { items } = (await attempts.json()) as { items: { error: string | null; details: unknown }[] };
  const { rows: sandboxes } = await p.db.query<{ status: string; termination_reason: string | null }>(
    'SELECT status, termination_reason FROM sandboxes WHERE task_id = $1',
    [taskId],
  );
  return { task, attempt: items.at(-1)!, sandboxes };
}

describe.skipIf(!bubblewrap.available)('the reference agent’s shell capability', () => {
  it('runs the command in a sandbox and completes with its output', async () => {
    platform = await createTestPlatform();
    const { task, sandboxes } = await shellTask(platform, {
      command: ['sh', '-c', 'echo "hello from $(pwd)"; echo warning >&2'],
    });
    expect(task.status).toBe('DONE');
    expect(task.result).toEqual({
      exit_code: 0,
      stdout: 'hello from /workspace\n',
      stderr: 'warning\n',
      truncated: false,
      duration_ms: expect.any(Number),
    });
    expect(sandboxes).toEqual([{ status: 'TERMINATED', termination_reason: 'terminated' }]);
    expect(await platform.sandboxes.provider.list()).toEqual([]);
  });

  it('completes a command whose output holds a NUL, the NUL stored as the text \\u0000', async () => {
    platform = await createTestPlatform();
    const { task } = await shellTask(platform, { command: ['printf', 'a\\000b'] });
    expect(task.status).toBe('DONE');
    expect(task.result).toMatchObject({ exit_code: 0, stdout: 'a\\u0000b' });
  });

  it('fails the task on a nonzero exit, with the output as details', async () => {
    platform = await createTestPlatform();
    const { task, attempt, sandboxes } = await shellTask(platform, {
      command: ['sh', '-c', 'echo compiling; echo "error: missing ;" >&2; exit 7'],
    });
    expect(task).toMatchObject({ status: 'QUARANTINED', last_error: 'exited with 7' });
    expect(attempt.details).toEqual({
      exit_code: 7,
      stdout: 'compiling\n',
      stderr: 'error: missing ;\n',
      truncated: false,
      duration_ms: expect.any(Number),
    });
    expect(sandboxes).toEqual([{ status: 'TERMINATED', termination_reason: 'terminated' }]);
  });

  it('caps each stream at 64 KiB and says so', async () => {
    platform = await createTestPlatform();
    const { task } = await shellTask(platform, {
      command: ['sh', '-c', "head -c 100000 /dev/zero | tr '\\0' a; echo short >&2"],
    });
    expect(task.status).toBe('DONE');
    const result = task.result as { stdout: string; stderr: string; truncated: boolean };
    expect(result.stdout).toBe('a'.repeat(64 * 1024));
    expect(result.stderr).toBe('short\n');
    expect(result.truncated).toBe(true);
  });

  it('fails the task when payload.timeout_ms passes', async () => {
    platform = await createTestPlatform();
    const { task, attempt } = await shellTask(platform, { command: ['sleep', '30'], timeout_ms: 300 });
    expect(task).toMatchObject({ status: 'QUARANTINED', last_error: 'timed out after 300 ms' });
    expect(attempt.details).toMatchObject({ exit_code: 124 });
    expect((attempt.details as { duration_ms: number }).duration_ms).toBeLessThan(10_000);
  });

  it('cannot see the host’s files: the test’s temp dir, the sandboxes’ root, the repository', async () => {
    platform = await createTestPlatform();
    const secrets = mkdtempSync(join(tmpdir(), 'devart-host-secrets-'));
    dirs.push(secrets);
    writeFileSync(join(secrets, 'token'), 'hunter2');
    const repoFile = join(import.meta.dirname, 'reference-agent.ts');
    const script = [
      'for path in "$@"; do',
      '  if ls "$path" >/dev/null 2>&1 || cat "$path" >/dev/null 2>&1; then echo "visible $path"; else echo "hidden $path"; fi',
      'done',
    ].join('\n');
    const paths = [secrets, join(secrets, 'token'), platform.sandboxes.rootDir, repoFile];
    const { task } = await shellTask(platform, { command: ['sh', '-c', script, 'sh', ...paths] });
    expect(task.status).toBe('DONE');
    expect((task.result as { stdout: string }).stdout).toBe(paths.map((p) => `hidden ${p}\n`).join(''));
    // The same probe on the host sees them all, so "hidden" is the sandbox's doing.
    expect(execFileSync('sh', ['-c', script, 'sh', ...paths], { encoding: 'utf8' })).toBe(
      paths.map((p) => `visible ${p}\n`).join(''),
    );
  });

  it('runs the demo workflow of `devart start`: its test step in a sandbox', async () => {
    platform = await createTestPlatform();
    const p = platform;
    const workflowId = await seedDemoWorkflow(p.db);
    for (const name of ['demo-1', 'demo-2']) {
      const agent = await p.registerAgent(['echo', 'shell'], name);
      await p.startAgent(agent, referenceCallback(), { capabilities: ['echo', 'shell'] });
    }
    const auth = await p.token('supervisor');
    const triggered = await p.call('POST', `/api/workflows/${workflowId}/trigger`, {
      auth,
      body: { variables: { branch: 'feature-x' } },
    });
    expect(triggered.status).toBe(201);
    const { run_id } = (await triggered.json()) as { run_id: string };
    await p.waitFor('the demo run to complete', async () => {
      const run = (await (await p.call('GET', `/api/workflow-runs/${run_id}`, { auth })).json()) as {
        status: string;
      };
      if (run.status === 'FAILED') throw new Error(`the demo run failed: ${JSON.stringify(run)}`);
      return run.status === 'COMPLETED';
    });
    const { rows } = await p.db.query<{ step_key: string; result: Record<string, unknown> }>(
      'SELECT step_key, result FROM tasks WHERE workflow_run_id = $1',
      [run_id],
    );
    const result = Object.fromEntries(rows.map((r) => [r.step_key, r.result]));
    expect(result.test).toMatchObject({ exit_code: 0, truncated: false });
    const stdout = result.test!.stdout as string;
    expect(stdout).toMatch(/^testing d3adb33f in a sandbox\nLinux /);
    expect(stdout).toMatch(/uid=\d+/);
    expect(result.report).toEqual({ summary: 'lint passed, test exited 0 on feature-x' });
    expect(await p.sandboxes.provider.list()).toEqual([]);
  });

  it('keeps the payload validation: a bad command fails at once, before any sandbox', async () => {
    platform = await createTestPlatform();
    const { task, sandboxes } = await shellTask(platform, { command: 'rm -rf /' });
    expect(task.status).toBe('QUARANTINED');
    expect(task.last_error).toMatch(/payload\.command: a non-empty array of strings/);
    expect(sandboxes).toEqual([]);
  });
});

describe('the reference agent’s shell capability without sandboxes on the server', () => {
  it('fails the task with the server’s reason and never runs the command on the host', async () => {
    platform = await createTestPlatform();
    const marker = join(mkdtempSync(join(tmpdir(), 'devart-no-fallback-')), 'ran-on-host');
    dirs.push(join(marker, '..'));
    const reason = 'bubblewrap (bwrap) is not installed: run `apt-get install bubblewrap`';
    const { task, sandboxes } = await shellTask(
      platform,
      { command: ['touch', marker] },
      await noSandboxFetch(platform, reason),
    );
    expect(task).toMatchObject({
      status: 'QUARANTINED',
      attempt: 1,
      last_error: `sandboxes are unavailable on this server: ${reason}`,
    });
    expect(sandboxes).toEqual([]);
    expect(existsSync(marker)).toBe(false);
  });
});
