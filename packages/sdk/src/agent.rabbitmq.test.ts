import { randomBytes } from 'node:crypto';
import {
  AccessRefusedError,
  type Broker,
  BrokerError,
  createManagementClient,
  createRabbitBroker,
  type ManagementClient,
} from '@devart/queue';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  amqpUrl,
  assertReachable,
  createTestVhost,
  managementUrl,
  recordingLogger,
  type TestVhost,
  withCredentials,
} from '../../queue/src/rabbitmq/test-support';
import { type Agent, createAgent } from './agent';

describe.runIf(!!amqpUrl)('an SDK agent refused by RabbitMQ says which prefix and queues it used', () => {
  const url = amqpUrl as string;
  let management: ManagementClient;
  let own: TestVhost | undefined;
  const brokers: Broker[] = [];
  const agents: Agent[] = [];
  const users: string[] = [];

  beforeAll(async () => {
    management = createManagementClient({ url: managementUrl(url) });
    await assertReachable(url);
  });

  afterEach(async () => {
    await Promise.all(agents.splice(0).map((agent) => agent.stop()));
    await Promise.all(brokers.splice(0).map((broker) => broker.close()));
    for (const agentId of users.splice(0)) await management.revokeAgentUser(agentId);
    await own?.remove();
    own = undefined;
  });

  /**
   * A vhost of its own where devarts with `platformPrefixes` declared their topology, and a broker
   * user as POST /api/agents makes it: reading `tasks.todo` and `tasks.todo.echo` under `userPrefix`.
   */
  async function setUp(platformPrefixes: string[], userPrefix: string): Promise<string> {
    own = await createTestVhost(url);
    for (const prefix of platformPrefixes) {
      const platform = createRabbitBroker({
        url: own.url,
        prefix,
        logger: recordingLogger(),
        timeoutMs: 10_000,
      });
      brokers.push(platform);
      await platform.setup();
      for (const capability of [null, 'echo', 'gpu']) await platform.ensureTaskQueue(capability);
    }
    const agentId = `sdk-test-${randomBytes(4).toString('hex')}`;
    users.push(agentId);
    const { username, password } = await management.provisionAgentUser({
      agentId,
      capabilities: ['echo'],
      vhost: own.vhost,
      prefix: userPrefix,
    });
    return withCredentials(own.url, username, password);
  }

  function startAgent(amqp: string, prefix: string | undefined, capabilities: string[]): Promise<unknown> {
    const agent = createAgent({
      // Never called: the broker refuses before any task arrives.
      apiUrl: 'http://127.0.0.1:9',
      apiKey: 'dva_test',
      amqpUrl: amqp,
      prefix,
      capabilities,
      presenceIntervalMs: 0,
    });
    agents.push(agent);
    return agent
      .startConsuming(() => undefined)
      .then(
        () => undefined,
        (error: unknown) => error,
      );
  }

  it('a capability it was not registered with: AccessRefusedError naming the prefix, the refused queue and every queue tried', async () => {
    const amqp = await setUp(['blue.'], 'blue.');
    const error = (await startAgent(amqp, 'blue.', ['echo', 'gpu'])) as AccessRefusedError;
    expect(error).toBeInstanceOf(AccessRefusedError);
    expect(error.message).toContain('access to queue "blue.tasks.todo.gpu" (prefix "blue."');
    expect(error.message).toContain(
      'queues tried: blue.tasks.todo, blue.tasks.todo.echo, blue.tasks.todo.gpu',
    );
    expect(error.message).toContain('broker.amqp_prefix');
    // RabbitMQ's own words are kept, as the cause.
    expect(error.cause).toBeInstanceOf(AccessRefusedError);
  });

  it('no prefix on a vhost an unprefixed devart shares: AccessRefusedError saying it used no prefix', async () => {
    const amqp = await setUp(['', 'green.'], 'green.');
    const error = (await startAgent(amqp, undefined, ['echo'])) as AccessRefusedError;
    expect(error).toBeInstanceOf(AccessRefusedError);
    expect(error.message).toMatch(
      /access to queue "tasks\.todo(\.echo)?" \(no prefix; queues tried: tasks\.todo, tasks\.todo\.echo\)/,
    );
  });

  it('a prefix under which no devart runs: an error saying there is no devart topology, with the prefix', async () => {
    const amqp = await setUp(['green.'], 'green.');
    const error = (await startAgent(amqp, 'grene.', ['echo'])) as BrokerError;
    expect(error).toBeInstanceOf(BrokerError);
    expect(error.message).toContain(
      'No devart on this broker: exchange "grene.tasks" does not exist (prefix "grene.")',
    );
  });

  it('with the right prefix it consumes', async () => {
    const amqp = await setUp(['green.'], 'green.');
    expect(await startAgent(amqp, 'green.', ['echo'])).toBeUndefined();
  });
});
