import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { noSandboxFetch } from '../../../test/no-sandbox-api';
import { createTestPlatform, type TestPlatform } from '../../../test/platform';
import { bubblewrap } from '../../../test/sandbox';
import type { TaskCallback } from './agent';
import { NonRetryableError, SandboxUnavailableError } from './errors';

const execFileAsync = promisify(execFile);

let platform: TestPlatform | undefined;
let server: Server | undefined;
afterEach(async () => {
  await platform?.close();
  platform = undefined;
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = undefined;
});

interface TaskRow {
  status: string;
  result: unknown;
  last_error: string | null;
  attempt: number;
}

interface SandboxRowState {
  id: string;
  status: string;
  termination_reason: string | null;
  external_id: string | null;
}

/** One `sbx` task run by an SDK agent with `callback`; resolves once the task is DONE or QUARANTINED. */
async function runTask(
  p: TestPlatform,
  callback: TaskCallback,
  { fetch, agentId }: { fetch?: typeof globalThis.fetch; agentId?: (id: string) => string } = {},
) {
  const agent = await p.registerAgent(['sbx']);
  await p.startAgent(agent, callback, {
    capabilities: ['sbx'],
    ...(fetch ? { fetch } : {}),
    ...(agentId ? { agentId: agentId(agent.id) } : {}),
  });
  const [taskId] = await p.createTasks(1, { capability: 'sbx', payload: {}, max_retries: 2 });
  const task = await p.waitFor('the task to end', async () => {
    const { rows } = await p.db.query<TaskRow>(
      'SELECT status, result, last_error, attempt FROM tasks WHERE id = $1',
      [taskId],
    );
    return rows[0]!.status === 'DONE' || rows[0]!.status === 'QUARANTINED' ? rows[0] : undefined;
  });
  const { rows: sandboxes } = await p.db.query<SandboxRowState>(
    'SELECT id, status, termination_reason, external_id FROM sandboxes WHERE task_id = $1 ORDER BY created_at',
    [taskId],
  );
  return { taskId: taskId!, task, sandboxes, agent };
}

describe.skipIf(!bubblewrap.available)('task.sandbox() on the local (bubblewrap) provider', () => {
  it('runs commands in /workspace, and the sandbox is terminated once the callback returns', async () => {
    platform = await createTestPlatform();
    const p = platform;
    let liveDuring: string[] = [];
    const { task, sandboxes } = await runTask(p, async (ctx) => {
      const box = await ctx.sandbox({ resources: { cpu: 500, memory: 256 }, ttlSeconds: 120 });
      const write = await box.exec(['sh', '-c', 'printf "%s from %s" "$GREETING" "$(pwd)" > greeting.txt'], {
        env: { GREETING: 'hello' },
      });
      const read = await box.exec(['cat', '/workspace/greeting.txt']);
      const piped = await box.exec(['tr', 'a-z', 'A-Z'], { stdin: 'shout' });
      const failing = await box.exec(['sh', '-c', 'echo oops >&2; exit 3']);
      const slow = await box.exec(['sleep', '5'], { timeoutMs: 200 });
      liveDuring = await p.sandboxes.provider.list();
      // Requests the server refuses as invalid, or outside the sandbox policy (no egress by default),
      // fail for good: the same request would fail again.
      const badExec = await box.exec(['true'], { env: { 'NOT A NAME': 'x' } }).catch((e: unknown) => e);
      const badRequest = await ctx
        .sandbox({ egress: { allow: [{ cidr: '203.0.113.0/24', ports: [443] }] } })
        .catch((e: unknown) => e);
      const refusals = [badExec, badRequest].map((e) => ({
        nonRetryable: e instanceof NonRetryableError,
        message: (e as Error).message,
      }));
      return { result: { id: box.id, write, read, piped, failing, slow, refusals } };
    });
    expect(task.status).toBe('DONE');
    const result = task.result as Record<string, Record<string, unknown>> & { id: string; refusals: unknown };
    expect(result.write).toMatchObject({ exitCode: 0, stdout: '', timedOut: false, truncated: false });
    expect(result.read).toMatchObject({ exitCode: 0, stdout: 'hello from /workspace' });
    expect(result.piped).toMatchObject({ exitCode: 0, stdout: 'SHOUT' });
    expect(result.failing).toMatchObject({ exitCode: 3, stdout: '', stderr: 'oops\n', timedOut: false });
    expect(result.slow).toMatchObject({ exitCode: 124, timedOut: true });
    expect(typeof result.read!.durationMs).toBe('number');
    expect(result.refusals).toEqual([
      { nonRetryable: true, message: expect.stringMatching(/^exec in sandbox \S+ refused: .*env/) },
      {
        nonRetryable: true,
        message: expect.stringMatching(/^sandbox request refused: body\.egress\.allow\[0\]\.cidr: /),
      },
    ]);

    // Terminated by the SDK before it reported (so while the task was still IN_PROGRESS: not the sweep).
    // The request outside the policy is refused before anything is recorded or provisioned.
    expect(sandboxes).toEqual([
      expect.objectContaining({ id: result.id, status: 'TERMINATED', termination_reason: 'terminated' }),
    ]);
    expect(liveDuring).toEqual([sandboxes[0]!.external_id]);
    expect(await p.sandboxes.provider.list()).toEqual([]);
  });

  it('terminates every sandbox of a callback that throws, and one the callback ended itself', async () => {
    platform = await createTestPlatform();
    const p = platform;
    // The platform's in-process API, with a count of the agent asking who it is.
    let whoAmI = 0;
    const countingFetch = ((input: string | URL | Request, init?: RequestInit) => {
      const url = input instanceof Request ? input.url : String(input);
      if (new URL(url).pathname === '/api/agents/me') whoAmI++;
      return p.app.request(input instanceof Request ? input : url, init);
    }) as typeof fetch;
    let ended = '';
    const { task, sandboxes } = await runTask(
      p,
      async (ctx) => {
        const first = await ctx.sandbox();
        await first.terminate();
        await first.terminate(); // idempotent
        ended = first.id;
        await expect(first.exec(['true'])).rejects.toThrow(/was terminated/);
        const second = await ctx.sandbox();
        const third = await ctx.sandbox();
        await second.exec(['touch', 'x']);
        await third.exec(['touch', 'y']);
        expect(await p.sandboxes.provider.list()).toHaveLength(2);
        throw new NonRetryableError('the build broke');
      },
      { fetch: countingFetch },
    );
    // Three sandboxes, one lookup of the agent's id.
    expect(whoAmI).toBe(1);
    expect(task).toMatchObject({ status: 'QUARANTINED', last_error: 'the build broke', attempt: 1 });
    expect(sandboxes.map((s) => [s.status, s.termination_reason])).toEqual([
      ['TERMINATED', 'terminated'],
      ['TERMINATED', 'terminated'],
      ['TERMINATED', 'terminated'],
    ]);
    expect(sandboxes[0]!.id).toBe(ended);
    expect(await p.sandboxes.provider.list()).toEqual([]);
  });

  it('gives the command no network: a server on the host’s 127.0.0.1 is out of reach', async () => {
    platform = await createTestPlatform();
    let connections = 0;
    server = createServer((_req, res) => res.end('reachable'));
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    // bash's /dev/tcp opens a TCP connection; the same probe on the host reaches the server.
    const probe = `exec 3<>/dev/tcp/127.0.0.1/${port} && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3`;
    const onHost = await execFileAsync('bash', ['-c', probe]);
    expect(onHost.stdout).toContain('reachable');
    expect(connections).toBe(1);

    const { task } = await runTask(platform, async (ctx) => {
      const box = await ctx.sandbox();
      const tcp = await box.exec(['bash', '-c', probe], { timeoutMs: 10_000 });
      const interfaces = await box.exec(['cat', '/proc/net/dev']);
      return { result: { tcp, interfaces } };
    });
    expect(task.status).toBe('DONE');
    const { tcp, interfaces } = task.result as Record<
      string,
      { exitCode: number; stdout: string; stderr: string }
    >;
    expect(tcp!.exitCode).not.toBe(0);
    expect(tcp!.stdout).not.toContain('reachable');
    expect(tcp!.stderr).toMatch(/Connection refused/);
    expect(connections).toBe(1);
    // Only the loopback of its own network namespace.
    const names = interfaces!.stdout
      .split('\n')
      .slice(2)
      .map((line) => line.split(':')[0]!.trim())
      .filter(Boolean);
    expect(names).toEqual(['lo']);
  });

  it('uses the agentId option instead of asking the API, and refusals fail the callback', async () => {
    platform = await createTestPlatform();
    const other = await platform.registerAgent(['sbx'], 'someone-else');
    let caught: unknown;
    const { task, sandboxes } = await runTask(
      platform,
      async (ctx) => {
        try {
          await ctx.sandbox();
        } catch (error) {
          caught = error;
        }
        return { status: 'failed', error: String(caught), retryable: false };
      },
      { agentId: () => other.id },
    );
    expect(task.status).toBe('QUARANTINED');
    expect(String(caught)).toMatch(
      /request-sandbox answered 403: An agent requests sandboxes for itself only/,
    );
    expect(caught).not.toBeInstanceOf(NonRetryableError);
    expect(sandboxes).toEqual([]);
  });
});

describe('task.sandbox() on a server that cannot provide sandboxes', () => {
  it.each([
    ['no provider configured', undefined, /This server runs no sandbox provider/],
    [
      'bubblewrap missing',
      'bubblewrap (bwrap) is not installed: run `apt-get install bubblewrap`',
      /^sandboxes are unavailable on this server: bubblewrap \(bwrap\) is not installed: run `apt-get install bubblewrap`$/,
    ],
  ])(
    '%s: fails the task at once, non-retryable, with the server’s reason',
    async (_name, unavailable, reason) => {
      platform = await createTestPlatform();
      const api = await noSandboxFetch(platform, unavailable);
      let requests = 0;
      const counting = ((input: string | URL | Request, init?: RequestInit) => {
        if (String(input).endsWith('/request-sandbox')) requests++;
        return api(input, init);
      }) as typeof fetch;
      let caught: unknown;
      const { task, sandboxes } = await runTask(
        platform,
        async (ctx) => {
          try {
            await ctx.sandbox();
          } catch (error) {
            caught = error;
            throw error;
          }
        },
        { fetch: counting },
      );
      // Asked once: the client's retries of 5xx are off for this call.
      expect(requests).toBe(1);
      expect(caught).toBeInstanceOf(SandboxUnavailableError);
      expect(caught).toBeInstanceOf(NonRetryableError);
      expect((caught as Error).message).toMatch(reason);
      // Quarantined on the first attempt although max_retries is 2: retrying meets the same server.
      expect(task).toMatchObject({ status: 'QUARANTINED', attempt: 1 });
      expect(task.last_error).toMatch(reason);
      expect(sandboxes).toEqual([]);
    },
  );
});
