import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Broker,
  createManagementClient,
  createRabbitBroker,
  type ManagementClient,
} from '@devart/queue';
import { afterEach, describe, expect, it } from 'vitest';
import {
  amqpUrl,
  createTestVhost,
  managementUrl,
  recordingLogger,
  type TestVhost,
  withCredentials,
} from '../../../packages/queue/src/rabbitmq/test-support';
import { agentKey } from './commands/agent';
import { runCli } from './main';

async function run(argv: string[], env: Record<string, string | undefined> = {}) {
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

describe('devart agent', () => {
  it('documents --prefix as the registration answer’s broker.amqp_prefix', async () => {
    const { code, stdout } = await run(['agent', '--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('[--prefix <p>]');
    expect(stdout).toContain('"broker.amqp_prefix" POST /api/agents returned');
  });

  it('refuses to start without a broker URL, and says why an embedded devart has none', async () => {
    const { code, stderr } = await run([
      'agent',
      '--capability',
      'echo',
      '--api',
      'http://127.0.0.1:8787',
      '--key',
      'dva_x',
    ]);
    expect(code).toBe(2);
    expect(stderr).toContain('--amqp must be the broker URL POST /api/agents returned');
  });

  it('reads the key from DEVART_AGENT_KEY or a file, so it need not be in argv, and says --key shows in ps', async () => {
    const { stdout } = await run(['agent', '--help']);
    expect(stdout).toMatch(/--key-file <path>.*DEVART_AGENT_KEY_FILE/);
    expect(stdout).toMatch(/--key <dva_…> +the key itself; every local user can read it in ps/);

    const dir = mkdtempSync(join(tmpdir(), 'devart-key-'));
    const file = join(dir, 'key');
    writeFileSync(file, 'dva_fromfile\n', { mode: 0o600 });
    expect(agentKey(undefined, file, {})).toBe('dva_fromfile');
    expect(agentKey(undefined, undefined, { DEVART_AGENT_KEY_FILE: file, DEVART_AGENT_KEY: 'dva_env' })).toBe(
      'dva_fromfile',
    );
    expect(agentKey(undefined, undefined, { DEVART_AGENT_KEY: 'dva_env' })).toBe('dva_env');
    expect(agentKey(undefined, undefined, { DEVART_API_KEY: 'dva_python' })).toBe('dva_python');
    expect(agentKey('dva_flag', undefined, { DEVART_AGENT_KEY: 'dva_env' })).toBe('dva_flag');
    expect(() => agentKey('dva_flag', file, {})).toThrow('give --key or --key-file, not both');
    expect(() => agentKey(undefined, join(dir, 'missing'), {})).toThrow(/--key-file: cannot read .*ENOENT/);
    rmSync(dir, { recursive: true, force: true });

    // Without any of them, the message names every way to give it.
    const missing = await run(['agent', '--capability', 'echo', '--api', 'http://127.0.0.1:8787']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('DEVART_AGENT_KEY, --key-file <path> or --key');
    // From the environment alone, the key check passes and the next one (the broker URL) speaks.
    const fromEnv = await run(['agent', '--capability', 'echo', '--api', 'http://127.0.0.1:8787'], {
      DEVART_AGENT_KEY: 'dva_env',
    });
    expect(fromEnv.stderr).toContain('--amqp must be the broker URL');
  });

  describe.runIf(!!amqpUrl)('on RabbitMQ', () => {
    let own: TestVhost | undefined;
    let platform: Broker | undefined;
    let management: ManagementClient | undefined;
    let agentId: string | undefined;
    afterEach(async () => {
      await platform?.close();
      if (agentId) await management?.revokeAgentUser(agentId);
      await own?.remove();
    });

    it('a capability its broker user may not read: exits 1 naming the prefix and every queue it tried', async () => {
      own = await createTestVhost(amqpUrl!);
      platform = createRabbitBroker({ url: own.url, prefix: 'blue.', logger: recordingLogger() });
      await platform.setup();
      for (const capability of [null, 'echo', 'shell']) await platform.ensureTaskQueue(capability);
      management = createManagementClient({ url: managementUrl(amqpUrl!) });
      agentId = `cli-test-${randomBytes(4).toString('hex')}`;
      // As POST /api/agents registers an agent with the echo capability only.
      const user = await management.provisionAgentUser({
        agentId,
        capabilities: ['echo'],
        vhost: own.vhost,
        prefix: 'blue.',
      });
      const { code, stderr } = await run(
        [
          'agent',
          '--capability',
          'echo,shell',
          '--api',
          'http://127.0.0.1:9',
          '--key',
          'dva_test',
          '--prefix',
          'blue.',
        ],
        { DEVART_AMQP_URL: withCredentials(own.url, user.username, user.password), LOG_LEVEL: 'silent' },
      );
      expect(code).toBe(1);
      expect(stderr).toContain(
        'devart agent: AccessRefusedError: The broker refused this agent access to queue "blue.tasks.todo.shell"',
      );
      expect(stderr).toContain(
        '(prefix "blue."; queues tried: blue.tasks.todo, blue.tasks.todo.echo, blue.tasks.todo.shell)',
      );
    });
  });
});
