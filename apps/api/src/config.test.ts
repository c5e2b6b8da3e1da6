import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultBackoff } from '@devart/core';
import { DEFAULT_DELIVERY_LIMIT } from '@devart/queue';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, configWarnings, DEFAULT_LEASE_SECONDS, loadConfig, managementUrlFor } from './config';
import { defaultSettings, platformSettings } from './platform';
import { ALWAYS_DENIED } from './services/sandbox-policy';

/** The message loadConfig throws for `env`, or undefined when it parses. */
function refusal(env: Record<string, string | undefined>): string | undefined {
  try {
    loadConfig(env);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
}

const kubeconfig = Buffer.from(
  'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://k8s.example:6443"}}]\n' +
    'users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u, namespace: from-context}}]\n' +
    'current-context: x\n',
).toString('base64');

describe('the configuration schema', () => {
  it('gives every default of the README table for an empty environment', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      PORT: 8787,
      HOST: '127.0.0.1',
      DEVART_DATA_DIR: '.devart',
      AMQP_PREFIX: '',
      DELIVERY_LIMIT: DEFAULT_DELIVERY_LIMIT,
      TASK_LEASE_SECONDS: DEFAULT_LEASE_SECONDS,
      DATABASE_WAIT_SECONDS: 60,
      REAPER_INTERVAL_SECONDS: 5,
      RECONCILE_AFTER_SECONDS: 60,
      RECONCILE_INTERVAL_SECONDS: 10,
      RETRY_BASE_MS: defaultBackoff.baseMs,
      RETRY_CAP_MS: defaultBackoff.capMs,
      SANDBOX_PROVIDER: 'local',
      SANDBOX_SWEEP_SECONDS: 2,
      SANDBOX_MAX_CONCURRENT_EXECS: 4,
      SANDBOX_WORKSPACE_MIB: 1024,
      AGENT_OFFLINE_SECONDS: 120,
      EVENTS_RETENTION_DAYS: 14,
      LOG_LEVEL: 'info',
    });
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.AMQP_URL).toBeUndefined();
    expect(config.kubernetes).toBeUndefined();
    // The defaults the README states, so a changed constant cannot drift from the table unseen.
    expect([DEFAULT_LEASE_SECONDS, DEFAULT_DELIVERY_LIMIT]).toEqual([60, 5]);
  });

  it('treats an empty variable (FOO= in an env file) as unset', () => {
    expect(
      loadConfig({ PORT: '', TASK_LEASE_SECONDS: '', DATABASE_URL: '', SANDBOX_PROVIDER: '' }),
    ).toMatchObject({
      PORT: 8787,
      TASK_LEASE_SECONDS: DEFAULT_LEASE_SECONDS,
      DATABASE_URL: undefined,
      SANDBOX_PROVIDER: 'local',
    });
  });

  it('coerces numbers from their text', () => {
    const config = loadConfig({
      PORT: '0',
      TASK_LEASE_SECONDS: '0.5',
      DELIVERY_LIMIT: '20',
      RETRY_CAP_MS: '9000',
    });
    expect(config).toMatchObject({
      PORT: 0,
      TASK_LEASE_SECONDS: 0.5,
      DELIVERY_LIMIT: 20,
      RETRY_CAP_MS: 9000,
    });
  });

  it.each([
    [{ PORT: '70000' }, 'PORT'],
    [{ PORT: 'eighty' }, 'PORT'],
    [{ DELIVERY_LIMIT: '2.5' }, 'DELIVERY_LIMIT'],
    [{ TASK_LEASE_SECONDS: '0' }, 'TASK_LEASE_SECONDS'],
    [{ DATABASE_URL: 'mysql://db/devart' }, 'DATABASE_URL'],
    [{ AMQP_URL: 'http://rabbit' }, 'AMQP_URL'],
    [{ AMQP_PREFIX: 'Has Spaces' }, 'AMQP_PREFIX'],
    [{ JWT_SECRET: 'short' }, 'JWT_SECRET'],
    [{ JWT_JWKS_URL: 'ftp://issuer/jwks' }, 'JWT_JWKS_URL'],
    [{ JWT_JWKS_URL: 'http://issuer.example/.well-known/jwks.json' }, 'JWT_JWKS_URL'],
    [{ JWT_JWKS_URL: 'http://10.0.0.5/jwks' }, 'JWT_JWKS_URL'],
    [{ JWT_JWKS_URL: 'http://127.0.0.1.nip.io/jwks' }, 'JWT_JWKS_URL'],
    [{ METRICS_TOKEN: 'short' }, 'METRICS_TOKEN'],
    [{ SANDBOX_PROVIDER: 'docker' }, 'SANDBOX_PROVIDER'],
    [{ SANDBOX_MAX_CONCURRENT_EXECS: '0' }, 'SANDBOX_MAX_CONCURRENT_EXECS'],
    [{ SANDBOX_MAX_CONCURRENT_EXECS: '2.5' }, 'SANDBOX_MAX_CONCURRENT_EXECS'],
    [{ SANDBOX_WORKSPACE_MIB: '8' }, 'SANDBOX_WORKSPACE_MIB'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ LOG_FORMAT: 'text' }, 'LOG_FORMAT'],
    [{ TELEGRAM_BOT_TOKEN: 'not-a-token', TELEGRAM_CHAT_ID: '1' }, 'TELEGRAM_BOT_TOKEN'],
    [{ TELEGRAM_BOT_TOKEN: '123:AAAAAAAAAAAAAAAAAAAAAAAA', TELEGRAM_CHAT_ID: 'my chat' }, 'TELEGRAM_CHAT_ID'],
    [{ TELEGRAM_API_URL: 'api.telegram.org' }, 'TELEGRAM_API_URL'],
    [{ PUBLIC_URL: 'ftp://devart' }, 'PUBLIC_URL'],
    [{ NOTIFY_EVENTS: 'task.quarantined, task.done' }, 'NOTIFY_EVENTS'],
    [{ NOTIFY_CAPABILITIES: 'Shell Scripts' }, 'NOTIFY_CAPABILITIES'],
    [{ NOTIFY_DAILY_SUMMARY_AT: '25:00' }, 'NOTIFY_DAILY_SUMMARY_AT'],
  ])('refuses a bad value naming its variable (%o)', (env, variable) => {
    expect(refusal(env)).toMatch(new RegExp(`^  ${variable}: `, 'm'));
  });

  it('takes JWT_JWKS_URL over https, or over http only on loopback', () => {
    for (const url of [
      'https://abc.supabase.co/auth/v1/.well-known/jwks.json',
      'http://127.0.0.1:9999/jwks',
      'http://localhost:9999/jwks',
      'http://[::1]:9999/jwks',
    ])
      expect(loadConfig({ JWT_JWKS_URL: url }).JWT_JWKS_URL).toBe(url);
    expect(refusal({ JWT_JWKS_URL: 'http://issuer.example/jwks' })).toContain(
      'JWT_JWKS_URL: must be https:// (http:// only for localhost, 127.0.0.0/8 or ::1)',
    );
  });

  it('derives the management URL over https from amqps://, and refuses plain http with amqps:// off loopback', () => {
    expect(managementUrlFor(loadConfig({ AMQP_URL: 'amqps://admin:pw@rabbit.internal/' }))).toBe(
      'https://admin:pw@rabbit.internal:15671',
    );
    expect(managementUrlFor(loadConfig({ AMQP_URL: 'amqp://rabbit.internal' }))).toBe(
      'http://guest:guest@rabbit.internal:15672',
    );
    expect(managementUrlFor(loadConfig({}))).toBeUndefined();
    const explicit = {
      AMQP_URL: 'amqps://rabbit.internal',
      RABBITMQ_MANAGEMENT_URL: 'https://a:b@mgmt.internal',
    };
    expect(managementUrlFor(loadConfig(explicit))).toBe('https://a:b@mgmt.internal');
    expect(
      refusal({
        AMQP_URL: 'amqps://rabbit.internal',
        RABBITMQ_MANAGEMENT_URL: 'http://a:b@rabbit.internal:15672',
      }),
    ).toContain('RABBITMQ_MANAGEMENT_URL: must be https:// when AMQP_URL is amqps://');
    // Loopback (a port-forward, a sidecar), and plain amqp://, keep plain http.
    for (const env of [
      { AMQP_URL: 'amqps://rabbit.internal', RABBITMQ_MANAGEMENT_URL: 'http://a:b@127.0.0.1:15672' },
      { AMQP_URL: 'amqp://rabbit.internal', RABBITMQ_MANAGEMENT_URL: 'http://a:b@rabbit.internal:15672' },
    ])
      expect(loadConfig(env).RABBITMQ_MANAGEMENT_URL).toBe(env.RABBITMQ_MANAGEMENT_URL);
  });

  it('warns at start-up when JWT_JWKS_URL is set without JWT_ISSUER or JWT_AUDIENCE, naming them', () => {
    const jwks = { JWT_JWKS_URL: 'https://abc.supabase.co/auth/v1/.well-known/jwks.json' };
    expect(configWarnings(loadConfig({}))).toEqual([]);
    expect(configWarnings(loadConfig({ JWT_SECRET: 'x'.repeat(32) }))).toEqual([]);
    expect(configWarnings(loadConfig(jwks))).toEqual([
      expect.stringMatching(
        /^JWT_JWKS_URL is set without JWT_ISSUER and JWT_AUDIENCE: .*issuer \(iss\) or audience \(aud\)/,
      ),
    ]);
    expect(configWarnings(loadConfig({ ...jwks, JWT_ISSUER: 'https://abc.supabase.co/auth/v1' }))).toEqual([
      expect.stringMatching(
        /^JWT_JWKS_URL is set without JWT_AUDIENCE: .*audience \(aud\)\. Set JWT_AUDIENCE/,
      ),
    ]);
    expect(
      configWarnings(
        loadConfig({ ...jwks, JWT_ISSUER: 'https://abc.supabase.co/auth/v1', JWT_AUDIENCE: 'authenticated' }),
      ),
    ).toEqual([]);
  });

  it('takes METRICS_TOKEN into the platform settings, unset by default', () => {
    expect(platformSettings(loadConfig({ METRICS_TOKEN: 'scrape-7f3c9a1e52b04d6e' })).metricsToken).toBe(
      'scrape-7f3c9a1e52b04d6e',
    );
    expect(defaultSettings.metricsToken).toBeUndefined();
    expect(refusal({ METRICS_TOKEN: 'short' })).toContain('METRICS_TOKEN: must be at least 16 characters');
  });

  it('lists every bad variable at once, one line each', () => {
    const message = refusal({ PORT: '-1', LOG_LEVEL: 'loud' });
    expect(message?.split('\n')).toEqual([
      'Invalid configuration:',
      expect.stringMatching(/^ {2}PORT: /),
      expect.stringMatching(/^ {2}LOG_LEVEL: /),
    ]);
  });

  it('refuses RETRY_BASE_MS above RETRY_CAP_MS, naming RETRY_BASE_MS and the cap', () => {
    expect(refusal({ RETRY_BASE_MS: '5000', RETRY_CAP_MS: '1000' })).toContain(
      '  RETRY_BASE_MS: must not exceed RETRY_CAP_MS (1000)',
    );
    // Against the default cap too, and equal values are fine.
    expect(refusal({ RETRY_BASE_MS: String(defaultBackoff.capMs + 1) })).toContain('RETRY_BASE_MS:');
    expect(loadConfig({ RETRY_BASE_MS: '1000', RETRY_CAP_MS: '1000' }).RETRY_BASE_MS).toBe(1000);
  });

  it('wants the Telegram bot and its chat together, naming the one missing', () => {
    expect(refusal({ TELEGRAM_BOT_TOKEN: '123456:AAAAAAAAAAAAAAAAAAAAAAAA' })).toContain(
      '  TELEGRAM_CHAT_ID: must be set with TELEGRAM_BOT_TOKEN',
    );
    expect(refusal({ TELEGRAM_CHAT_ID: '-1001234' })).toContain(
      '  TELEGRAM_BOT_TOKEN: must be set with TELEGRAM_CHAT_ID',
    );
  });

  it('wants the GitHub App whole, checks its key at start-up without echoing it, and builds its settings', () => {
    const { privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    expect(refusal({ GITHUB_APP_ID: '123' })?.split('\n').slice(1)).toEqual([
      '  GITHUB_PRIVATE_KEY: must be set with GITHUB_APP_ID: the GitHub App needs all three',
      '  GITHUB_INSTALLATION_ID: must be set with GITHUB_APP_ID: the GitHub App needs all three',
    ]);
    const broken = refusal({
      GITHUB_APP_ID: '123',
      GITHUB_INSTALLATION_ID: '9',
      GITHUB_PRIVATE_KEY: 'secret-not-a-key',
    });
    expect(broken).toContain('  GITHUB_PRIVATE_KEY: must be the GitHub App private key in PEM form');
    expect(broken).not.toContain('secret-not-a-key');
    expect(refusal({ GITHUB_WEBHOOK_SECRET: 'short' })).toContain(
      '  GITHUB_WEBHOOK_SECRET: must be at least 16 characters',
    );
    // An env file often holds the key on one line with \n escapes.
    const config = loadConfig({
      GITHUB_WEBHOOK_SECRET: 'a-webhook-secret-of-some-length',
      GITHUB_APP_ID: '123',
      GITHUB_INSTALLATION_ID: '9',
      GITHUB_PRIVATE_KEY: privateKey.replaceAll('\n', '\\n'),
      GITHUB_API_URL: 'https://ghe.example.com/api/v3/',
    });
    expect(platformSettings(config).github).toEqual({
      webhookSecret: 'a-webhook-secret-of-some-length',
      app: { appId: '123', installationId: 9, privateKey, apiUrl: 'https://ghe.example.com/api/v3' },
    });
    expect(loadConfig({}).GITHUB_API_URL).toBe('https://api.github.com');
    expect(platformSettings(loadConfig({})).github).toEqual({ webhookSecret: undefined, app: undefined });
  });

  it('turns the notification variables into settings: lists split on commas, URLs without a trailing slash', () => {
    const settings = platformSettings(
      loadConfig({
        TELEGRAM_BOT_TOKEN: '123456:AAAAAAAAAAAAAAAAAAAAAAAA',
        TELEGRAM_CHAT_ID: '@devart_alerts',
        TELEGRAM_API_URL: 'http://127.0.0.1:8081/',
        PUBLIC_URL: 'https://devart.example.com/',
        NOTIFY_EVENTS: 'task.quarantined , agent.offline',
        NOTIFY_EXCLUDE_CAPABILITIES: 'echo,lint',
        NOTIFY_DAILY_SUMMARY_AT: '08:30',
      }),
    ).notifications;
    expect(settings).toEqual({
      telegram: {
        token: '123456:AAAAAAAAAAAAAAAAAAAAAAAA',
        chatId: '@devart_alerts',
        apiUrl: 'http://127.0.0.1:8081',
      },
      policy: {
        events: ['task.quarantined', 'agent.offline'],
        capabilities: undefined,
        excludeCapabilities: ['echo', 'lint'],
        publicUrl: 'https://devart.example.com',
        dailySummaryAt: '08:30',
      },
    });
    expect(defaultSettings.notifications).toEqual({
      telegram: undefined,
      policy: {
        events: ['task.quarantined', 'workflow_run.failed', 'workflow_run.completed', 'agent.offline'],
        capabilities: undefined,
        excludeCapabilities: [],
        publicUrl: undefined,
        dailySummaryAt: undefined,
      },
    });
    expect(loadConfig({}).TELEGRAM_API_URL).toBe('https://api.telegram.org');
  });

  describe('SANDBOX_PROVIDER=kubernetes', () => {
    const cluster = { SANDBOX_PROVIDER: 'kubernetes', KUBERNETES_SERVICE_HOST: undefined };

    it('parses the cluster settings into the config, typed, for the provider', () => {
      const config = loadConfig({
        ...cluster,
        KUBE_CONFIG_DATA: kubeconfig,
        K8S_NAMESPACE: 'sandboxes',
        AGENT_CONTAINER_IMAGE: 'busybox:1.36',
      });
      expect(config.SANDBOX_PROVIDER).toBe('kubernetes');
      expect(config.kubernetes).toMatchObject({ namespace: 'sandboxes', image: 'busybox:1.36' });
      expect(config.kubernetes?.kubeConfig.getCurrentCluster()?.server).toBe('https://k8s.example:6443');
    });

    it('takes the namespace from the kubeconfig context when K8S_NAMESPACE is unset', () => {
      const config = loadConfig({
        ...cluster,
        KUBE_CONFIG_DATA: kubeconfig,
        AGENT_CONTAINER_IMAGE: 'busybox',
      });
      expect(config.kubernetes?.namespace).toBe('from-context');
    });

    it.each([
      [{}, 'KUBE_CONFIG_DATA'],
      [{ KUBE_CONFIG_DATA: 'not base64 kubeconfig!', AGENT_CONTAINER_IMAGE: 'busybox' }, 'KUBE_CONFIG_DATA'],
      [{ KUBE_CONFIG_DATA: kubeconfig }, 'AGENT_CONTAINER_IMAGE'],
      [{ KUBE_CONFIG_DATA: kubeconfig, AGENT_CONTAINER_IMAGE: 'Not An Image' }, 'AGENT_CONTAINER_IMAGE'],
      [
        { KUBE_CONFIG_DATA: kubeconfig, K8S_NAMESPACE: 'Not_A_Label', AGENT_CONTAINER_IMAGE: 'busybox' },
        'K8S_NAMESPACE',
      ],
    ])('requires its settings, naming the one at fault (%#)', (extra, variable) => {
      expect(refusal({ ...cluster, ...extra })).toMatch(new RegExp(`^  ${variable}: `, 'm'));
    });

    it('ignores the cluster settings under another provider', () => {
      const config = loadConfig({ SANDBOX_PROVIDER: 'none', KUBE_CONFIG_DATA: 'not base64 kubeconfig!' });
      expect(config.kubernetes).toBeUndefined();
    });
  });

  it('turns into the platform settings in the units the code uses', () => {
    expect(
      platformSettings(
        loadConfig({
          TASK_LEASE_SECONDS: '30',
          REAPER_INTERVAL_SECONDS: '0.5',
          RETRY_BASE_MS: '10',
          RETRY_CAP_MS: '20',
          RECONCILE_INTERVAL_SECONDS: '3',
          RECONCILE_AFTER_SECONDS: '90',
          SANDBOX_SWEEP_SECONDS: '1',
          SANDBOX_MAX_CONCURRENT_EXECS: '2',
          AGENT_OFFLINE_SECONDS: '45',
          EVENTS_RETENTION_DAYS: '7',
        }),
      ),
    ).toEqual({
      leaseSeconds: 30,
      reaperIntervalMs: 500,
      failures: { backoff: { baseMs: 10, capMs: 20 } },
      reconcile: { intervalMs: 3000, afterSeconds: 90 },
      sandboxSweepMs: 1000,
      sandboxMaxConcurrentExecs: 2,
      sandboxPolicy: defaultSettings.sandboxPolicy,
      agentOfflineSeconds: 45,
      eventsRetention: { days: 7, intervalMs: 300_000 },
      github: { webhookSecret: undefined },
      notifications: defaultSettings.notifications,
    });
    expect(defaultSettings.leaseSeconds).toBe(DEFAULT_LEASE_SECONDS);
  });
});

describe('the sandbox policy (SANDBOX_POLICY_FILE over the SANDBOX_* variables)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'devart-policy-'));
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('defaults to no egress, only AGENT_CONTAINER_IMAGE, conservative limits and the private ranges denied', () => {
    const policy = loadConfig({}).sandboxPolicy;
    expect(policy.default).toEqual({
      images: [],
      egress: [],
      maxCpu: 1000,
      maxMemory: 1024,
      maxTtlSeconds: 3600,
      maxPerTask: 3,
    });
    expect(policy.capabilities).toEqual({});
    expect(policy.denied.map((d) => d.cidr)).toEqual([
      ...ALWAYS_DENIED.map((d) => d.cidr),
      '10.0.0.0/8',
      '172.16.0.0/12',
      '192.168.0.0/16',
      '100.64.0.0/10',
      'fc00::/7',
    ]);
    expect(loadConfig({ AGENT_CONTAINER_IMAGE: 'busybox:1.36' }).sandboxPolicy.default.images).toEqual([
      'busybox:1.36',
    ]);
  });

  it('takes the default from the environment, and SANDBOX_DENIED_CIDRS in place of the private ranges', () => {
    const policy = loadConfig({
      SANDBOX_ALLOWED_IMAGES: 'a:1, b:2',
      SANDBOX_ALLOWED_EGRESS: '203.0.113.0/24,2001:db8::/32',
      SANDBOX_MAX_CPU: '2000',
      SANDBOX_MAX_MEMORY: '2048',
      SANDBOX_MAX_TTL_SECONDS: '600',
      SANDBOX_MAX_PER_TASK: '1',
      SANDBOX_DENIED_CIDRS: '10.96.0.0/12, 10.244.0.0/16',
    }).sandboxPolicy;
    expect(policy.default).toEqual({
      images: ['a:1', 'b:2'],
      egress: [{ cidr: '203.0.113.0/24' }, { cidr: '2001:db8::/32' }],
      maxCpu: 2000,
      maxMemory: 2048,
      maxTtlSeconds: 600,
      maxPerTask: 1,
    });
    expect(policy.denied.slice(ALWAYS_DENIED.length).map((d) => d.cidr)).toEqual([
      '10.96.0.0/12',
      '10.244.0.0/16',
    ]);
    for (const [env, name] of [
      [{ SANDBOX_ALLOWED_EGRESS: '0.0.0.0' }, 'SANDBOX_ALLOWED_EGRESS'],
      [{ SANDBOX_DENIED_CIDRS: '10.0.0.0/33' }, 'SANDBOX_DENIED_CIDRS'],
      [{ SANDBOX_MAX_CPU: '9000' }, 'SANDBOX_MAX_CPU'],
      [{ SANDBOX_MAX_PER_TASK: '0' }, 'SANDBOX_MAX_PER_TASK'],
    ] as const)
      expect(refusal(env), name).toMatch(new RegExp(`^  ${name}: `, 'm'));
  });

  it('reads a YAML or JSON file: its default over the environment, each capability over its default', () => {
    const yaml = file(
      'policy.yaml',
      [
        'default:',
        '  max_ttl_seconds: 1200',
        'capabilities:',
        '  build:',
        '    images: [ghcr.io/org/builder:1]',
        '    egress:',
        '      - { cidr: 140.82.112.0/20, ports: [443] }',
        '    max_cpu: 4000',
        'denied_cidrs: [10.96.0.0/12]',
      ].join('\n'),
    );
    const policy = loadConfig({ SANDBOX_POLICY_FILE: yaml, SANDBOX_MAX_MEMORY: '512' }).sandboxPolicy;
    expect(policy.default).toMatchObject({ maxTtlSeconds: 1200, maxMemory: 512, egress: [] });
    expect(policy.capabilities.build).toEqual({
      images: ['ghcr.io/org/builder:1'],
      egress: [{ cidr: '140.82.112.0/20', ports: [443] }],
      maxCpu: 4000,
      maxMemory: 512,
      maxTtlSeconds: 1200,
      maxPerTask: 3,
    });
    expect(policy.denied.slice(ALWAYS_DENIED.length).map((d) => d.cidr)).toEqual(['10.96.0.0/12']);
    const json = file(
      'policy.json',
      JSON.stringify({ capabilities: { web: { max_sandboxes_per_task: 1 } } }),
    );
    expect(loadConfig({ SANDBOX_POLICY_FILE: json }).sandboxPolicy.capabilities.web?.maxPerTask).toBe(1);
  });

  it('stops start-up on a bad file, naming the variable, the file and the field', () => {
    const cases: [string, RegExp][] = [
      [
        file('wide.yaml', 'capabilities:\n  web:\n    egress:\n      - cidr: 10.0.0.0/40\n'),
        /capabilities\.web\.egress\[0\]\.cidr: must be a CIDR block/,
      ],
      [file('cpu.json', '{"default": {"max_cpu": 100000}}'), /default\.max_cpu: /],
      [file('typo.yaml', 'default:\n  max_cpus: 2\n'), /default: .*max_cpus/],
      [file('broken.json', '{"default": '), /: /],
      [file('broken.yaml', 'default: [\n'), /: /],
      [join(dir, 'missing.yaml'), /ENOENT/],
    ];
    for (const [path, field] of cases) {
      const message = refusal({ SANDBOX_POLICY_FILE: path });
      expect(message, path).toContain(`  SANDBOX_POLICY_FILE: ${path}: `);
      expect(message, path).toMatch(field);
    }
  });
});
