import { randomBytes } from 'node:crypto';
import { defaultBackoff } from '@devart/core';
import {
  type Broker,
  createInProcessBroker,
  createManagementClient,
  createRabbitBroker,
  type ManagementClient,
} from '@devart/queue';
import { type Agent, type AgentOptions, createAgent, type TaskCallback } from '@devart/sdk';
import pino from 'pino';
import { createApp } from '../apps/api/src/app';
import { createTokenVerifier } from '../apps/api/src/auth/jwt';
import { createMetrics } from '../apps/api/src/metrics';
import {
  type BrokerAccess,
  noBrokerAccess,
  rabbitBrokerAccess,
} from '../apps/api/src/services/broker-access';
import { watchDeadLetters } from '../apps/api/src/services/dead-letters';
import { createEventHub } from '../apps/api/src/services/event-hub';
import type { FailureSettings } from '../apps/api/src/services/failures';
import { type LeaseReaper, startLeaseReaper } from '../apps/api/src/services/lease-reaper';
import {
  type OutboxRelay,
  type OutboxRelayOptions,
  startOutboxRelay,
} from '../apps/api/src/services/outbox-relay';
import { type Reconciler, startReconciler } from '../apps/api/src/services/reconciler';
import { startSandboxSweeper } from '../apps/api/src/services/sandboxes';
import { TEST_JWT_SECRET, type TestApi } from './api';
import { createTestDatabase } from './db';
import { createTestSandboxes } from './sandbox';

/** Which broker this run tests: RabbitMQ when AMQP_URL is set, the in-process broker otherwise. */
export const brokerKind: 'rabbitmq' | 'in-process' = process.env.AMQP_URL ? 'rabbitmq' : 'in-process';

export const managementUrl = process.env.RABBITMQ_MANAGEMENT_URL ?? 'http://guest:guest@127.0.0.1:15672';

export interface PlatformOptions {
  leaseSeconds?: number;
  reaperIntervalMs?: number;
  failures?: FailureSettings;
  deliveryLimit?: number;
  relay?: Partial<Pick<OutboxRelayOptions, 'afterPublish' | 'batchSize' | 'pollIntervalMs'>>;
  /** The reconciler's timer (default every 1 s, republishing after 60 s: in effect never). */
  reconcile?: { afterSeconds?: number; intervalMs?: number };
  /** RabbitMQ runs only: another URL than AMQP_URL (a vhost and user of the test's own). */
  amqpUrl?: string;
  /** Where the platform logs (default: silent, or TEST_LOG_LEVEL). */
  logger?: pino.Logger;
}

export interface RegisteredTestAgent {
  id: string;
  apiKey: string;
  amqpUrl: string | undefined;
}

export interface TestPlatform extends TestApi {
  broker: Broker;
  relay: OutboxRelay;
  reaper: LeaseReaper;
  reconciler: Reconciler;
  prefix: string;
  management: ManagementClient | undefined;
  registerAgent(capabilities: string[], name?: string): Promise<RegisteredTestAgent>;
  /** An SDK agent talking to the in-process API (no port) and the run's broker. */
  startAgent(
    agent: RegisteredTestAgent,
    callback: TaskCallback,
    options?: Partial<AgentOptions>,
  ): Promise<Agent>;
  /**
   * Creates tasks through the API as a supervisor, up to 1,000 per `POST /api/tasks/batch`;
   * returns their ids in order. `body` is shared, or built per task from its index.
   */
  createTasks(
    count: number,
    body?: Record<string, unknown> | ((index: number) => Record<string, unknown>),
  ): Promise<string[]>;
  waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

/**
 * The whole platform in one process, on the database and broker this run tests: API, outbox
 * relay, lease reaper and dead-letter watcher, with agents built on the real SDK.
 */
export async function createTestPlatform(options: PlatformOptions = {}): Promise<TestPlatform> {
  const database = await createTestDatabase();
  const logger = options.logger ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const prefix = `t${randomBytes(4).toString('hex')}.`;
  const deliveryLimit = options.deliveryLimit ?? 5;
  let broker: Broker;
  let brokerAccess: BrokerAccess = noBrokerAccess;
  let management: ManagementClient | undefined;
  const amqpUrl = process.env.AMQP_URL && (options.amqpUrl ?? process.env.AMQP_URL);
  if (amqpUrl) {
    // The prefix in the connection name lets a test close this platform's connections only.
    broker = createRabbitBroker({
      url: amqpUrl,
      prefix,
      deliveryLimit,
      logger,
      connectionName: `devart-test-${prefix}`,
    });
    management = createManagementClient({ url: managementUrl });
    const agentUrl = new URL(amqpUrl);
    agentUrl.username = '';
    agentUrl.password = '';
    brokerAccess = rabbitBrokerAccess({ broker, management, agentUrl: agentUrl.toString(), prefix });
  } else {
    broker = createInProcessBroker({ deliveryLimit });
  }
  await broker.setup();
  const failures = options.failures ?? { backoff: { baseMs: 10, capMs: 50 } };
  const events = createEventHub({ db: database.db, logger });
  const sandboxes = createTestSandboxes(database.db, logger);
  const sweeper = startSandboxSweeper({ service: sandboxes.service, logger, intervalMs: 100 });
  const metrics = createMetrics(database.db);
  const app = createApp({
    metrics,
    sandboxes: sandboxes.service,
    events,
    db: database.db,
    verifyToken: createTokenVerifier({ secret: TEST_JWT_SECRET }),
    logger,
    recordUsers: true,
    brokerAccess,
    leaseSeconds: options.leaseSeconds ?? 30,
    failures,
  });
  const relay = await startOutboxRelay({
    db: database.db,
    broker,
    logger,
    pollIntervalMs: 200,
    ...options.relay,
  });
  const reaper = startLeaseReaper({
    db: database.db,
    logger,
    intervalMs: options.reaperIntervalMs ?? 200,
    failures,
  });
  const reconciler = startReconciler({
    db: database.db,
    broker,
    logger,
    intervalMs: options.reconcile?.intervalMs ?? 1000,
    afterSeconds: options.reconcile?.afterSeconds ?? 60,
    onRepublished: (n) => metrics.tasksRepublished(n),
  });
  const deadLetters = await watchDeadLetters({ db: database.db, broker, logger });
  const agents: Agent[] = [];
  const registered: string[] = [];

  const { signUserToken } = await import('../apps/api/src/auth/jwt');
  const token: TestApi['token'] = (role, o = {}) =>
    signUserToken(TEST_JWT_SECRET, { role, sub: o.sub, ttlSeconds: o.ttlSeconds ?? 600 });
  const call: TestApi['call'] = async (method, path, { auth, body, headers = {} } = {}) => {
    const h: Record<string, string> = { ...headers };
    if (auth) h.authorization = auth.startsWith('Bearer') ? auth : `Bearer ${auth}`;
    if (body !== undefined) h['content-type'] ??= 'application/json';
    return app.request(path, {
      method,
      headers: h,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
  };
  const localFetch = ((input: string | URL | Request, init?: RequestInit) =>
    app.request(input instanceof Request ? input : String(input), init)) as typeof fetch;

  const platform: TestPlatform = {
    ...database,
    app,
    sandboxes,
    token,
    call,
    broker,
    relay,
    reaper,
    reconciler,
    prefix,
    management,
    async registerAgent(capabilities, name = 'test-agent') {
      const res = await call('POST', '/api/agents', {
        auth: await token('admin'),
        body: { name, capabilities },
      });
      if (res.status !== 201) throw new Error(`register agent: ${res.status} ${await res.text()}`);
      const body = (await res.json()) as { id: string; api_key: string; broker: { url: string } | null };
      registered.push(body.id);
      return { id: body.id, apiKey: body.api_key, amqpUrl: body.broker?.url };
    },
    async startAgent(agent, callback, agentOptions = {}) {
      const sdkAgent = createAgent({
        apiUrl: 'http://devart.test',
        apiKey: agent.apiKey,
        ...(agent.amqpUrl ? { amqpUrl: agent.amqpUrl, prefix } : { broker }),
        capabilities: [],
        fetch: localFetch,
        shutdownGraceMs: 2000,
        // Per-task calls by default, so tests can watch each one; the batched path has tests of its own.
        batchReports: false,
        logger,
        ...agentOptions,
      });
      await sdkAgent.startConsuming(callback);
      agents.push(sdkAgent);
      return sdkAgent;
    },
    async createTasks(count, body = {}) {
      const auth = await token('supervisor');
      const bodyOf = typeof body === 'function' ? body : () => body;
      const ids: string[] = [];
      for (let from = 0; from < count; from += 1000) {
        const tasks = Array.from({ length: Math.min(1000, count - from) }, (_, i) => ({
          title: `task ${from + i}`,
          ...bodyOf(from + i),
        }));
        const res = await call('POST', '/api/tasks/batch', { auth, body: { tasks } });
        if (res.status !== 201) throw new Error(`create tasks: ${res.status} ${await res.text()}`);
        ids.push(...((await res.json()) as { items: { id: string }[] }).items.map((t) => t.id));
      }
      return ids;
    },
    async waitFor(what, probe, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const value = await probe();
        if (value !== undefined && value !== false) return value as never;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async close() {
      await Promise.all(agents.map((a) => a.stop().catch(() => {})));
      await deadLetters.cancel().catch(() => {});
      await events.stop();
      reaper.stop();
      reconciler.stop();
      await relay.stop();
      if (management) {
        for (const id of registered) await management.revokeAgentUser(id).catch(() => {});
        const queues = await management.listQueues().catch(() => []);
        for (const q of queues)
          if (q.name.startsWith(prefix)) await management.deleteQueue(q.name).catch(() => {});
        const exchanges = await management.listExchanges().catch(() => []);
        for (const e of exchanges)
          if (e.name.startsWith(prefix)) await management.deleteExchange(e.name).catch(() => {});
      }
      await broker.close();
      sweeper.stop();
      await sandboxes.cleanup();
      await database.drop();
    },
  };
  return platform;
}

export { defaultBackoff };
