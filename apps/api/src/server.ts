import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { connectPostgres, DatabaseUnavailableError, type Db, migrate, openPglite } from '@devart/db';
import {
  type Broker,
  createInProcessBroker,
  createManagementClient,
  createRabbitBroker,
  type ManagementClient,
} from '@devart/queue';
import {
  bubblewrapWarnings,
  createKubernetesProvider,
  createLocalProvider,
  detectBubblewrap,
  limitsWarning,
} from '@devart/sandbox';
import { serve } from '@hono/node-server';
import type { Logger } from 'pino';
import { answerClientError } from './client-error';
import { type Config, configWarnings, managementUrlFor } from './config';
import { lockDataDir, pgliteDir, privateDir, readOrCreateSecret } from './data-dir';
import { type PlatformBroker, platformSettings, wirePlatform } from './platform';
import { noBrokerAccess, rabbitBrokerAccess } from './services/broker-access';
import type { SandboxBackend } from './services/sandboxes';
import { logTransitions } from './services/transition-log';

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
    const db = await openPglite({
      dataDir: privateDir(pgliteDir(config.DEVART_DATA_DIR), { tighten: true }),
    });
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

/** The broker the configuration names, how agents get access to it, and (RabbitMQ) its management API. */
export function createBroker(
  config: Pick<
    Config,
    'AMQP_URL' | 'AGENT_AMQP_URL' | 'RABBITMQ_MANAGEMENT_URL' | 'AMQP_PREFIX' | 'DELIVERY_LIMIT'
  >,
  logger: Logger,
  {
    connectionName = 'devart-api',
  }: {
    /** How RabbitMQ lists this process's connections. */
    connectionName?: string;
  } = {},
): PlatformBroker & { management?: ManagementClient } {
  if (!config.AMQP_URL) {
    return {
      broker: createInProcessBroker({ deliveryLimit: config.DELIVERY_LIMIT }),
      brokerAccess: noBrokerAccess,
    };
  }
  const managementUrl = managementUrlFor(config)!;
  // Agents get the address only: each receives a broker user of its own when it registers.
  const agentUrl = new URL(config.AGENT_AMQP_URL ?? config.AMQP_URL);
  agentUrl.username = '';
  agentUrl.password = '';
  const broker = createRabbitBroker({
    url: config.AMQP_URL,
    prefix: config.AMQP_PREFIX,
    deliveryLimit: config.DELIVERY_LIMIT,
    logger,
    connectionName,
  });
  const management = createManagementClient({ url: managementUrl });
  return {
    broker,
    management,
    brokerAccess: rabbitBrokerAccess({
      broker,
      management,
      agentUrl: agentUrl.toString(),
      prefix: config.AMQP_PREFIX,
    }),
  };
}

/**
 * The sandbox provider the configuration names. A local provider without bubblewrap is not an
 * error: the platform runs, warns once, and answers sandbox requests 503 with the same hint.
 */
export async function createSandboxBackend(config: Config, logger: Logger): Promise<SandboxBackend> {
  if (config.SANDBOX_PROVIDER === 'none') {
    return { unavailable: 'Sandboxes are switched off on this server (SANDBOX_PROVIDER=none).' };
  }
  if (config.SANDBOX_PROVIDER === 'kubernetes') {
    return { provider: createKubernetesProvider(config.kubernetes) };
  }
  const bubblewrap = await detectBubblewrap();
  if (!bubblewrap.available) {
    logger.warn(`sandboxes are unavailable: ${bubblewrap.hint}`);
    return { unavailable: `Sandboxes are unavailable on this server: ${bubblewrap.hint}.` };
  }
  const provider = createLocalProvider({
    rootDir: config.SANDBOX_ROOT ?? join(config.DEVART_DATA_DIR, 'sandboxes'),
    workspaceLimitBytes: config.SANDBOX_WORKSPACE_MIB * 1024 * 1024,
  });
  logger.info(
    { bwrap: bubblewrap.version, features: bubblewrap.features, limits: provider.limits },
    'local sandboxes (bubblewrap) ready',
  );
  for (const warning of bubblewrapWarnings(bubblewrap)) logger.warn(`local sandboxes: ${warning}`);
  const cgroupWarning = limitsWarning(provider.limits);
  if (cgroupWarning) logger.warn(`local sandboxes: ${cgroupWarning}`);
  if (provider.limits.user === 'namespace')
    logger.warn(
      'local sandboxes: commands run as uid 65534 inside their user namespace only; on the host they ' +
        'keep the API’s root uid (running bwrap as nobody failed here: are unprivileged user namespaces allowed?)',
    );
  if (provider.limits.workspace === 'none')
    logger.warn(
      'local sandboxes: workspaces are not size-limited (mounting a tmpfs needs root): a sandbox can ' +
        'fill the disk of SANDBOX_ROOT up to the per-file limit per file; put SANDBOX_ROOT on its own filesystem',
    );
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

/** Migrates, connects the broker, wires the platform (wirePlatform) and serves it until `close()`. */
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

    const broker = createBroker(config, logger);
    cleanup.push(() => broker.broker.close());
    for (const warning of configWarnings(config)) logger.warn(warning);
    if (config.DATABASE_URL && !config.JWT_SECRET && !config.JWT_JWKS_URL) {
      logger.warn(
        'JWT_SECRET is unset: using the secret in the data directory. Every API replica must share one secret; set JWT_SECRET.',
      );
    }
    const secret =
      config.JWT_SECRET ?? (config.JWT_JWKS_URL ? undefined : readOrCreateSecret(config.DEVART_DATA_DIR));
    const sandboxBackend = await createSandboxBackend(config, logger);
    const wired = await wirePlatform({
      db: database.db,
      broker,
      sandboxes: sandboxBackend,
      // Local sandboxes live on this host only: other replicas must leave them alone.
      sandboxProviderKey: sandboxBackend.provider?.name === 'local' ? `local@${hostname()}` : undefined,
      settings: platformSettings(config),
      auth: {
        secret,
        jwksUrl: config.JWT_JWKS_URL,
        issuer: config.JWT_ISSUER,
        audience: config.JWT_AUDIENCE,
      },
      logger,
    });
    cleanup.push(() => wired.close());
    cleanup.push(logTransitions({ events: wired.events, logger }));
    const app = wired.app;

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
      broker: broker.broker,
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
