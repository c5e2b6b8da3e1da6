import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { insertTasks } from '@devart/db';
import { type FakeKubernetes, type PolicyRule, startFakeKubernetes } from '@devart/sandbox/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { TEST_JWT_SECRET, testLogger, testPlatformInputs } from '../../../test/api';
import { backend, createTestDatabase, type TestDatabase } from '../../../test/db';
import { expectProblem } from '../../../test/http';
import { bubblewrap, createTestSandboxBackend } from '../../../test/sandbox';
import { signUserToken } from './auth/jwt';
import { DEFAULT_DENIED_CIDRS, loadConfig } from './config';
import { defaultSettings, type WiredPlatform, wirePlatform } from './platform';
import { createSandboxBackend } from './server';
import {
  buildSandboxPolicy,
  checkSandboxRequest,
  cidrContains,
  cidrsOverlap,
  DEFAULT_LIMITS,
  parseCidr,
} from './services/sandbox-policy';
import type { SandboxBackend } from './services/sandboxes';

const cidr = (text: string) => {
  const parsed = parseCidr(text);
  if (!parsed) throw new Error(`not a CIDR: ${text}`);
  return parsed;
};

describe('CIDR arithmetic', () => {
  it('parses IPv4 and IPv6 blocks, clearing host bits, and refuses what is not one', () => {
    expect(cidr('10.1.2.3/8')).toEqual({ family: 4, bits: 32, network: 0x0a000000n, prefix: 8 });
    expect(cidr('0.0.0.0/0')).toMatchObject({ network: 0n, prefix: 0 });
    expect(cidr('fe80::1/10')).toMatchObject({ family: 6, network: 0xfe80n << 112n, prefix: 10 });
    expect(cidr('::ffff:169.254.169.254/128').network).toBe((0xffffn << 32n) | 0xa9fea9fen);
    expect(cidr('2001:db8::/32').network).toBe(0x20010db8n << 96n);
    for (const bad of [
      '10.0.0.0',
      '10.0.0.0/33',
      '300.0.0.0/8',
      '::/129',
      'fe80::1%eth0/64',
      'a/1',
      '1.2.3.4/-1',
    ])
      expect(parseCidr(bad), bad).toBeUndefined();
  });

  it.each([
    ['10.0.0.0/8', '10.20.0.0/16', true],
    ['10.0.0.0/8', '11.0.0.0/16', false],
    ['10.0.0.0/16', '10.0.0.0/8', false],
    ['0.0.0.0/0', '203.0.113.7/32', true],
    ['203.0.113.0/24', '203.0.113.0/24', true],
    ['fe80::/10', 'febf:ffff::/32', true],
    ['fe80::/10', 'fec0::/16', false],
    ['::/0', '2001:db8::/32', true],
    // Never across families: ::/0 is not IPv4's everything.
    ['::/0', '10.0.0.0/8', false],
    ['0.0.0.0/0', '::1/128', false],
  ])('%s contains %s: %s', (outer, inner, expected) => {
    expect(cidrContains(cidr(outer), cidr(inner))).toBe(expected);
  });

  it('overlaps when either holds the other', () => {
    expect(cidrsOverlap(cidr('0.0.0.0/0'), cidr('169.254.0.0/16'))).toBe(true);
    expect(cidrsOverlap(cidr('169.254.169.254/32'), cidr('169.254.0.0/16'))).toBe(true);
    expect(cidrsOverlap(cidr('203.0.113.0/24'), cidr('169.254.0.0/16'))).toBe(false);
  });
});

describe('checkSandboxRequest', () => {
  const base = { images: ['busybox:1.36'], egress: [], ...DEFAULT_LIMITS };
  const policy = buildSandboxPolicy(base, DEFAULT_DENIED_CIDRS, {
    capabilities: {
      web: {
        egress: [
          { cidr: '0.0.0.0/0', ports: [443] },
          { cidr: '::/0', ports: [443] },
        ],
      },
      internal: { egress: [{ cidr: '10.20.0.0/16' }] },
    },
  });
  const ask = (capability: string | null, cidrs: string[], ports?: number[]) =>
    checkSandboxRequest(policy, capability, {
      ttl_seconds: 900,
      egress: { allow: cidrs.map((c) => ({ cidr: c, ports })) },
    });

  it('allows a block inside a grant that reaches nothing denied', () => {
    expect(ask('web', ['203.0.113.0/24', '2001:db8::/32'], [443])).toEqual({
      outcome: 'allowed',
      maxPerTask: 3,
    });
  });

  it('refuses a denied range even inside a wider grant, naming the item and the range', () => {
    expect(ask('web', ['203.0.113.0/24', '169.254.169.254/32'], [443])).toMatchObject({
      outcome: 'refused',
      field: 'egress.allow[1].cidr',
      detail: expect.stringContaining('169.254.0.0/16 (link-local'),
    });
    expect(ask('web', ['0.0.0.0/0'], [443])).toMatchObject({
      outcome: 'refused',
      field: 'egress.allow[0].cidr',
    });
    expect(ask('web', ['fe80::/64'], [443])).toMatchObject({ detail: expect.stringContaining('fe80::/10') });
    expect(ask('web', ['::ffff:0:0/96'], [443])).toMatchObject({
      detail: expect.stringContaining('IPv4-mapped'),
    });
    expect(ask('web', ['127.0.0.1/32'], [443])).toMatchObject({
      detail: expect.stringContaining('loopback'),
    });
    expect(ask('web', ['10.96.0.10/32'], [443])).toMatchObject({
      detail: expect.stringContaining('10.0.0.0/8 (the cluster’s own addresses'),
    });
  });

  it('allows a denied range where the operator listed a block inside it', () => {
    expect(ask('internal', ['10.20.1.0/24'])).toMatchObject({ outcome: 'allowed' });
    expect(ask('internal', ['10.0.0.0/8'])).toMatchObject({
      outcome: 'refused',
      detail: expect.stringContaining(
        'not inside the egress the sandbox policy of capability internal allows',
      ),
    });
  });

  it('wants ports a grant with ports lists, all of them', () => {
    expect(ask('web', ['203.0.113.0/24'])).toMatchObject({ field: 'egress.allow[0].ports' });
    expect(ask('web', ['203.0.113.0/24'], [443, 22])).toMatchObject({ field: 'egress.allow[0].ports' });
  });

  it('uses the default for a task without a capability or with an unlisted one', () => {
    expect(ask(null, ['203.0.113.0/24'], [443])).toMatchObject({
      detail: expect.stringContaining('the default sandbox policy allows (allowed: none)'),
    });
    expect(ask('constructor', ['203.0.113.0/24'], [443])).toMatchObject({ outcome: 'refused' });
  });

  it('calls a block that is not one invalid, not refused', () => {
    expect(ask('web', ['999.0.0.0/8'], [443])).toMatchObject({
      outcome: 'invalid',
      field: 'egress.allow[0].cidr',
    });
  });
});

// ── Over HTTP, on both providers ──────────────────────────────────────────────────────────────

const role = parse(readFileSync(join(import.meta.dirname, '../../../deploy/k8s/role.yaml'), 'utf8')) as {
  rules: PolicyRule[];
};

/** The policy the HTTP tests run under: the environment's defaults, `web` may reach one public block. */
function policyFor(image: string | undefined) {
  return buildSandboxPolicy(
    { images: image ? [image] : [], egress: [], ...DEFAULT_LIMITS },
    DEFAULT_DENIED_CIDRS,
    {
      capabilities: {
        web: { egress: [{ cidr: '0.0.0.0/0', ports: [443] }], max_sandboxes_per_task: 1 },
      },
    },
  );
}

interface Setup {
  name: string;
  skip: boolean;
  start(): Promise<{
    backend: SandboxBackend;
    image?: string;
    live(): Promise<number>;
    close(): Promise<void>;
  }>;
}

const setups: Setup[] = [
  {
    name: 'local bubblewrap provider',
    skip: !bubblewrap.available,
    async start() {
      const sandboxes = createTestSandboxBackend();
      return {
        backend: sandboxes.backend,
        live: async () => (await sandboxes.provider.list()).length,
        close: () => sandboxes.cleanup(),
      };
    },
  },
  {
    name: 'Kubernetes provider (fake API server enforcing deploy/k8s/role.yaml)',
    skip: false,
    async start() {
      const fake: FakeKubernetes = await startFakeKubernetes({ rules: role.rules });
      const image = 'busybox:1.36';
      const config = loadConfig({
        SANDBOX_PROVIDER: 'kubernetes',
        KUBE_CONFIG_DATA: fake.kubeConfigBase64(),
        K8S_NAMESPACE: fake.namespace,
        AGENT_CONTAINER_IMAGE: image,
      });
      // The default policy of that environment: only AGENT_CONTAINER_IMAGE, no egress.
      expect(config.sandboxPolicy.default).toMatchObject({ images: [image], egress: [] });
      return {
        backend: await createSandboxBackend(config, testLogger()),
        image,
        live: async () => fake.pods.size + fake.networkPolicies.size,
        close: () => fake.close(),
      };
    },
  },
];

describe.each(setups)(`the sandbox policy over HTTP on ${backend}: $name`, (setup) => {
  let database: TestDatabase;
  let started: Awaited<ReturnType<Setup['start']>>;
  let wired: WiredPlatform;
  let agent: { id: string; key: string };

  const call = (path: string, body: unknown) =>
    wired.app.request(path, {
      method: 'POST',
      headers: { authorization: `Bearer ${agent.key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const request = (body: Record<string, unknown>) => call(`/api/agents/${agent.id}/request-sandbox`, body);

  async function heldTask(capability: string): Promise<string> {
    const [task] = await insertTasks(database.db, [{ title: 'sandboxed', capability, created_by: null }]);
    expect((await call(`/api/tasks/${task!.id}/start`, {})).status).toBe(200);
    return task!.id;
  }

  async function refused(body: Record<string, unknown>, field: string, limit: string | RegExp) {
    const problem = await expectProblem(await request(body), 403, 'forbidden');
    expect(problem.detail).toMatch(new RegExp(`^body\\.${field.replace(/[.[\]]/g, '\\$&')}: `));
    if (typeof limit === 'string') expect(problem.detail).toContain(limit);
    else expect(problem.detail).toMatch(limit);
    return problem;
  }

  beforeAll(async () => {
    if (setup.skip) return;
    started = await setup.start();
    database = await createTestDatabase();
    wired = await wirePlatform(
      testPlatformInputs(database.db, {
        sandboxes: started.backend,
        settings: { ...defaultSettings, sandboxPolicy: policyFor(started.image) },
      }),
    );
    const admin = await signUserToken(TEST_JWT_SECRET, { role: 'admin', ttlSeconds: 300 });
    const res = await wired.app.request('/api/agents', {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'policy agent', capabilities: ['shell', 'web'] }),
    });
    const body = (await res.json()) as { id: string; api_key: string };
    agent = { id: body.id, key: body.api_key };
  });

  afterAll(async () => {
    await wired?.close();
    await database?.drop();
    await started?.close();
  });

  it.skipIf(setup.skip)(
    'refuses 403 what the policy does not allow, naming the field and the limit, and records or provisions nothing',
    async () => {
      const shell = await heldTask('shell');
      const web = await heldTask('web');
      // The default policy: no egress at all.
      await refused(
        { task_id: shell, egress: { allow: [{ cidr: '0.0.0.0/0' }] } },
        'egress.allow[0].cidr',
        'not inside the egress the default sandbox policy allows (allowed: none)',
      );
      // web may reach 0.0.0.0/0 port 443, but never link-local, loopback or the cluster's ranges.
      await refused(
        { task_id: web, egress: { allow: [{ cidr: '0.0.0.0/0', ports: [443] }] } },
        'egress.allow[0].cidr',
        /reaches .* which the sandbox policy of capability web does not list/,
      );
      await refused(
        {
          task_id: web,
          egress: {
            allow: [
              { cidr: '203.0.113.0/24', ports: [443] },
              { cidr: '169.254.169.254/32', ports: [443] },
            ],
          },
        },
        'egress.allow[1].cidr',
        '169.254.0.0/16 (link-local',
      );
      await refused(
        { task_id: web, egress: { allow: [{ cidr: 'fe80::/64', ports: [443] }] } },
        'egress.allow[0].cidr',
        'not inside',
      );
      await refused(
        { task_id: web, egress: { allow: [{ cidr: '203.0.113.0/24', ports: [22] }] } },
        'egress.allow[0].ports',
        '0.0.0.0/0 ports 443',
      );
      await refused(
        { task_id: shell, image: 'evil.example/miner:latest' },
        'image',
        '"evil.example/miner:latest"',
      );
      await refused({ task_id: shell, resources: { cpu: 2000 } }, 'resources.cpu', 'max_cpu of 1000');
      await refused(
        { task_id: shell, resources: { memory: 2048 } },
        'resources.memory',
        'max_memory of 1024',
      );
      await refused({ task_id: shell, ttl_seconds: 7200 }, 'ttl_seconds', 'max_ttl_seconds of 3600');
      // A block that is no address is a bad request, not a refusal.
      const invalid = await expectProblem(
        await request({ task_id: web, egress: { allow: [{ cidr: '999.1.1.1/8', ports: [443] }] } }),
        400,
        'validation',
      );
      expect(invalid.errors?.[0]?.field).toBe('egress.allow[0].cidr');

      const { rows } = await database.db.query('SELECT id FROM sandboxes WHERE task_id IN ($1, $2)', [
        shell,
        web,
      ]);
      expect(rows).toEqual([]);
      expect(await started.live()).toBe(0);
    },
    30_000,
  );

  it.skipIf(setup.skip)(
    'provisions a request inside the policy, and refuses more sandboxes for one task than it allows',
    async () => {
      const shell = await heldTask('shell');
      const inside = {
        task_id: shell,
        resources: { cpu: 1000, memory: 1024 },
        ttl_seconds: 3600,
        ...(started.image ? { image: started.image } : {}),
      };
      const res = await request(inside);
      expect(res.status, await res.clone().text()).toBe(201);
      expect(((await res.json()) as { status: string }).status).toBe('RUNNING');

      const web = await heldTask('web');
      const open = { task_id: web, egress: { allow: [{ cidr: '203.0.113.0/24', ports: [443] }] } };
      if (started.image) {
        // Kubernetes enforces the allowlist with a NetworkPolicy: provisioned.
        const opened = await request(open);
        expect(opened.status, await opened.clone().text()).toBe(201);
      } else {
        // The policy allows it, but the local provider cannot enforce an allowlist: 400, never open.
        const problem = await expectProblem(await request(open), 400, 'validation');
        expect(problem.errors?.[0]?.field).toBe('egress');
        expect((await request({ task_id: web })).status).toBe(201);
      }
      // web allows one live sandbox per task.
      const second = await expectProblem(await request({ task_id: web }), 409, 'conflict');
      expect(second.detail).toContain('already has 1 live sandboxes, the most the sandbox policy allows');
    },
    30_000,
  );
});
