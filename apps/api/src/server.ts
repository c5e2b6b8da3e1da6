import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import {
  connectPostgres,
  DatabaseUnavailableError,
  type Db,
  migrate,
  openPglite,
  ownsAuthUsers,
} from '@devart/db';
import {
  type Broker,
  createInProcessBroker,
  createManagementClient,
  createRabbitBroker,
} from '@devart/queue';
import {
  createKubernetesProvider,
  createLocalProvider,
  detectBubblewrap,
  kubernetesConfigFromEnv,
} from '@devart/sandbox';
import { serve } from '@hono/node-server';
import type { Logger } from 'pino';
import { createApp } from './app';
import { createTokenVerifier } from './auth/jwt';
import { answerClientError } from './client-error';
import type { Config } from './config';
import { lockDataDir, pgliteDir, readOrCreateSecret } from './data-dir';
import { createMetrics } from './metrics';
import { type BrokerAccess, noBrokerAccess, rabbitBrokerAccess } from './services/broker-access';
import { watchDeadLetters } from './services/dead-letters';
import { createEventHub } from './services/event-hub';
import { heartbeatGraceMs, startLeaseReaper } from './services/lease-reaper';
import { startOutboxRelay } from './services/outbox-relay';
import { startReconciler } from './services/reconciler';
import { createSandboxService, type SandboxBackend, startSandboxSweeper } from './services/sandboxes';

export interface OpenedDatabase {
  db: Db;
  close(): Promise<void>;
}

/** The database the configuration names: PostgreSQL when DATABASE_URL is set, else PGlite in the data directory. */
export async function openDatabase(config: Config, logger?: Logger): Promise<OpenedDatabase> {
  if (config.DATABASE_URL) {
    let outageStartedAt = 0;
    const db = connectPostgres(config.DATABASE_URL, {
      // One warning when the database stops answering and one line when it is back, however many
      // requests and background loops meet the outage in between (they answer 503 or back off).
      onAvailabilityChange(change) {
        if (!change.available) {
          outageStartedAt = Date.now();
          logger?.warn(
            { cause: errorSummary(change.error.cause) },
            'database unreachable; answering 503 until it returns',
          );
        } else {
          logger?.info({ outage_ms: Date.now() - outageStartedAt }, 'database reachable again');
        }
      },
    });
    return { db, close: () => db.close() };
  }
  const unlock = lockDataDir(config.DEVART_DATA_DIR);
  try {
    const db = await openPglite({ dataDir: pgliteDir(config.DEVART_DATA_DIR) });
    return {
      db,
      async close() {
        await db.close();
        unlock();
      },
    };
  } catch (error) {
    unlock();
    throw error;
  }
}

/** The driver's code and message, without a stack: an outage is not a bug. */
function errorSummary(error: unknown): { code?: string; message: string } {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return { ...(typeof code === 'string' ? { code } : {}), message: String(message ?? error) };
}

/** The broker the configuration names, and how agents get access to it. */
export function createBroker(config: Config, logger: Logger): { broker: Broker; brokerAccess: BrokerAccess } {
  if (!config.AMQP_URL) {
    return {
      broker: createInProcessBroker({ deliveryLimit: config.DELIVERY_LIMIT }),
      brokerAccess: noBrokerAccess,
    };
  }
  const amqp = new URL(config.AMQP_URL);
  const managementUrl =
    config.RABBITMQ_MANAGEMENT_URL ??
    `http://${amqp.username || 'guest'}:${amqp.password || 'guest'}@${amqp.hostname}:15672`;
  const agentUrl = new URL(config.AGENT_AMQP_URL ?? config.AMQP_URL);
  agentUrl.username = '';
  agentUrl.password = '';
  const broker = createRabbitBroker({
    url: config.AMQP_URL,
    prefix: config.AMQP_PREFIX,
    deliveryLimit: config.DELIVERY_LIMIT,
    logger,
    connectionName: 'devart-api',
  });
  return {
    broker,
    brokerAccess: rabbitBrokerAccess({
      broker,
      management: createManagementClient({ url: managementUrl }),
      agentUrl: agentUrl.toString(),
      prefix: config.AMQP_PREFIX,
    }),
  };
}

/**
 * The sandbox provider the configuration names. A local provider without bubblewrap is not an
 * error: the platform runs, warns once, and answers sandbox requests 503 with the same hint.
 */
export async function createSandboxBackend(
  config: Config,
  logger: Logger,
  env: Record<string, string | undefined> = process.env,
): Promise<SandboxBackend> {
  if (config.SANDBOX_PROVIDER === 'none') {
    return { unavailable: 'Sandboxes are switched off on this server (SANDBOX_PROVIDER=none).' };
  }
  if (config.SANDBOX_PROVIDER === 'kubernetes') {
    return { provider: createKubernetesProvider(kubernetesConfigFromEnv(env)) };
  }
  const bubblewrap = await detectBubblewrap();
  if (!bubblewrap.available) {
    logger.warn(`sandboxes are unavailable: ${bubblewrap.hint}`);
    return { unavailable: `Sandboxes are unavailable on this server: ${bubblewrap.hint}.` };
  }
  const provider = createLocalProvider({
    rootDir: config.SANDBOX_ROOT ?? join(config.DEVART_DATA_DIR, 'sandboxes'),
  });
  logger.info({ bwrap: bubblewrap.version, limits: provider.limits }, 'local sandboxes (bubblewrap) ready');
  return { provider };
}

export interface RunningPlatform {
  url: string;
  port: number;
  secret: string | undefined;
  broker: Broker;
  db: Db;
  /** The sandbox provider in use, or why there is none. */
  sandboxes: { provider: string } | { provider?: undefined; unavailable: string };
  close(): Promise<void>;
}

/**
 * Runs `step` (the migrations, the first thing to touch the database) until the database answers:
 * an API started beside a PostgreSQL that is still starting (a deploy, a host reboot) waits for it
 * with one log line instead of exiting. Other errors, and an outage longer than `waitMs`, are thrown.
 */
export async function waitForDatabase<T>(
  step: () => Promise<T>,
  {
    logger,
    waitMs,
    sleep = (ms: number) => new Promise((r) => setTimeout(r, ms)),
  }: {
    logger: Logger;
    waitMs: number;
    sleep?: (ms: number) => Promise<unknown>;
  },
): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await step();
    } catch (error) {
      if (!(error instanceof DatabaseUnavailableError) || Date.now() >= deadline) throw error;
      if (attempt === 0) {
        logger.warn(
          { cause: errorSummary(error.cause), wait_seconds: waitMs / 1000 },
          'the database does not answer yet; waiting for it (DATABASE_WAIT_SECONDS)',
        );
      }
      await sleep(Math.min(2000, 250 * 2 ** attempt));
    }
  }
}

/** Migrates, connects the broker, then serves the API and runs the outbox relay and lease reaper until `close()`. */
export async function startPlatform(config: Config, logger: Logger): Promise<RunningPlatform> {
  const database = await openDatabase(config, logger);
  const cleanup: (() => Promise<void> | void)[] = [() => database.close()];
  const closeAll = async () => {
    for (const step of cleanup.reverse()) await step();
  };
  try {
    const report = await waitForDatabase(
      () =>
        migrate(database.db, {
          onApplied: (m) => logger.info({ migration: m.name }, 'migration applied'),
        }),
      { logger, waitMs: config.DATABASE_WAIT_SECONDS * 1000 },
    );
    logger.info({ applied: report.applied.length, database: database.db.kind }, 'database ready');

    const { broker, brokerAccess } = createBroker(config, logger);
    cleanup.push(() => broker.close());
    await broker.setup();
    const relay = await startOutboxRelay({ db: database.db, broker, logger });
    cleanup.push(() => relay.stop());
    const failures = { backoff: { baseMs: config.RETRY_BASE_MS, capMs: config.RETRY_CAP_MS } };
    const reaper = startLeaseReaper({
      db: database.db,
      logger,
      intervalMs: config.REAPER_INTERVAL_SECONDS * 1000,
      failures,
      graceMs: heartbeatGraceMs(config.TASK_LEASE_SECONDS),
    });
    cleanup.push(() => reaper.stop());
    const deadLetters = await watchDeadLetters({ db: database.db, broker, logger });
    cleanup.push(() => deadLetters.cancel());
    const metrics = createMetrics(database.db);
    const reconciler = startReconciler({
      db: database.db,
      broker,
      logger,
      intervalMs: config.RECONCILE_INTERVAL_SECONDS * 1000,
      afterSeconds: config.RECONCILE_AFTER_SECONDS,
      onRepublished: (n) => metrics.tasksRepublished(n),
    });
    cleanup.push(() => reconciler.stop());

    if (config.DATABASE_URL && !config.JWT_SECRET && !config.JWT_JWKS_URL) {
      logger.warn(
        'JWT_SECRET is unset: using the secret in the data directory. Every API replica must share one secret; set JWT_SECRET.',
      );
    }
    const events = createEventHub({ db: database.db, logger });
    cleanup.push(() => events.stop());
    const sandboxBackend = await createSandboxBackend(config, logger);
    const sandboxes = createSandboxService({
      db: database.db,
      backend: sandboxBackend,
      logger,
      // Local sandboxes live on this host only: other replicas must leave them alone.
      providerKey: sandboxBackend.provider?.name === 'local' ? `local@${hostname()}` : undefined,
    });
    // A crash leaves nothing running: what the table does not know as live is removed.
    await sandboxes
      .reconcile()
      .catch((error) => logger.error({ err: error }, 'sandbox reconciliation failed'));
    const sweeper = startSandboxSweeper({
      service: sandboxes,
      logger,
      intervalMs: config.SANDBOX_SWEEP_SECONDS * 1000,
    });
    cleanup.push(() => sweeper.stop());
    const secret =
      config.JWT_SECRET ?? (config.JWT_JWKS_URL ? undefined : readOrCreateSecret(config.DEVART_DATA_DIR));
    const app = createApp({
      db: database.db,
      verifyToken: createTokenVerifier({
        secret,
        jwksUrl: config.JWT_JWKS_URL,
        issuer: config.JWT_ISSUER,
        audience: config.JWT_AUDIENCE,
      }),
      logger,
      recordUsers: await ownsAuthUsers(database.db),
      brokerAccess,
      leaseSeconds: config.TASK_LEASE_SECONDS,
      failures,
      events,
      sandboxes,
      metrics,
    });

    const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
      const s = serve({ fetch: app.fetch, port: config.PORT, hostname: config.HOST }, () => resolve(s));
      s.once('error', reject);
      // Requests Node cannot parse (a URL over its header limit…) are answered as problem+json too.
      s.on('clientError', answerClientError);
    });
    cleanup.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          // Keep-alive sockets would hold close() open until they time out.
          (server as { closeAllConnections?: () => void }).closeAllConnections?.();
        }),
    );
    const port = (server.address() as AddressInfo).port;
    const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? 'localhost' : config.HOST;
    return {
      url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
      port,
      secret,
      broker,
      db: database.db,
      sandboxes: sandboxBackend.provider
        ? { provider: sandboxBackend.provider.name }
        : { unavailable: sandboxBackend.unavailable },
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
