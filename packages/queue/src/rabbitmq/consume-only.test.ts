import { randomBytes } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Broker, Consumer } from '../broker';
import { AccessRefusedError, BrokerClosedError, QueueNotFoundError } from '../errors';
import { createRabbitBroker } from './broker';
import { createManagementClient, type ManagementClient } from './management';
import {
  amqpUrl,
  assertReachable,
  createTestVhost,
  managementUrl,
  messages,
  type RecordingLogger,
  recordingLogger,
  sleep,
  type TestVhost,
  until,
  withCredentials,
} from './test-support';

describe.runIf(!!amqpUrl)('RabbitMQ consume-only broker and a missing queue', () => {
  const url = amqpUrl as string;
  // The body of a describe.runIf(false) still runs (to collect skipped tests): build nothing here.
  let management: ManagementClient;
  let own: TestVhost | undefined;
  const brokers: Broker[] = [];
  const agents: string[] = [];

  beforeAll(async () => {
    management = createManagementClient({ url: managementUrl(url) });
    await assertReachable(url);
  });

  afterEach(async () => {
    await Promise.all(brokers.splice(0).map((broker) => broker.close()));
    for (const agentId of agents.splice(0)) await management.revokeAgentUser(agentId);
    await own?.remove();
    own = undefined;
  });

  /** A vhost of its own, its platform broker (topology declared) and an agent user reading `shell`. */
  async function setUp(): Promise<{ platform: Broker; agent: Broker; log: RecordingLogger; queue: string }> {
    own = await createTestVhost(url);
    const platform = createRabbitBroker({ url: own.url, logger: recordingLogger(), timeoutMs: 10_000 });
    brokers.push(platform);
    await platform.setup();
    const agentId = `test-${randomBytes(4).toString('hex')}`;
    agents.push(agentId);
    const { username, password } = await management.provisionAgentUser({
      agentId,
      capabilities: ['shell'],
      vhost: own.vhost,
    });
    const log = recordingLogger();
    const agent = createRabbitBroker({
      url: withCredentials(own.url, username, password),
      consumeOnly: true,
      logger: log,
      timeoutMs: 5_000,
    });
    brokers.push(agent);
    await agent.setup();
    return { platform, agent, log, queue: 'tasks.todo.shell' };
  }

  const waiting = (queue: string) =>
    `queue ${queue} does not exist yet; waiting for the devart API to declare it`;
  const back = (queue: string) => `queue ${queue} exists now; consuming it`;

  it('waits at consume() for a queue the platform has not declared yet, then consumes what is published to it', async () => {
    const { platform, agent, log, queue } = await setUp();
    const got: string[] = [];
    let consumer: Consumer | undefined;
    const consuming = agent
      .consume(queue, { prefetch: 5 }, (d) => {
        got.push(d.messageId);
        d.ack();
      })
      .then((c) => {
        consumer = c;
      });
    await until(() => log.messages('warn').includes(waiting(queue)), 'the warning about the missing queue');
    // Past the first retries, and still waiting.
    await sleep(1_200);
    expect(consumer).toBeUndefined();

    expect(await platform.ensureTaskQueue('shell')).toBe(queue);
    await platform.publish(messages(queue, 0, 2));
    await consuming;
    await until(() => got.length === 2, 'both messages to be consumed');
    expect(got.sort()).toEqual(['m0', 'm1']);
    expect(log.messages('warn')).toEqual([waiting(queue)]);
    expect(log.messages('info')).toContain(back(queue));
  });

  it('waits the same way when the queue is deleted under a running consumer', async () => {
    const { platform, agent, log, queue } = await setUp();
    await platform.ensureTaskQueue('shell');
    const got: string[] = [];
    await agent.consume(queue, { prefetch: 5 }, (d) => {
      got.push(d.messageId);
      d.ack();
    });
    await management.deleteQueue(queue, own?.vhost);
    await until(() => log.messages('warn').includes(waiting(queue)), 'the warning about the missing queue');
    // What the API's reconciler does: declare the topology, task queues included, again.
    await platform.setup();
    await until(() => log.messages('info').includes(back(queue)), 'the consumer to come back');
    await platform.publish(messages(queue, 0, 1));
    await until(() => got.length === 1, 'a delivery to the re-established consumer');
    expect(log.messages('warn')).toEqual([
      'RabbitMQ cancelled the consumer (queue deleted?); re-subscribing',
      waiting(queue),
    ]);
  });

  it('ends the wait when its signal aborts or the broker closes, and consumes nothing afterwards', async () => {
    const { platform, agent, log, queue } = await setUp();
    const got: string[] = [];
    const handler = (d: { messageId: string; ack(): void }) => {
      got.push(d.messageId);
      d.ack();
    };
    const controller = new AbortController();
    const aborted = agent.consume(queue, { prefetch: 1, signal: controller.signal }, handler);
    await until(() => log.messages('warn').includes(waiting(queue)), 'the wait to begin');
    const reason = new Error('stopping');
    controller.abort(reason);
    await expect(aborted).rejects.toBe(reason);

    const closing = agent.consume(queue, { prefetch: 1 }, handler).catch((err: unknown) => err);
    await sleep(100);
    await agent.close();
    expect(await closing).toBeInstanceOf(BrokerClosedError);

    await platform.ensureTaskQueue('shell');
    await platform.publish(messages(queue, 0, 1));
    // Longer than the first retries of either wait would have taken.
    await sleep(1_500);
    expect(got).toEqual([]);
  });

  it('on a vhost without devart, says so in words: setup() names the missing exchange and the prefix, consume() the missing queue', async () => {
    own = await createTestVhost(url);
    const agent = createRabbitBroker({
      url: own.url,
      prefix: 'blue.',
      consumeOnly: true,
      logger: recordingLogger(),
      timeoutMs: 5_000,
    });
    brokers.push(agent);
    await expect(agent.setup()).rejects.toThrow(
      'No devart on this broker: exchange "blue.tasks" does not exist (prefix "blue."). The devart API declares it when it starts',
    );
    // A broker that may declare, consuming a queue nobody declared (no ensureTaskQueue first).
    const declaring = createRabbitBroker({ url: own.url, logger: recordingLogger(), timeoutMs: 5_000 });
    brokers.push(declaring);
    const missing = await declaring
      .consume('tasks.todo.gpu', { prefetch: 1 }, () => {})
      .catch((e: Error) => e);
    expect(missing).toBeInstanceOf(QueueNotFoundError);
    expect((missing as Error).message).toBe(
      'Queue "tasks.todo.gpu" does not exist on this broker. The devart API creates the task queues (when it ' +
        'starts, when an agent registers, and again every few seconds): is devart running with AMQP_URL set to ' +
        'this broker and vhost, and with the same AMQP_PREFIX as this queue name?',
    );
  });

  it('fails at once, without waiting, for a queue the user may not read', async () => {
    const { agent } = await setUp();
    const started = Date.now();
    await expect(agent.consume('tasks.todo.gpu', { prefetch: 1 }, () => {})).rejects.toBeInstanceOf(
      AccessRefusedError,
    );
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});
