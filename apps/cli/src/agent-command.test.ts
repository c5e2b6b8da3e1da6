import { randomBytes } from 'node:crypto';
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
