import { type Db, findAgentByKeyHash, ownsAuthUsers } from '@devart/db';
import type { Broker } from '@devart/queue';
import type { Logger } from 'pino';
import { createApp } from './app';
import { createAgentKeyCache } from './auth/agent-key-cache';
import { followRevocations } from './auth/agent-revocations';
import { createTokenVerifier, type JwtOptions } from './auth/jwt';
import { type Config, ConfigSchema } from './config';
import { createMetrics, type Metrics } from './metrics';
import type { EventStreamSettings } from './routes/events';
import { type BrokerAccess, noBrokerAccess } from './services/broker-access';
import { watchDeadLetters } from './services/dead-letters';
import {
  type DeliveryChannel,
  type DeliveryLoop,
  type DeliveryLoopOptions,
  startDeliveryLoop,
} from './services/deliveries';
import { createEventHub, type EventHub } from './services/event-hub';
import { type EventRetention, startEventRetention } from './services/event-retention';
import type { FailureSettings } from './services/failures';
import { createGithubApp, type GithubAppSettings } from './services/github-app';
import { githubChannel, githubIntegration, linkRunToGithub } from './services/github-write-back';
import type { IntegrationInfo } from './services/integrations';
import { heartbeatGraceMs, type LeaseReaper, startLeaseReaper } from './services/lease-reaper';
import { type NotificationPolicy, startDailySummaries } from './services/notifier';
import { type OutboxRelay, type OutboxRelayOptions, startOutboxRelay } from './services/outbox-relay';
import { type Reconciler, startReconciler } from './services/reconciler';
import type { SandboxPolicy } from './services/sandbox-policy';
import {
  createSandboxService,
  type SandboxBackend,
  type SandboxService,
  startSandboxSweeper,
} from './services/sandboxes';
import { type TelegramSettings, telegramChannel } from './services/telegram';

/** Notifications (TELEGRAM_*, NOTIFY_*, PUBLIC_URL) and the delivery loop that sends them. */
export interface NotificationSettings {
  /** Unset = no Telegram. */
  telegram?: TelegramSettings;
  policy: NotificationPolicy;
  /** The delivery loop's timings (defaults: the loop's own); tests shorten them. */
  delivery?: Partial<
    Pick<DeliveryLoopOptions, 'pollIntervalMs' | 'backoff' | 'leaseSeconds' | 'sendTimeoutMs'>
  >;
  /** Test hook: how the channels reach their services (default: the global fetch). */
  fetch?: typeof fetch;
}

/** The timings and policies of a running platform, in the units the code uses. */
export interface PlatformSettings {
  /** Lease of a started task (TASK_LEASE_SECONDS). */
  leaseSeconds: number;
  /** How often the lease reaper runs (REAPER_INTERVAL_SECONDS). */
  reaperIntervalMs: number;
  /**
   * How long the reaper holds back after start-up and after the database returns; unset =
   * heartbeatGraceMs(leaseSeconds), as in production.
   */
  reaperGraceMs?: number;
  /** Retry backoff of tasks without their own (RETRY_BASE_MS, RETRY_CAP_MS). */
  failures: FailureSettings;
  /** The reconciler's timer and how old an unstarted message must be to be republished (RECONCILE_*). */
  reconcile: { intervalMs: number; afterSeconds: number };
  /** How often the sandbox sweeper runs (SANDBOX_SWEEP_SECONDS). */
  sandboxSweepMs: number;
  /** Commands one sandbox may run at once in this process (SANDBOX_MAX_CONCURRENT_EXECS). */
  sandboxMaxConcurrentExecs: number;
  /** What agents may ask of a sandbox (SANDBOX_POLICY_FILE, SANDBOX_MAX_*, SANDBOX_DENIED_CIDRS…). */
  sandboxPolicy: SandboxPolicy;
  /** How long a silent agent holding no task stays IDLE before it is marked OFFLINE (AGENT_OFFLINE_SECONDS). */
  agentOfflineSeconds: number;
  /** How old an event gets before the cleanup deletes it (EVENTS_RETENTION_DAYS), and how often it runs. */
  eventsRetention: { days: number; intervalMs: number };
  /** An exec still running after this long is answered at once (default: createApp's). */
  slowExecAfterMs?: number;
  /** Notifications through the delivery outbox (TELEGRAM_*, NOTIFY_*, PUBLIC_URL). */
  notifications: NotificationSettings;
  /**
   * GitHub: the webhook's secret (GITHUB_WEBHOOK_SECRET; unset = POST /api/webhooks/github answers
   * 404) and the App that writes check runs and comments back (GITHUB_APP_ID…; unset = none).
   */
  github: { webhookSecret?: string; app?: GithubAppSettings };
  /** Bearer token GET /metrics requires (METRICS_TOKEN); unset = open. */
  metricsToken?: string;
}

/** The settings a configuration names. */
export function platformSettings(config: Config): PlatformSettings {
  return {
    leaseSeconds: config.TASK_LEASE_SECONDS,
    reaperIntervalMs: config.REAPER_INTERVAL_SECONDS * 1000,
    failures: { backoff: { baseMs: config.RETRY_BASE_MS, capMs: config.RETRY_CAP_MS } },
    reconcile: {
      intervalMs: config.RECONCILE_INTERVAL_SECONDS * 1000,
      afterSeconds: config.RECONCILE_AFTER_SECONDS,
    },
    sandboxSweepMs: config.SANDBOX_SWEEP_SECONDS * 1000,
    sandboxMaxConcurrentExecs: config.SANDBOX_MAX_CONCURRENT_EXECS,
    sandboxPolicy: config.sandboxPolicy,
    agentOfflineSeconds: config.AGENT_OFFLINE_SECONDS,
    // Every five minutes: a day's events fall due a few thousand rows at a time, well within one run.
    eventsRetention: { days: config.EVENTS_RETENTION_DAYS, intervalMs: 5 * 60_000 },
    notifications: {
      telegram:
        config.TELEGRAM_BOT_TOKEN && config.TELEGRAM_CHAT_ID
          ? {
              token: config.TELEGRAM_BOT_TOKEN,
              chatId: config.TELEGRAM_CHAT_ID,
              apiUrl: config.TELEGRAM_API_URL,
            }
          : undefined,
      policy: {
        events: config.NOTIFY_EVENTS,
        capabilities: config.NOTIFY_CAPABILITIES,
        excludeCapabilities: config.NOTIFY_EXCLUDE_CAPABILITIES,
        publicUrl: config.PUBLIC_URL,
        dailySummaryAt: config.NOTIFY_DAILY_SUMMARY_AT,
      },
    },
    github: {
      webhookSecret: config.GITHUB_WEBHOOK_SECRET,
      app:
        config.GITHUB_APP_ID && config.GITHUB_PRIVATE_KEY && config.GITHUB_INSTALLATION_ID
          ? {
              appId: config.GITHUB_APP_ID,
              privateKey: config.GITHUB_PRIVATE_KEY,
              installationId: config.GITHUB_INSTALLATION_ID,
              apiUrl: config.GITHUB_API_URL,
            }
          : undefined,
    },
    metricsToken: config.METRICS_TOKEN,
  };
}

/** The settings of an empty environment: the configuration's defaults, written once in config.ts. */
export const defaultSettings: PlatformSettings = platformSettings(ConfigSchema.parse({}));

/** A broker and how agents get access to it (see createBroker in server.ts). */
export interface PlatformBroker {
  broker: Broker;
  brokerAccess: BrokerAccess;
}

interface CommonInputs {
  db: Db;
  /** The sandbox provider, or why there is none. */
  sandboxes: SandboxBackend;
  /**
   * What the `provider` column records, and which rows this process may act on at the provider
   * (default: the provider's name). startPlatform passes `local@<hostname>` for local sandboxes.
   */
  sandboxProviderKey?: string;
  settings: PlatformSettings;
  /** How user tokens are verified (JWT_SECRET or the data directory's secret, JWT_JWKS_URL…). */
  auth: JwtOptions;
  logger: Logger;
  /** Test hooks and timings of the outbox relay (defaults: the relay's own). */
  relay?: Partial<Pick<OutboxRelayOptions, 'afterPublish' | 'batchSize' | 'pollIntervalMs'>>;
  /** Limits of GET /api/events (defaults: the route's own); tests shorten them. */
  eventStream?: Partial<EventStreamSettings>;
}

/**
 * What a platform is wired from. With `background: false` only the HTTP API is built, as a test
 * of requests wants it (nothing reaps or publishes behind its back), and the broker is optional:
 * without one, agents get no broker credentials, as on the in-process broker.
 */
export type PlatformInputs = CommonInputs &
  (
    | {
        /** Run the outbox relay, lease reaper, reconciler, dead-letter watcher, sandbox sweeper and event cleanup (default). */
        background?: true;
        /** Set up (topology declared) here; opened and closed by the caller. */
        broker: PlatformBroker;
      }
    | { background: false; broker?: PlatformBroker }
  );

/** The loops that keep tasks moving while the platform runs. */
export interface BackgroundLoops {
  relay: OutboxRelay;
  reaper: LeaseReaper;
  reconciler: Reconciler;
  retention: EventRetention;
  /** Sends the delivery outbox; undefined when no channel is configured. */
  deliveries: DeliveryLoop | undefined;
}

export interface WiredPlatform {
  /** The HTTP API: serve `app.fetch`, or call `app.request` in-process. */
  app: ReturnType<typeof createApp>;
  events: EventHub;
  sandboxes: SandboxService;
  metrics: Metrics;
  /** Present unless `background: false`. */
  background: BackgroundLoops | undefined;
  /** Stops what wirePlatform started (loops, event hub); the database and broker stay open. */
  close(): Promise<void>;
}

/**
 * Builds the platform over a database, a broker and a sandbox backend: the HTTP API and, unless
 * `background: false`, the loops beside it. `devart start` (startPlatform) and the integration
 * tests both come through here and differ only in these inputs; serving HTTP is the caller's.
 * @example
 * const wired = await wirePlatform({ db, broker: createBroker(config, logger), sandboxes,
 *   settings: platformSettings(config), auth: { secret }, logger });
 * serve({ fetch: wired.app.fetch, port: config.PORT });
 */
export async function wirePlatform(inputs: PlatformInputs): Promise<WiredPlatform> {
  const { db, logger, settings } = inputs;
  const stops: (() => Promise<void> | void)[] = [];
  const close = async () => {
    for (const stop of stops.reverse()) await stop();
  };
  try {
    const metrics = createMetrics(db);
    const events = createEventHub({ db, logger });
    stops.push(() => events.stop());
    const agentKeys = createAgentKeyCache({ lookup: (hash) => findAgentByKeyHash(db, hash) });
    stops.push(await followRevocations({ db, agentKeys, logger }));
    const sandboxes = createSandboxService({
      db,
      backend: inputs.sandboxes,
      logger,
      providerKey: inputs.sandboxProviderKey,
      maxConcurrentExecs: settings.sandboxMaxConcurrentExecs,
      policy: settings.sandboxPolicy,
    });
    const background =
      inputs.background === false
        ? undefined
        : await startBackground(inputs, inputs.broker.broker, { metrics, sandboxes }, stops);
    const app = createApp({
      db,
      verifyToken: createTokenVerifier(inputs.auth),
      logger,
      recordUsers: await ownsAuthUsers(db),
      agentKeys,
      brokerAccess: inputs.broker?.brokerAccess ?? noBrokerAccess,
      leaseSeconds: settings.leaseSeconds,
      failures: settings.failures,
      events,
      eventStream: inputs.eventStream,
      sandboxes,
      metrics,
      metricsToken: settings.metricsToken,
      slowExecAfterMs: settings.slowExecAfterMs,
      integrations: integrations(settings),
      github: {
        webhookSecret: settings.github.webhookSecret,
        // Runs are linked to GitHub only where the App can write back; the loop's github channel sends.
        onRunStarted: settings.github.app ? linkRunToGithub : undefined,
      },
    });
    return { app, events, sandboxes, metrics, background, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Starts the loops, pushing how to stop each onto `stops` as it starts. */
async function startBackground(
  { db, logger, settings, relay: relayOptions }: CommonInputs,
  broker: Broker,
  { metrics, sandboxes }: { metrics: Metrics; sandboxes: SandboxService },
  stops: (() => Promise<void> | void)[],
): Promise<BackgroundLoops> {
  await broker.setup();
  const relay = await startOutboxRelay({ db, broker, logger, ...relayOptions });
  stops.push(() => relay.stop());
  const reaper = startLeaseReaper({
    db,
    logger,
    intervalMs: settings.reaperIntervalMs,
    failures: settings.failures,
    graceMs: settings.reaperGraceMs ?? heartbeatGraceMs(settings.leaseSeconds),
    agentOfflineSeconds: settings.agentOfflineSeconds,
  });
  stops.push(() => reaper.stop());
  const deadLetters = await watchDeadLetters({
    db,
    broker,
    logger,
    onUnexpected: (reason) => metrics.deadLetterUnexpected(reason),
  });
  stops.push(() => deadLetters.cancel());
  const reconciler = startReconciler({
    db,
    broker,
    logger,
    intervalMs: settings.reconcile.intervalMs,
    afterSeconds: settings.reconcile.afterSeconds,
    onRepublished: (n) => metrics.tasksRepublished(n),
  });
  stops.push(() => reconciler.stop());
  // A crash leaves nothing running: what the table does not know as live is removed.
  await sandboxes.reconcile().catch((error) => logger.error({ err: error }, 'sandbox reconciliation failed'));
  const sweeper = startSandboxSweeper({ service: sandboxes, logger, intervalMs: settings.sandboxSweepMs });
  stops.push(() => sweeper.stop());
  const retention = startEventRetention({ db, logger, ...settings.eventsRetention });
  stops.push(() => retention.stop());
  const channels = deliveryChannels(db, settings);
  let deliveries: DeliveryLoop | undefined;
  if (channels.length > 0) {
    deliveries = await startDeliveryLoop({ db, logger, channels, ...settings.notifications.delivery });
    stops.push(() => deliveries!.stop());
    if (!settings.notifications.policy.publicUrl)
      logger.warn('PUBLIC_URL is unset: notifications carry no links to the console');
  }
  const { telegram, policy } = settings.notifications;
  if (telegram && policy.dailySummaryAt) {
    const summaries = startDailySummaries({
      db,
      logger,
      at: policy.dailySummaryAt,
      channels: [{ name: 'telegram', target: telegram.chatId }],
    });
    stops.push(() => summaries.stop());
  }
  return { relay, reaper, reconciler, retention, deliveries };
}

/**
 * The channels of the delivery outbox this process sends through: each configured integration's
 * (services/deliveries.ts says how to add one). Every replica should configure the same ones.
 */
function deliveryChannels(db: Db, settings: PlatformSettings): DeliveryChannel[] {
  const { telegram, policy, fetch } = settings.notifications;
  const channels: DeliveryChannel[] = [];
  if (telegram) channels.push(telegramChannel({ db, settings: telegram, policy, fetch }));
  const { app } = settings.github;
  if (app) channels.push(githubChannel({ db, app: createGithubApp(app), publicUrl: policy.publicUrl }));
  return channels;
}

/** What GET /api/integrations reports about each integration: never a secret, only whether it is set. */
function integrations(settings: PlatformSettings): IntegrationInfo[] {
  const { telegram, policy } = settings.notifications;
  return [
    {
      name: 'telegram',
      configured: telegram !== undefined,
      channels: ['telegram'],
      settings: {
        bot_token: telegram ? 'set' : 'unset',
        chat_id: telegram?.chatId ?? null,
        api_url: telegram?.apiUrl ?? null,
        public_url: policy.publicUrl ?? null,
        events: [...policy.events],
        capabilities: policy.capabilities ? [...policy.capabilities] : null,
        exclude_capabilities: [...policy.excludeCapabilities],
        daily_summary_at: policy.dailySummaryAt ?? null,
      },
    },
    githubIntegration(settings.github),
  ];
}
