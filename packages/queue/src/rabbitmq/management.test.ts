import { randomBytes } from 'node:crypto';
import { connect } from 'amqplib';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Broker, Delivery } from '../broker';
import { AccessRefusedError, ConsumeOnlyError, InvalidCapabilityError } from '../errors';
import { createRabbitBroker } from './broker';
import {
  agentReadPattern,
  agentUsername,
  createManagementClient,
  ManagementApiError,
  type ManagementClient,
} from './management';
import {
  amqpUrl,
  assertReachable,
  deletePrefixed,
  managementUrl,
  messages,
  newPrefix,
  recordingLogger,
  until,
  withCredentials,
} from './test-support';

describe('agent permissions', () => {
  it('reads exactly tasks.todo and the capability queues, regex-escaped and anchored', () => {
    const pattern = agentReadPattern(['shell', 'k8s-deploy'], 't1.');
    expect(pattern).toBe('^(t1\\.tasks\\.todo|t1\\.tasks\\.todo\\.shell|t1\\.tasks\\.todo\\.k8s-deploy)$');
    const read = new RegExp(pattern);
    expect(read.test('t1.tasks.todo.shell')).toBe(true);
    expect(read.test('t1.tasks.todo')).toBe(true);
    expect(read.test('t1.tasks.todo.gpu')).toBe(false);
    expect(read.test('t1.tasks.todo.shellx')).toBe(false);
    expect(read.test('t1xtasksxtodo')).toBe(false);
    expect(read.test('t1.tasks.dead')).toBe(false);
    expect(agentReadPattern([])).toBe('^(tasks\\.todo)$');
  });

  it('rejects bad agent ids and capabilities', () => {
    expect(agentUsername('3f1c-uuid')).toBe('agent-3f1c-uuid');
    expect(() => agentUsername('a/b')).toThrow(RangeError);
    expect(() => agentUsername('')).toThrow(RangeError);
    expect(() => agentReadPattern(['Shell|.*'])).toThrow(InvalidCapabilityError);
  });
});

describe('management client requests', () => {
  it('sends Basic auth from the URL, keeps a path prefix and reports status and reason', async () => {
    const calls: { url: string; init: RequestInit }[] = [];
    const fakeFetch = (async (url: string, init: RequestInit) => {
      calls.push({ url, init });
      return new Response(JSON.stringify({ error: 'not_authorised', reason: 'Login failed' }), {
        status: 401,
      });
    }) as unknown as typeof fetch;
    const client = createManagementClient({
      url: 'https://ops%40corp:p%3Ass@mq.example:8443/rabbit/',
      fetch: fakeFetch,
    });
    const error = await client.listQueues('/').catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ManagementApiError);
    expect(error).toMatchObject({ status: 401, reason: 'Login failed', method: 'GET' });
    expect(calls[0]?.url).toBe('https://mq.example:8443/rabbit/api/queues/%2F?columns=name,vhost');
    const auth = new Headers(calls[0]?.init.headers).get('authorization');
    expect(Buffer.from(auth?.replace('Basic ', '') ?? '', 'base64').toString()).toBe('ops@corp:p:ss');
  });
});

describe.runIf(!!amqpUrl)('RabbitMQ management client', () => {
  const url = amqpUrl as string;
  let management: ManagementClient;
  const brokers: Broker[] = [];
  const prefixes: string[] = [];
  const agents: string[] = [];

  beforeAll(async () => {
    management = createManagementClient({ url: managementUrl(url) });
    await assertReachable(url);
  });

  afterEach(async () => {
    await Promise.all(brokers.splice(0).map((broker) => broker.close()));
    for (const agentId of agents.splice(0)) await management.revokeAgentUser(agentId);
    for (const prefix of prefixes.splice(0)) await deletePrefixed(management, prefix);
  });

  it('provisions an agent that consumes only its own queues, publishes nowhere, and loses access on revoke', async () => {
    const prefix = newPrefix();
    prefixes.push(prefix);
    const admin = createRabbitBroker({ url, prefix, logger: recordingLogger() });
    brokers.push(admin);
    await admin.setup();
    const shellQueue = await admin.ensureTaskQueue('shell');
    const defaultQueue = await admin.ensureTaskQueue(null);
    const gpuQueue = await admin.ensureTaskQueue('gpu');

    const agentId = `test-${randomBytes(4).toString('hex')}`;
    agents.push(agentId);
    const credentials = await management.provisionAgentUser({ agentId, capabilities: ['shell'], prefix });
    expect(credentials.username).toBe(`agent-${agentId}`);
    expect(credentials.password.length).toBeGreaterThanOrEqual(32);
    const agentUrl = withCredentials(url, credentials.username, credentials.password);

    const agentLog = recordingLogger();
    const agent = createRabbitBroker({
      url: agentUrl,
      prefix,
      consumeOnly: true,
      logger: agentLog,
      timeoutMs: 5_000,
    });
    brokers.push(agent);
    await agent.setup();
    expect(await agent.ensureTaskQueue('shell')).toBe(shellQueue);
    const got: Delivery[] = [];
    for (const queue of [shellQueue, defaultQueue]) {
      await agent.consume(queue, { prefetch: 5 }, (d) => {
        got.push(d);
        d.ack();
      });
    }
    await admin.publish([...messages(shellQueue, 0, 1), ...messages(defaultQueue, 1, 2)]);
    await until(() => got.length === 2, 'the agent to receive its two messages');
    expect(got.map((d) => d.routingKey).sort()).toEqual([shellQueue, defaultQueue].sort());

    await expect(agent.consume(gpuQueue, { prefetch: 1 }, () => {})).rejects.toBeInstanceOf(
      AccessRefusedError,
    );
    await expect(agent.publish(messages(shellQueue, 2, 3))).rejects.toBeInstanceOf(ConsumeOnlyError);

    // RabbitMQ itself refuses, not just our guard: publishing and declaring both fail with 403.
    const raw = await connect(agentUrl);
    try {
      const publishChannel = await raw.createConfirmChannel();
      const refused = new Promise<Error>((resolve) => publishChannel.on('error', resolve));
      publishChannel.publish(admin.topology.exchange, shellQueue, Buffer.from('{}'), {}, () => {});
      expect(await refused).toMatchObject({ code: 403 });
      const declareChannel = await raw.createChannel();
      declareChannel.on('error', () => {});
      await expect(declareChannel.assertQueue(`${prefix}tasks.todo.sneaky`)).rejects.toMatchObject({
        code: 403,
      });
    } finally {
      await raw.close();
    }

    await management.revokeAgentUser(agentId);
    await until(
      () => agentLog.messages('warn').includes('RabbitMQ connection lost; reconnecting in the background'),
      "the agent's open connection to be closed",
    );
    await expect(connect(agentUrl)).rejects.toThrow(/ACCESS-REFUSED/);
    // Revoking twice is fine.
    await management.revokeAgentUser(agentId);
  });

  it('re-keys an existing agent: the old password stops working', async () => {
    const agentId = `test-${randomBytes(4).toString('hex')}`;
    agents.push(agentId);
    const first = await management.provisionAgentUser({ agentId, capabilities: [] });
    const second = await management.provisionAgentUser({ agentId, capabilities: [] });
    expect(second.password).not.toBe(first.password);
    await expect(connect(withCredentials(url, first.username, first.password))).rejects.toThrow(
      /ACCESS-REFUSED/,
    );
    const connection = await connect(withCredentials(url, second.username, second.password));
    await connection.close();
  });

  it("carries the management API's status and reason on failure", async () => {
    const agentId = `test-${randomBytes(4).toString('hex')}`;
    agents.push(agentId);
    const error = await management
      .provisionAgentUser({ agentId, capabilities: [], vhost: 'no-such-vhost' })
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ManagementApiError);
    expect(error).toMatchObject({ status: 400, reason: 'vhost_or_user_not_found' });
    expect((error as Error).message).toContain('400');
  });

  it('lists and closes connections by their name', async () => {
    const prefix = newPrefix();
    prefixes.push(prefix);
    const logger = recordingLogger();
    const broker = createRabbitBroker({ url, prefix, connectionName: `${prefix}closeme`, logger });
    brokers.push(broker);
    await broker.setup();
    await until(
      async () => (await management.listConnections()).some((c) => c.connectionName === `${prefix}closeme`),
      'the connection to be listed',
    );
    expect(await management.closeConnections((c) => c.connectionName === `${prefix}closeme`)).toBe(1);
    await until(
      () => logger.messages('info').includes('RabbitMQ connection re-established'),
      'the reconnect',
    );
  });
});
