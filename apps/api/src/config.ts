import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Capability, NotificationEventType } from '@devart/contracts';
import { defaultBackoff } from '@devart/core';
import { DEFAULT_DELIVERY_LIMIT } from '@devart/queue';
import { KubernetesConfigError, type KubernetesEnvConfig, kubernetesConfigFromEnv } from '@devart/sandbox';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { isLoopbackHost, jwksUrlProblem } from './auth/jwt';
import {
  buildSandboxPolicy,
  DEFAULT_LIMITS,
  parseCidr,
  type SandboxPolicy,
  SandboxPolicyFile,
} from './services/sandbox-policy';

/** How long a start or heartbeat keeps a task when TASK_LEASE_SECONDS is unset; createApp's default too. */
export const DEFAULT_LEASE_SECONDS = 60;

// An empty variable (FOO= in an env file) means "not set", not "set to nothing".
const blank = (value: unknown) => (value === '' ? undefined : value);
const optional = <T extends z.ZodType>(schema: T) => z.preprocess(blank, schema.optional());
// A comma-separated list (spaces allowed around items), each item checked by `item` and a bad
// one named in the variable's message; unset or empty = undefined.
const commaList = <T extends z.ZodType<string>>(item: T) =>
  optional(z.string()).transform((value, ctx): z.output<T>[] | undefined => {
    if (value === undefined || value.trim() === '') return undefined;
    const items = value.split(',').map((part) => part.trim());
    for (const part of items) {
      const checked = item.safeParse(part);
      if (!checked.success)
        ctx.addIssue({
          code: 'custom',
          message: `"${part}": ${checked.error.issues[0]?.message ?? 'invalid'}`,
        });
    }
    return items as z.output<T>[];
  });

/** Private ranges (RFC 1918, shared address space, unique local IPv6): where clusters put pods and services. */
export const DEFAULT_DENIED_CIDRS = [
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '100.64.0.0/10',
  'fc00::/7',
];

/** Every environment variable devart reads, validated once at start-up. README's configuration table mirrors it. */
const Variables = z.object({
  /** HTTP port of the API. */
  PORT: z.preprocess(blank, z.coerce.number().int().min(0).max(65_535).default(8787)),
  /** Interface to listen on; 0.0.0.0 to accept connections from other machines. */
  HOST: optional(z.string().min(1)).transform((v) => v ?? '127.0.0.1'),
  /** PostgreSQL connection string; unset = embedded PGlite in DEVART_DATA_DIR. */
  DATABASE_URL: optional(
    z.string().regex(/^postgres(ql)?:\/\//, { error: 'must start with postgres:// or postgresql://' }),
  ),
  /** Embedded database, generated JWT secret and lock file live here. */
  DEVART_DATA_DIR: optional(z.string().min(1)).transform((v) => v ?? '.devart'),
  /** HS256 secret for user tokens; unset = a random secret kept in DEVART_DATA_DIR/jwt-secret. */
  JWT_SECRET: optional(z.string().min(32, { error: 'must be at least 32 characters' })),
  /** JWKS of an external issuer (Supabase, any OIDC provider) for asymmetric user tokens; https (http only on loopback). */
  JWT_JWKS_URL: optional(
    z.url({ protocol: /^https?$/, error: 'must be an https URL' }).superRefine((url, ctx) => {
      const problem = jwksUrlProblem(url);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
  ),
  /** Required `iss` of user tokens, when set. */
  JWT_ISSUER: optional(z.string().min(1)),
  /** Required `aud` of user tokens, when set (Supabase: authenticated). */
  JWT_AUDIENCE: optional(z.string().min(1)),
  /** RabbitMQ (amqp:// or amqps://); unset = the in-process broker (single process, no agent credentials). */
  AMQP_URL: optional(z.string().regex(/^amqps?:\/\//, { error: 'must start with amqp:// or amqps://' })),
  /** RabbitMQ management API with admin credentials, for per-agent broker users; unset = derived from AMQP_URL (http://…:15672, https://…:15671 for amqps://); https with amqps:// (http only on loopback). */
  RABBITMQ_MANAGEMENT_URL: optional(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' })),
  /** The broker URL handed to agents (no credentials; each agent gets its own); unset = AMQP_URL without its credentials. */
  AGENT_AMQP_URL: optional(
    z.string().regex(/^amqps?:\/\//, { error: 'must start with amqp:// or amqps://' }),
  ),
  /** Prefix of every exchange and queue name, to share one RabbitMQ vhost between installations. */
  AMQP_PREFIX: optional(
    z.string().regex(/^[a-z0-9_.-]*$/, { error: 'may hold only a-z, 0-9, ".", "_", "-"' }),
  ).transform((v) => v ?? ''),
  /** Deliveries of one message before the broker dead-letters it (x-delivery-limit). */
  DELIVERY_LIMIT: z.preprocess(
    blank,
    z.coerce.number().int().min(1).max(1000).default(DEFAULT_DELIVERY_LIMIT),
  ),
  /** How long a start or heartbeat keeps a task for its agent, in seconds. */
  TASK_LEASE_SECONDS: z.preprocess(
    blank,
    z.coerce.number().min(0.1).max(86_400).default(DEFAULT_LEASE_SECONDS),
  ),
  /** How long start-up waits for PostgreSQL to answer before it gives up, in seconds (0: not at all). */
  DATABASE_WAIT_SECONDS: z.preprocess(blank, z.coerce.number().min(0).max(3600).default(60)),
  /** How often each API process looks for lapsed leases, in seconds. */
  REAPER_INTERVAL_SECONDS: z.preprocess(blank, z.coerce.number().min(0.05).max(3600).default(5)),
  /**
   * A due TODO task whose message went out this many seconds ago and was never started is
   * republished (its message was lost: a purged or deleted queue). Keep it above the longest
   * wait a task may have in the queue, or waiting tasks get duplicate messages (fenced by start).
   */
  RECONCILE_AFTER_SECONDS: z.preprocess(blank, z.coerce.number().min(1).max(86_400).default(60)),
  /** How often each API process re-declares the broker topology and looks for lost messages, in seconds. */
  RECONCILE_INTERVAL_SECONDS: z.preprocess(blank, z.coerce.number().min(0.05).max(3600).default(10)),
  /**
   * A live agent that holds no task and has not been heard from (registration, start, heartbeat,
   * complete) for this many seconds is marked OFFLINE (agent.offline); its next start brings it back
   * (agent.online). Checked on the lease reaper's timer.
   */
  AGENT_OFFLINE_SECONDS: z.preprocess(blank, z.coerce.number().min(1).max(86_400).default(120)),
  /** Events (GET /api/events, /api/events/history) older than this many days are deleted, every few minutes. */
  EVENTS_RETENTION_DAYS: z.preprocess(blank, z.coerce.number().min(0.01).max(3650).default(14)),
  /** Token of the Telegram bot that sends notifications (from @BotFather); unset = no Telegram. Never shown by the API. */
  TELEGRAM_BOT_TOKEN: optional(
    z.string().regex(/^\d{1,20}:[A-Za-z0-9_-]{20,100}$/, {
      error: 'must be the token @BotFather gave, like 123456789:AAE… (digits, a colon, then letters)',
    }),
  ),
  /** The chat notifications go to: a numeric id (groups are negative) or @channelname. */
  TELEGRAM_CHAT_ID: optional(
    z.string().regex(/^-?\d{1,20}$|^@[A-Za-z][A-Za-z0-9_]{3,}$/, {
      error: 'must be a numeric chat id (groups are negative, like -1001234567890) or @channelname',
    }),
  ),
  /** The Bot API; another URL for a local Bot API server or a test stub. */
  TELEGRAM_API_URL: optional(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' })).transform(
    (v) => (v ?? 'https://api.telegram.org').replace(/\/+$/, ''),
  ),
  /** Where people open the web console (https://devart.example.com); notifications link to it. Unset = no links. */
  PUBLIC_URL: optional(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' })).transform((v) =>
    v?.replace(/\/+$/, ''),
  ),
  /** Comma-separated event types that notify (default all four; workflow_run.completed only for workflows with notify.on_complete). */
  NOTIFY_EVENTS: commaList(NotificationEventType).transform((v) => v ?? [...NotificationEventType.options]),
  /** Only tasks, runs and agents with one of these capabilities notify (comma-separated); unset = all. */
  NOTIFY_CAPABILITIES: commaList(Capability),
  /** Tasks, runs and agents with these capabilities never notify (comma-separated). */
  NOTIFY_EXCLUDE_CAPABILITIES: commaList(Capability).transform((v) => v ?? []),
  /** A summary of the last 24 hours is sent every day at this time, UTC (HH:MM); unset = none. */
  NOTIFY_DAILY_SUMMARY_AT: optional(
    z
      .string()
      .regex(/^([01]\d|2[0-3]):[0-5]\d$/, { error: 'must be a UTC time of day as HH:MM, like 08:30' }),
  ),
  /** Retry backoff of tasks without their own: the first retry waits up to this long (ms)… */
  RETRY_BASE_MS: z.preprocess(blank, z.coerce.number().int().min(0).default(defaultBackoff.baseMs)),
  /** …and no retry waits longer than this (ms). */
  RETRY_CAP_MS: z.preprocess(blank, z.coerce.number().int().min(0).default(defaultBackoff.capMs)),
  /** Where sandboxes run: local (bubblewrap), kubernetes (one Pod each), or none (requests answer 503). */
  SANDBOX_PROVIDER: optional(z.enum(['local', 'kubernetes', 'none'])).transform((v) => v ?? 'local'),
  /** Workspaces of local sandboxes; unset = DEVART_DATA_DIR/sandboxes. */
  SANDBOX_ROOT: optional(z.string().min(1)),
  /** How often each API process ends sandboxes whose task finished or whose TTL passed, in seconds. */
  SANDBOX_SWEEP_SECONDS: z.preprocess(blank, z.coerce.number().min(0.05).max(3600).default(2)),
  /** Commands one sandbox may run at once (per API process); one more answers 429. */
  SANDBOX_MAX_CONCURRENT_EXECS: z.preprocess(blank, z.coerce.number().int().min(1).max(1000).default(4)),
  /** Size of a local sandbox's workspace in MiB (its own tmpfs when the API runs as root). */
  SANDBOX_WORKSPACE_MIB: z.preprocess(blank, z.coerce.number().int().min(16).max(1_048_576).default(1024)),
  /** The sandbox policy (JSON, or YAML for .yaml/.yml): per capability, what agents may ask of a sandbox; see docs/sandboxes.md#policy. */
  SANDBOX_POLICY_FILE: optional(z.string().min(1)),
  /** Images agents may name in a sandbox request (comma-separated, exact); unset = AGENT_CONTAINER_IMAGE only. */
  SANDBOX_ALLOWED_IMAGES: commaList(z.string().min(1)),
  /** CIDR blocks sandbox egress may go to, any port (comma-separated); unset = no egress. */
  SANDBOX_ALLOWED_EGRESS: commaList(
    z.string().refine((v) => parseCidr(v) !== undefined, 'must be a CIDR block'),
  ),
  /** Largest CPU a sandbox may ask for, in millicores. */
  SANDBOX_MAX_CPU: z.preprocess(
    blank,
    z.coerce.number().int().min(50).max(8000).default(DEFAULT_LIMITS.maxCpu),
  ),
  /** Largest memory a sandbox may ask for, in MiB. */
  SANDBOX_MAX_MEMORY: z.preprocess(
    blank,
    z.coerce.number().int().min(32).max(16384).default(DEFAULT_LIMITS.maxMemory),
  ),
  /** Longest TTL a sandbox may ask for, in seconds. */
  SANDBOX_MAX_TTL_SECONDS: z.preprocess(
    blank,
    z.coerce.number().int().min(10).max(86_400).default(DEFAULT_LIMITS.maxTtlSeconds),
  ),
  /** Live sandboxes one task may have at once. */
  SANDBOX_MAX_PER_TASK: z.preprocess(
    blank,
    z.coerce.number().int().min(1).max(100).default(DEFAULT_LIMITS.maxPerTask),
  ),
  /**
   * Ranges sandbox egress never reaches unless the policy lists a block inside them (comma-separated
   * CIDRs): the cluster's pod and service CIDRs and other internal networks. Loopback and
   * link-local are always denied. Default: the private ranges.
   */
  SANDBOX_DENIED_CIDRS: commaList(
    z.string().refine((v) => parseCidr(v) !== undefined, 'must be a CIDR block'),
  ).transform((v) => v ?? DEFAULT_DENIED_CIDRS),
  /** Base64 kubeconfig for SANDBOX_PROVIDER=kubernetes; unset = the in-cluster service account. */
  KUBE_CONFIG_DATA: optional(z.string().min(1)),
  /** Namespace of sandbox Pods; unset = the kubeconfig context's namespace. */
  K8S_NAMESPACE: optional(z.string().min(1)),
  /** Image of sandbox Pods (needs sh, sleep, env, timeout; runs as uid 65532). */
  AGENT_CONTAINER_IMAGE: optional(z.string().min(1)),
  /**
   * Set by Kubernetes in every Pod: with SANDBOX_PROVIDER=kubernetes and no KUBE_CONFIG_DATA, the
   * Pod's service account is used (the client library reads the API address from the environment).
   */
  KUBERNETES_SERVICE_HOST: optional(z.string().min(1)),
  /** Secret of the GitHub webhook (POST /api/webhooks/github checks X-Hub-Signature-256 with it); unset = the route answers 404. */
  GITHUB_WEBHOOK_SECRET: optional(z.string().min(16, { error: 'must be at least 16 characters' })),
  /** The GitHub App that writes check runs and comments back (with GITHUB_PRIVATE_KEY and GITHUB_INSTALLATION_ID). */
  GITHUB_APP_ID: optional(
    z
      .string()
      .regex(/^\d{1,20}$|^Iv[0-9A-Za-z.]{1,60}$/, { error: 'must be the App ID (digits) or its Client ID' }),
  ),
  /** The App's private key, PEM (newlines may be written \n); checked at start-up. */
  GITHUB_PRIVATE_KEY: optional(z.string().min(1)).transform((v, ctx) => {
    if (v === undefined) return undefined;
    const pem = v.includes('-----BEGIN') ? v.replaceAll('\\n', '\n') : v;
    try {
      createPrivateKey(pem);
      return pem;
    } catch {
      ctx.addIssue({
        code: 'custom',
        message: 'must be the GitHub App private key in PEM form (-----BEGIN RSA PRIVATE KEY-----…)',
      });
      return z.NEVER;
    }
  }),
  /** The App's installation on the account that owns the repositories. */
  GITHUB_INSTALLATION_ID: optional(z.coerce.number().int().min(1)),
  /** GitHub's REST API; https://<host>/api/v3 for GitHub Enterprise Server, a local stub in tests. */
  GITHUB_API_URL: optional(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' })).transform((v) =>
    (v ?? 'https://api.github.com').replace(/\/+$/, ''),
  ),
  /**
   * Bearer token GET /metrics requires (Authorization: Bearer <token>); unset = /metrics is open,
   * as /health is, for an API on a private interface.
   */
  METRICS_TOKEN: optional(z.string().min(16, { error: 'must be at least 16 characters' })),
  /** pino log level; `debug` adds a line per HTTP request (at `info`, a summary per minute). */
  LOG_LEVEL: optional(z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])).transform(
    (v) => v ?? 'info',
  ),
  /** `pretty`: one human-readable line per record; `json`: pino's JSON lines; unset = pretty on a terminal, json otherwise. */
  LOG_FORMAT: optional(z.enum(['json', 'pretty'], { error: 'must be json or pretty' })),
});

/**
 * The configuration of one API process, parsed once at start-up from the environment; the
 * variables keep their names so an error, the README and the code say the same thing. With
 * SANDBOX_PROVIDER=kubernetes, `kubernetes` holds the cluster settings the provider is built from.
 */
export type Config = z.output<typeof Variables> & {
  /** The sandbox policy: SANDBOX_POLICY_FILE over the SANDBOX_* limits. */
  sandboxPolicy: SandboxPolicy;
} & (
    | { SANDBOX_PROVIDER: 'kubernetes'; kubernetes: KubernetesEnvConfig }
    | { SANDBOX_PROVIDER: 'local' | 'none'; kubernetes?: undefined }
  );

/** Every environment variable devart reads, validated once at start-up. README's configuration table mirrors it. */
export const ConfigSchema = Variables.superRefine((vars, ctx) => {
  const app = ['GITHUB_APP_ID', 'GITHUB_PRIVATE_KEY', 'GITHUB_INSTALLATION_ID'] as const;
  const given = app.filter((name) => vars[name] !== undefined);
  if (given.length > 0 && given.length < app.length) {
    for (const name of app.filter((n) => vars[n] === undefined))
      ctx.addIssue({
        code: 'custom',
        path: [name],
        message: `must be set with ${given.join(' and ')}: the GitHub App needs all three`,
      });
  }
  const managementProblem = managementUrlProblem(vars.AMQP_URL, vars.RABBITMQ_MANAGEMENT_URL);
  if (managementProblem)
    ctx.addIssue({ code: 'custom', path: ['RABBITMQ_MANAGEMENT_URL'], message: managementProblem });
  if (vars.RETRY_BASE_MS > vars.RETRY_CAP_MS) {
    ctx.addIssue({
      code: 'custom',
      path: ['RETRY_BASE_MS'],
      message: `must not exceed RETRY_CAP_MS (${vars.RETRY_CAP_MS}): no retry waits longer than the cap`,
    });
  }
  // The bot and its chat come together: either alone would send nothing, silently.
  for (const [name, other] of [
    ['TELEGRAM_CHAT_ID', 'TELEGRAM_BOT_TOKEN'],
    ['TELEGRAM_BOT_TOKEN', 'TELEGRAM_CHAT_ID'],
  ] as const) {
    if (vars[name] === undefined && vars[other] !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: [name],
        message: `must be set with ${other}: Telegram needs both`,
      });
  }
}).transform((parsed, ctx): Config => {
  const sandboxPolicy = loadSandboxPolicy(parsed, ctx);
  if (sandboxPolicy === undefined) return z.NEVER;
  const vars = { ...parsed, sandboxPolicy };
  if (vars.SANDBOX_PROVIDER !== 'kubernetes') return { ...vars, SANDBOX_PROVIDER: vars.SANDBOX_PROVIDER };
  // Checked here so a bad cluster setting stops start-up naming the variable, before anything opens.
  try {
    return {
      ...vars,
      SANDBOX_PROVIDER: 'kubernetes',
      kubernetes: kubernetesConfigFromEnv({
        KUBE_CONFIG_DATA: vars.KUBE_CONFIG_DATA,
        K8S_NAMESPACE: vars.K8S_NAMESPACE,
        AGENT_CONTAINER_IMAGE: vars.AGENT_CONTAINER_IMAGE,
        KUBERNETES_SERVICE_HOST: vars.KUBERNETES_SERVICE_HOST,
      }),
    };
  } catch (error) {
    if (!(error instanceof KubernetesConfigError)) throw error;
    ctx.addIssue({ code: 'custom', path: [error.variable], message: error.message });
    return z.NEVER;
  }
});

/**
 * The policy of the SANDBOX_* variables with SANDBOX_POLICY_FILE over them; a file that cannot be
 * read or parsed, or a bad field in it, is an issue of SANDBOX_POLICY_FILE naming the file and the field.
 */
function loadSandboxPolicy(
  vars: z.output<typeof Variables>,
  ctx: z.core.$RefinementCtx,
): SandboxPolicy | undefined {
  const base = {
    // The local provider runs the host's system and has no image: without AGENT_CONTAINER_IMAGE none may be named.
    images: vars.SANDBOX_ALLOWED_IMAGES ?? (vars.AGENT_CONTAINER_IMAGE ? [vars.AGENT_CONTAINER_IMAGE] : []),
    egress: (vars.SANDBOX_ALLOWED_EGRESS ?? []).map((cidr) => ({ cidr })),
    maxCpu: vars.SANDBOX_MAX_CPU,
    maxMemory: vars.SANDBOX_MAX_MEMORY,
    maxTtlSeconds: vars.SANDBOX_MAX_TTL_SECONDS,
    maxPerTask: vars.SANDBOX_MAX_PER_TASK,
  };
  const path = vars.SANDBOX_POLICY_FILE;
  if (path === undefined) return buildSandboxPolicy(base, vars.SANDBOX_DENIED_CIDRS);
  const fail = (message: string) => {
    ctx.addIssue({ code: 'custom', path: ['SANDBOX_POLICY_FILE'], message: `${path}: ${message}` });
    return undefined;
  };
  let raw: unknown;
  try {
    const text = readFileSync(path, 'utf8');
    raw = /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    return fail(error instanceof Error ? error.message.split('\n')[0]! : String(error));
  }
  const file = SandboxPolicyFile.safeParse(raw ?? {});
  if (!file.success) {
    const issue = file.error.issues[0]!;
    const field = issue.path
      .map((key, i) => (typeof key === 'number' ? `[${key}]` : `${i === 0 ? '' : '.'}${String(key)}`))
      .join('');
    return fail(`${field || '(the whole file)'}: ${issue.message}`);
  }
  return buildSandboxPolicy(base, vars.SANDBOX_DENIED_CIDRS, file.data);
}

/**
 * Why RABBITMQ_MANAGEMENT_URL may not be used with this AMQP_URL, or undefined when it may. It
 * carries the broker's admin credentials: when the broker itself is reached over TLS (amqps://),
 * plain http:// would send them in clear, so only https:// is allowed, or http:// on loopback.
 * @example managementUrlProblem('amqps://rabbit.internal', 'http://admin:pw@rabbit.internal:15672') // 'must be https://…'
 */
export function managementUrlProblem(
  amqpUrl: string | undefined,
  managementUrl: string | undefined,
): string | undefined {
  if (!amqpUrl?.startsWith('amqps://') || managementUrl === undefined) return undefined;
  const url = new URL(managementUrl);
  if (url.protocol === 'https:' || isLoopbackHost(url.hostname)) return undefined;
  return 'must be https:// when AMQP_URL is amqps:// (http:// only for localhost, 127.0.0.0/8 or ::1): it carries the broker admin credentials';
}

/**
 * The RabbitMQ management API's URL: RABBITMQ_MANAGEMENT_URL, else derived from AMQP_URL (its host
 * and credentials, guest by default): https:// on 15671, the management plugin's TLS port, for
 * amqps://, and http:// on 15672 for amqp://.
 * @example managementUrlFor({ AMQP_URL: 'amqps://u:p@rabbit' }) // 'https://u:p@rabbit:15671'
 */
export function managementUrlFor(
  config: Pick<Config, 'AMQP_URL' | 'RABBITMQ_MANAGEMENT_URL'>,
): string | undefined {
  if (config.RABBITMQ_MANAGEMENT_URL) return config.RABBITMQ_MANAGEMENT_URL;
  if (!config.AMQP_URL) return undefined;
  const amqp = new URL(config.AMQP_URL);
  const [scheme, port] = amqp.protocol === 'amqps:' ? ['https', 15671] : ['http', 15672];
  return `${scheme}://${amqp.username || 'guest'}:${amqp.password || 'guest'}@${amqp.hostname}:${port}`;
}

/**
 * What a configuration allows but probably should not, one sentence each, for start-up to log as
 * warnings: JWKS tokens accepted from any issuer or for any audience the keys have signed.
 * @example configWarnings(loadConfig({ JWT_JWKS_URL: 'https://x.supabase.co/auth/v1/.well-known/jwks.json' }))
 */
export function configWarnings(config: Config): string[] {
  const warnings: string[] = [];
  if (config.JWT_JWKS_URL) {
    const missing = (['JWT_ISSUER', 'JWT_AUDIENCE'] as const).filter((name) => config[name] === undefined);
    if (missing.length > 0)
      warnings.push(
        `JWT_JWKS_URL is set without ${missing.join(' and ')}: any token its keys sign is accepted, whatever ` +
          `its ${missing.map((name) => (name === 'JWT_ISSUER' ? 'issuer (iss)' : 'audience (aud)')).join(' or ')}. ` +
          `Set ${missing.join(' and ')} (Supabase: https://<project>.supabase.co/auth/v1 and authenticated).`,
      );
  }
  return warnings;
}

/** A bad configuration value; the message names the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Parses the environment into a {@link Config}; the only place devart reads its variables.
 * @throws ConfigError listing every bad variable, one line each (`  RETRY_BASE_MS: must not exceed …`).
 * @example loadConfig({ DATABASE_URL: 'postgres://devart@db/devart', TASK_LEASE_SECONDS: '30' })
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = ConfigSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}
