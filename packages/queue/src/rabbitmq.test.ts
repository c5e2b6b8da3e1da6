import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from './broker';
import { describeBrokerConformance } from './broker.conformance';
import { BrokerUnavailableError, PublishRejectedError, TopologyConflictError } from './errors';
import { createRabbitBroker, type RabbitBrokerOptions } from './rabbitmq/broker';
import { createManagementClient, type ManagementClient } from './rabbitmq/management';
import {
  amqpUrl,
  assertReachable,
  deletePrefixed,
  managementUrl,
  messages,
  newPrefix,
  type RecordingLogger,
  recordingLogger,
  sleep,
  until,
} from './rabbitmq/test-support';

const indexPath = fileURLToPath(new URL('./index.ts', import.meta.url));

describe.runIf(!!amqpUrl)('RabbitMQ broker', () => {
  const url = amqpUrl as string;
  // The body of a describe.runIf(false) still runs (to collect skipped tests): build nothing here.
  let management: ManagementClient;
  const brokers: Broker[] = [];
  const prefixes = new Set<string>();
  const everyPrefix = new Set<string>();

  /** A broker on its own prefix (or the given one), closed and cleaned up after the test. */
  const make = (options: Partial<RabbitBrokerOptions> = {}): Broker => {
    const prefix = options.prefix ?? newPrefix();
    prefixes.add(prefix);
    everyPrefix.add(prefix);
    const broker = createRabbitBroker({
      url,
      timeoutMs: 10_000,
      logger: recordingLogger(),
      ...options,
      prefix,
    });
    brokers.push(broker);
    return broker;
  };

  beforeAll(async () => {
    management = createManagementClient({ url: managementUrl(url) });
    await assertReachable(url);
  });

  afterEach(async () => {
    await Promise.all(brokers.splice(0).map((broker) => broker.close()));
    for (const prefix of prefixes) await deletePrefixed(management, prefix);
    prefixes.clear();
  });

  afterAll(async () => {
    // Every test cleaned up after itself: nothing of ours is left on the broker.
    const ours = (name: string) => [...everyPrefix].some((prefix) => name.startsWith(prefix));
    const leftovers = [...(await management.listQueues()), ...(await management.listExchanges())];
    expect(leftovers.filter((resource) => ours(resource.name))).toEqual([]);
  });

  describeBrokerConformance('rabbitmq', async () => make());

  it('reconnects publisher and consumer after their connections are killed, losing nothing', async () => {
    const prefix = newPrefix();
    const reconnect = { initialDelayMs: 50, maxDelayMs: 1_000 };
    const publisherLog = recordingLogger();
    const consumerLog = recordingLogger();
    const publisher = make({ prefix, connectionName: `${prefix}publisher`, logger: publisherLog, reconnect });
    const consumer = make({ prefix, connectionName: `${prefix}consumer`, logger: consumerLog, reconnect });
    await Promise.all([publisher.setup(), consumer.setup()]);
    const queue = await publisher.ensureTaskQueue('resilient');

    const seen = new Set<string>();
    let deliveries = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    await consumer.consume(queue, { prefetch: 20 }, async (d) => {
      deliveries += 1;
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await sleep(1);
      seen.add(d.messageId);
      inFlight -= 1;
      d.ack();
    });
    // The publisher has one connection; the consumer two (declarations, and consuming).
    const ours = (name: string | undefined) => name?.startsWith(prefix) ?? false;
    await until(
      async () => (await management.listConnections()).filter((c) => ours(c.connectionName)).length === 3,
      'the three connections to show up in the management API',
    );

    let published = 0;
    const publishing = (async () => {
      for (let i = 0; i < 1_000; i += 25) {
        await publisher.publish(messages(queue, i, i + 25));
        published = i + 25;
        await sleep(5);
      }
    })();
    await until(() => published >= 300 && seen.size >= 100, 'publishing and consuming to be under way');
    const killed = await management.closeConnections(
      (c) => ours(c.connectionName),
      'test: simulated network failure',
    );
    expect(killed).toBe(3);

    await publishing;
    await until(() => seen.size === 1_000, 'all 1,000 messages to be consumed', 30_000);
    expect(published).toBe(1_000);
    expect(maxInFlight).toBeLessThanOrEqual(20);
    console.info(`[rabbitmq] kill test: ${deliveries} deliveries for 1,000 messages`);
    // Each connection logs its loss once and its return once, however many operations it carried.
    const perConnection = (log: RecordingLogger, level: 'warn' | 'info') =>
      log.entries
        .filter((e) => e.level === level)
        .map((e) => `${(e.obj as { connection?: string }).connection} ${e.msg}`)
        .sort();
    expect(perConnection(publisherLog, 'warn')).toEqual([
      `${prefix}publisher RabbitMQ connection lost; reconnecting in the background`,
    ]);
    expect(perConnection(consumerLog, 'warn')).toEqual([
      `${prefix}consumer RabbitMQ connection lost; reconnecting in the background`,
      `${prefix}consumer:consume RabbitMQ connection lost; reconnecting in the background`,
    ]);
    expect(perConnection(publisherLog, 'info')).toEqual([
      `${prefix}publisher RabbitMQ connection re-established`,
    ]);
    expect(perConnection(consumerLog, 'info')).toEqual([
      `${prefix}consumer RabbitMQ connection re-established`,
      `${prefix}consumer:consume RabbitMQ connection re-established`,
    ]);
  });

  it('finishes a publish whose connection dies while it waits for confirms', async () => {
    const prefix = newPrefix();
    const publisher = make({
      prefix,
      connectionName: `${prefix}publisher`,
      reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
    });
    const queue = await publisher.ensureTaskQueue('inflight');
    await until(
      async () => (await management.listConnections()).some((c) => c.connectionName === `${prefix}publisher`),
      'the connection to show up in the management API',
    );
    let confirmed = false;
    const publishing = publisher.publish(messages(queue, 0, 20_000)).then(() => {
      confirmed = true;
    });
    await sleep(20);
    expect(await management.closeConnections((c) => c.connectionName === `${prefix}publisher`)).toBe(1);
    // Had the publish been confirmed before the kill, this test would prove nothing.
    expect(confirmed).toBe(false);
    await publishing;

    const seen = new Set<string>();
    const consumer = make({ prefix });
    await consumer.consume(queue, { prefetch: 200 }, (d) => {
      seen.add(d.messageId);
      d.ack();
    });
    await until(() => seen.size === 20_000, 'all 20,000 messages', 30_000);
  });

  it('re-declares the topology when someone deleted the exchange under a live publisher', async () => {
    const broker = make();
    await broker.setup();
    const queue = await broker.ensureTaskQueue('healing');
    const got: string[] = [];
    await broker.consume(queue, { prefetch: 10 }, (d) => {
      got.push(d.messageId);
      d.ack();
    });
    await broker.publish(messages(queue, 0, 1));
    await management.deleteExchange(broker.topology.exchange);
    await broker.publish(messages(queue, 1, 2));
    await until(() => got.length === 2, 'both messages');
    expect(got).toEqual(['m0', 'm1']);
  });

  it('re-subscribes a consumer whose queue was deleted, declaring the queue again by itself', async () => {
    const logger = recordingLogger();
    const broker = make({ logger, reconnect: { initialDelayMs: 50, maxDelayMs: 300 } });
    const queue = await broker.ensureTaskQueue('phoenix');
    const got: string[] = [];
    await broker.consume(queue, { prefetch: 5 }, (d) => {
      got.push(d.messageId);
      d.ack();
    });
    await management.deleteQueue(queue);
    await until(
      () => logger.messages('warn').includes('Cannot re-subscribe consumer yet; retrying with backoff'),
      'a failed re-subscribe',
    );
    await until(
      () => logger.messages('info').includes('Consumer re-established'),
      'the consumer to come back',
    );
    await broker.publish(messages(queue, 0, 1));
    await until(() => got.length === 1, 'a delivery to the re-established consumer');
    expect(logger.messages('warn')).toEqual([
      'RabbitMQ cancelled the consumer (queue deleted?); re-subscribing',
      'Cannot re-subscribe consumer yet; retrying with backoff',
    ]);
  });

  it('rejects a publish RabbitMQ cannot route anywhere, naming the message', async () => {
    const broker = make();
    await broker.setup();
    // Without its queue, the dead-letter exchange routes nowhere and has no alternate exchange.
    await management.deleteQueue(broker.topology.deadQueue);
    const error = await broker.publishDead(messages('x', 0, 1)).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(PublishRejectedError);
    expect((error as PublishRejectedError).unroutable).toEqual(['m0']);
  });

  it('refuses to redeclare a queue with another delivery limit', async () => {
    const prefix = newPrefix();
    await make({ prefix }).ensureTaskQueue('limited');
    const other = make({ prefix, deliveryLimit: 2 });
    await expect(other.ensureTaskQueue('limited')).rejects.toBeInstanceOf(TopologyConflictError);
    // The refusal closed a channel, not the connection.
    await expect(other.ensureTaskQueue('fine')).resolves.toBe(`${prefix}tasks.todo.fine`);
  });

  it('lets the process exit after close(), with consumers and publishes done', async () => {
    const prefix = newPrefix();
    prefixes.add(prefix);
    everyPrefix.add(prefix);
    const { code, stdout, stderr, ms } = await runChild(
      `const broker = createRabbitBroker({ url: process.env.AMQP_URL, prefix: '${prefix}', logger: silent });
       const queue = await broker.ensureTaskQueue('exit');
       let got = 0;
       await broker.consume(queue, { prefetch: 5 }, (d) => { got += 1; d.ack(); });
       await broker.publish([{ routingKey: queue, messageId: 'a', body: {} }, { routingKey: queue, messageId: 'b', body: {} }]);
       while (got < 2) await new Promise((r) => setTimeout(r, 10));
       await broker.close();
       console.log('closed', got);`,
    );
    expect({ code, stdout: stdout.trim(), stderr }).toEqual({ code: 0, stdout: 'closed 2', stderr: '' });
    expect(ms).toBeLessThan(10_000);
  });
});

describe('RabbitMQ broker without a server', () => {
  it('rejects publish after the timeout with a clear error, logging the outage once', async () => {
    const logger = recordingLogger();
    const broker = createRabbitBroker({
      url: 'amqp://devart:s3cret@127.0.0.1:1',
      timeoutMs: 1_000,
      logger,
      reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
    });
    const started = Date.now();
    const error = await broker.publish(messages('tasks.todo', 0, 1)).catch((err: unknown) => err);
    const waited = Date.now() - started;
    expect(error).toBeInstanceOf(BrokerUnavailableError);
    expect((error as Error).message).toMatch(
      /RabbitMQ at amqp:\/\/devart:\*\*\*@127\.0\.0\.1:1 is not reachable/,
    );
    expect((error as Error).message).toMatch(/ECONNREFUSED/);
    expect((error as Error).message).not.toContain('s3cret');
    expect(waited).toBeGreaterThanOrEqual(950);
    expect(waited).toBeLessThan(3_000);
    expect(logger.messages('warn')).toEqual(['Cannot reach RabbitMQ; retrying in the background']);
    await broker.close();
  });

  it('lets the process exit after close() while it was still trying to connect', async () => {
    const { code, stdout, stderr } = await runChild(
      `const broker = createRabbitBroker({ url: 'amqp://127.0.0.1:1', timeoutMs: 300, logger: silent });
       const error = await broker.setup().catch((err) => err);
       await broker.close();
       console.log(error.name);`,
    );
    expect({ code, stdout: stdout.trim(), stderr }).toEqual({
      code: 0,
      stdout: 'BrokerUnavailableError',
      stderr: '',
    });
  });

  it('rejects URLs that are not amqp:// or amqps://', () => {
    expect(() => createRabbitBroker({ url: 'http://127.0.0.1:5672' })).toThrow(/amqp:\/\/ or amqps:\/\//);
    expect(() => createRabbitBroker({ url: 'amqp://[::1' })).toThrow(TypeError);
    expect(() => createRabbitBroker({ url: 'http://u:hunter2@h' })).toThrow(/^(?!.*hunter2)/);
  });
});

/** Runs `body` in a fresh Node process (must end by itself) with `createRabbitBroker` and `silent` in scope. */
function runChild(
  body: string,
): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const script = `const { createRabbitBroker } = await import(${JSON.stringify(indexPath)});
    const silent = { info() {}, warn() {}, error() {} };
    ${body}`;
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    // A process that does not end by itself is the failure this guards against.
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}
