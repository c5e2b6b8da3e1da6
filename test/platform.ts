import { randomBytes } from 'node:crypto';
import { defaultBackoff } from '@devart/core';
import { type Broker, DEFAULT_DELIVERY_LIMIT, type ManagementClient } from '@devart/queue';
import { type Agent, type AgentOptions, createAgent, type TaskCallback } from '@devart/sdk';
import type pino from 'pino';
import {
  defaultSettings,
  type PlatformInputs,
  type PlatformSettings,
  wirePlatform,
} from '../apps/api/src/platform';
import { createBroker } from '../apps/api/src/server';
import type { FailureSettings } from '../apps/api/src/services/failures';
import type { LeaseReaper } from '../apps/api/src/services/lease-reaper';
import type { OutboxRelay } from '../apps/api/src/services/outbox-relay';
import type { Reconciler } from '../apps/api/src/services/reconciler';
import { callOf, replicasOver, type TestApi, testLogger, testPlatformInputs, testToken } from './api';
import { createTestDatabase } from './db';
import { createTestSandboxBackend } from './sandbox';

/** Which broker this run tests: RabbitMQ when AMQP_URL is set, the in-process broker otherwise. */
export const brokerKind: 'rabbitmq' | 'in-process' = process.env.AMQP_URL ? 'rabbitmq' : 'in-process';

export const managementUrl = process.env.RABBITMQ_MANAGEMENT_URL ?? 'http://guest:guest@127.0.0.1:15672';

export interface PlatformOptions {
  leaseSeconds?: number;
  reaperIntervalMs?: number;
  failures?: FailureSettings;
  deliveryLimit?: number;
  relay?: PlatformInputs['relay'];
  /** The reconciler's timer (default every 1 s, republishing after an hour: in effect never, even on a loaded machine). */
  reconcile?: { afterSeconds?: number; intervalMs?: number };
  /** RabbitMQ runs only: another URL than AMQP_URL (a vhost and user of the test's own). */
  amqpUrl?: string;
  /** Where the platform logs (default: silent, or TEST_LOG_LEVEL). */
  logger?: pino.Logger;
  /** Settings beyond the ones above (integrations: notifications, github), over the defaults. */
  settings?: Partial<PlatformSettings>;
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
  /**
   * An SDK agent talking to the in-process API (no port) and the run's broker, on the SDK's
   * defaults (batched reports, as users run it); `{ batchReports: false }` for the per-task calls.
   */
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
 * The whole platform in one process, on the database and broker this run tests, as wirePlatform
 * builds it for `devart start`: API, outbox relay, lease reaper, reconciler, dead-letter watcher
 * and sandbox sweeper, with agents built on the real SDK. The options are wirePlatform's settings;
 * timers are shorter than production's so tests do not wait.
 */
export async function createTestPlatform(options: PlatformOptions = {}): Promise<TestPlatform> {
  const database = await createTestDatabase();
  const logger = options.logger ?? testLogger();
  const prefix = `t${randomBytes(4).toString('hex')}.`;
  const amqpUrl = process.env.AMQP_URL && (options.amqpUrl ?? process.env.AMQP_URL);
  const { broker, brokerAccess, management } = createBroker(
    {
      AMQP_URL: amqpUrl || undefined,
      AGENT_AMQP_URL: undefined,
      // The admin's management API even when the test's own user (amqpUrl) could not use it.
      RABBITMQ_MANAGEMENT_URL: managementUrl,
      AMQP_PREFIX: prefix,
      DELIVERY_LIMIT: options.deliveryLimit ?? DEFAULT_DELIVERY_LIMIT,
    },
    logger,
    // The prefix in the connection name lets a test close this platform's connections only.
    { connectionName: `devart-test-${prefix}` },
  );
  const sandboxBackend = createTestSandboxBackend();
  let wired: Awaited<ReturnType<typeof wirePlatform>>;
  try {
    wired = await wirePlatform({
      ...testPlatformInputs(database.db, { logger, sandboxes: sandboxBackend.backend }),
      background: true,
      broker: { broker, brokerAccess },
      settings: {
        ...defaultSettings,
        leaseSeconds: options.leaseSeconds ?? 30,
        reaperIntervalMs: options.reaperIntervalMs ?? 200,
        failures: options.failures ?? { backoff: { baseMs: 10, capMs: 50 } },
        // Every second, republishing after 60 s: in effect never, unless a test asks.
        reconcile: { intervalMs: 1000, afterSeconds: 3600, ...options.reconcile },
        sandboxSweepMs: 100,
        ...options.settings,
      },
      relay: { pollIntervalMs: 200, ...options.relay },
    });
  } catch (error) {
    await broker.close();
    await sandboxBackend.cleanup();
    await database.drop();
    throw error;
  }
  const { relay, reaper, reconciler } = wired.background!;
  const { replica, closeReplicas } = replicasOver(database.db, { logger });
  const app = wired.app;
  const agents: Agent[] = [];
  const registered: string[] = [];
  const token = testToken;
  const call = callOf(app);
  const localFetch = ((input: string | URL | Request, init?: RequestInit) =>
    app.request(input instanceof Request ? input : String(input), init)) as typeof fetch;

  const platform: TestPlatform = {
    ...database,
    app,
    sandboxes: { ...sandboxBackend, service: wired.sandboxes },
    token,
    call,
    replica,
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
      await closeReplicas();
      await wired.close();
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
      await sandboxBackend.cleanup();
      await database.drop();
    },
  };
  return platform;
}

export { defaultBackoff };
