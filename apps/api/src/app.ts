import { defaultBackoff } from '@devart/core';
import { type Db, findAgentByKeyHash, upsertUser } from '@devart/db';
import { OpenAPIHono } from '@hono/zod-openapi';
import type { Logger } from 'pino';
import { type AgentKeyCache, createAgentKeyCache } from './auth/agent-key-cache';
import type { TokenVerifier, VerifiedUser } from './auth/jwt';
import { DEFAULT_LEASE_SECONDS } from './config';
import { createMetrics, type Metrics } from './metrics';
import { authenticate } from './middleware/auth';
import { limitBody, requireJsonBody } from './middleware/json-body';
import { requestLog } from './middleware/request-log';
import { onError, ProblemError, problemResponse, validationProblem } from './problem';
import { agentWorkRoutes } from './routes/agent-work';
import { agentRoutes } from './routes/agents';
import { docsRoutes } from './routes/docs';
import { defaultEventStreamSettings, type EventStreamSettings, eventRoutes } from './routes/events';
import { healthRoutes } from './routes/health';
import { integrationRoutes } from './routes/integrations';
import { marketplaceRoutes } from './routes/marketplace';
import { meRoutes } from './routes/me';
import { metricsRoutes } from './routes/metrics';
import { overviewRoutes } from './routes/overview';
import type { AppEnv } from './routes/route-kit';
import { sandboxRoutes } from './routes/sandboxes';
import { taskRoutes } from './routes/tasks';
import { webAppRoutes } from './routes/web-app';
import { webhookRoutes } from './routes/webhooks';
import { workflowRunRoutes } from './routes/workflow-runs';
import { workflowRoutes } from './routes/workflows';
import { type BrokerAccess, noBrokerAccess } from './services/broker-access';
import { createEventHub, type EventHub } from './services/event-hub';
import type { FailureSettings } from './services/failures';
import type { RunStartedHook } from './services/github-webhooks';
import type { IntegrationInfo } from './services/integrations';
import { createSandboxService, type SandboxService } from './services/sandboxes';

export interface AppDeps {
  db: Db;
  verifyToken: TokenVerifier;
  logger: Logger;
  /** Record first-seen users in auth.users (only where devart owns that table). */
  recordUsers: boolean;
  /** Per-agent broker users (RabbitMQ); defaults to none, as on the in-process broker. */
  brokerAccess?: BrokerAccess;
  /** Lease of a started task, in seconds (default DEFAULT_LEASE_SECONDS, as TASK_LEASE_SECONDS). */
  leaseSeconds?: number;
  /** Which agent holds a key; the platform passes one that follows other replicas' revokes (default: this app's own). */
  agentKeys?: AgentKeyCache;
  /** Platform events for /api/events; by default one LISTEN on the database per app. */
  events?: EventHub;
  /** Limits of GET /api/events (heartbeat, streams per caller, unread events); defaults otherwise. */
  eventStream?: Partial<EventStreamSettings>;
  /** Retry backoff of tasks without their own (default 1 s base, 5 min cap). */
  failures?: FailureSettings;
  /** Sandboxes; by default none, so sandbox requests answer 503 saying so. */
  sandboxes?: SandboxService;
  /** An exec still running after this long is answered at once, its body kept alive (default 20 s). */
  slowExecAfterMs?: number;
  version?: string;
  /** This process's metrics, when something outside the app (the reconciler) counts into them too. */
  metrics?: Metrics;
  /** Bearer token GET /metrics requires (METRICS_TOKEN); unset = /metrics is open, like /health. */
  metricsToken?: string;
  /** The built web console served at `/` (default apps/web/dist). */
  webDist?: string;
  /** What GET /api/integrations reports (default: nothing configured). */
  integrations?: readonly IntegrationInfo[];
  /** GitHub: the webhook secret (unset = POST /api/webhooks/github answers 404) and what a started run records beside it. */
  github?: { webhookSecret?: string; onRunStarted?: RunStartedHook };
}

/** Builds the HTTP API; `main`/`server.ts` wire real adapters, tests pass their own. */
export function createApp(deps: AppDeps) {
  const { db, logger } = deps;
  const metrics = deps.metrics ?? createMetrics(db);
  const agentKeys = deps.agentKeys ?? createAgentKeyCache({ lookup: (hash) => findAgentByKeyHash(db, hash) });
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationProblem(result.target, result.error.issues);
    },
  });
  app.onError(onError(logger));
  app.notFound((c) =>
    problemResponse(c, new ProblemError('not_found', `No route ${c.req.method} ${c.req.path}.`)),
  );

  app.use('*', requestLog({ logger }));
  app.use(
    '/api/*',
    limitBody(),
    requireJsonBody(),
    authenticate({
      verifyToken: deps.verifyToken,
      findAgentByKeyHash: agentKeys.find,
      onUser: deps.recordUsers ? rememberUsers(db) : undefined,
    }),
  );

  app.route('/', healthRoutes({ db, logger }));
  app.route('/', meRoutes());
  app.route('/', overviewRoutes({ db }));
  const brokerAccess = deps.brokerAccess ?? noBrokerAccess;
  app.route('/', agentRoutes({ db, brokerAccess, agentKeys }));
  app.route('/', taskRoutes({ db }));
  app.route('/', workflowRoutes({ db, logger }));
  app.route('/', marketplaceRoutes({ db, amqpPrefix: brokerAccess.prefix }));
  app.route(
    '/',
    sandboxRoutes({
      logger,
      slowExecAfterMs: deps.slowExecAfterMs,
      sandboxes:
        deps.sandboxes ??
        createSandboxService({
          db,
          logger,
          backend: { unavailable: 'This server runs no sandbox provider (SANDBOX_PROVIDER).' },
        }),
    }),
  );
  app.route('/', workflowRunRoutes({ db, logger }));
  app.route(
    '/',
    agentWorkRoutes({
      db,
      settings: { leaseSeconds: deps.leaseSeconds ?? DEFAULT_LEASE_SECONDS },
      failures: deps.failures ?? { backoff: defaultBackoff },
      observer: metrics,
    }),
  );
  app.route(
    '/',
    eventRoutes({
      db,
      hub: deps.events ?? createEventHub({ db, logger }),
      settings: { ...defaultEventStreamSettings, ...deps.eventStream },
    }),
  );
  app.route(
    '/',
    webhookRoutes({
      db,
      logger,
      githubWebhookSecret: deps.github?.webhookSecret,
      onGithubRunStarted: deps.github?.onRunStarted,
    }),
  );
  app.route('/', integrationRoutes({ db, integrations: deps.integrations ?? [] }));
  app.route('/', docsRoutes());
  app.route('/', metricsRoutes({ metrics, token: deps.metricsToken }));

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    description: 'A user JWT (role in app_metadata.role) or an agent API key (dva_…).',
  });
  app.doc31('/api/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'devart API',
      version: deps.version ?? '0.1.0',
      description:
        'Orchestration API for AI DevOps agents. Errors are application/problem+json (RFC 9457); fields are snake_case.',
    },
  });
  // Last, after /api/openapi.json too: it answers every other GET outside the API with the console.
  app.route('/', webAppRoutes({ distDir: deps.webDist }));
  return app;
}

/** Upserts each verified user once per process; the set is bounded so a flood of subjects cannot grow it forever. */
function rememberUsers(db: Db) {
  const seen = new Set<string>();
  return async function recordUser(user: VerifiedUser) {
    if (seen.has(user.sub)) return;
    await upsertUser(db, { id: user.sub, email: user.email, role: user.role ?? 'none' });
    // 10,000: not measured; a clear costs one upsert per user again, never a wrong answer.
    if (seen.size >= 10_000) seen.clear();
    seen.add(user.sub);
  };
}
