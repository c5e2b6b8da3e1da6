import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { insertTasks } from '@devart/db';
import { type FakeKubernetes, type PolicyRule, startFakeKubernetes } from '@devart/sandbox/testing';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { TEST_JWT_SECRET, testPlatformInputs } from '../../../test/api';
import { backend, createTestDatabase, type TestDatabase } from '../../../test/db';
import { signUserToken } from './auth/jwt';
import { loadConfig } from './config';
import { defaultSettings, type WiredPlatform, wirePlatform } from './platform';
import { createSandboxBackend } from './server';
import { createSandboxService, type SandboxService } from './services/sandboxes';

// The platform configured as in a cluster (SANDBOX_PROVIDER=kubernetes), against the fake API
// server, which enforces the Role of deploy/k8s: the API may do only what that Role grants.
const role = parse(readFileSync(join(import.meta.dirname, '../../../deploy/k8s/role.yaml'), 'utf8')) as {
  rules: PolicyRule[];
};

let fake: FakeKubernetes;

/** The environment of an API process in the cluster, pointing at the fake. */
const clusterEnv = () => ({
  SANDBOX_PROVIDER: 'kubernetes',
  KUBE_CONFIG_DATA: fake.kubeConfigBase64(),
  K8S_NAMESPACE: fake.namespace,
  AGENT_CONTAINER_IMAGE: 'busybox:1.36',
});

/** The provider `devart start` builds from that environment. */
async function kubernetesProvider() {
  const built = await createSandboxBackend(loadConfig(clusterEnv()), logger);
  if (!built.provider) throw new Error(built.unavailable);
  return built.provider;
}
let database: TestDatabase;
let wired: WiredPlatform | undefined;
let service: SandboxService;
let app: WiredPlatform['app'];
let agent: { id: string; key: string };
const logger = pino({ level: 'silent' });

beforeAll(async () => {
  fake = await startFakeKubernetes({ rules: role.rules });
  database = await createTestDatabase();
  const provider = await kubernetesProvider();
  expect(provider.name).toBe('kubernetes');
  // The operator's policy lets this test's capability reach one public block on 443.
  const config = loadConfig({ ...clusterEnv(), SANDBOX_ALLOWED_EGRESS: '203.0.113.0/24' });
  wired = await wirePlatform(
    testPlatformInputs(database.db, {
      sandboxes: { provider },
      settings: { ...defaultSettings, sandboxPolicy: config.sandboxPolicy },
    }),
  );
  ({ app, sandboxes: service } = wired);
  const admin = await signUserToken(TEST_JWT_SECRET, { role: 'admin', ttlSeconds: 300 });
  const res = await call('POST', '/api/agents', admin, { name: 'k8s agent', capabilities: ['shell'] });
  const body = (await res.json()) as { id: string; api_key: string };
  agent = { id: body.id, key: body.api_key };
});

afterAll(async () => {
  await wired?.close();
  await database?.drop();
  await fake?.close();
});

function call(method: string, path: string, auth: string, body?: unknown) {
  return app.request(path, {
    method,
    headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function heldTask(): Promise<string> {
  const [task] = await insertTasks(database.db, [
    { title: 'in a pod', capability: 'shell', created_by: null },
  ]);
  expect((await call('POST', `/api/tasks/${task!.id}/start`, agent.key, {})).status).toBe(200);
  return task!.id;
}

describe(`sandboxes on the Kubernetes provider (fake API server enforcing deploy/k8s/role.yaml) on ${backend}`, () => {
  it('provisions a locked-down Pod behind a NetworkPolicy, execs in it, and deletes both when the task ends', async () => {
    const taskId = await heldTask();
    const res = await call('POST', `/api/agents/${agent.id}/request-sandbox`, agent.key, {
      task_id: taskId,
      resources: { cpu: 250, memory: 128 },
      ttl_seconds: 120,
      egress: { allow: [{ cidr: '203.0.113.0/24', ports: [443] }] },
    });
    const text = await res.text();
    expect(res.status, text).toBe(201);
    const sandbox = JSON.parse(text) as { sandbox_id: string; external_id: string; provider: string };
    expect(sandbox.provider).toBe('kubernetes');

    const pod = fake.pods.get(sandbox.external_id)!;
    expect(pod.metadata.labels).toMatchObject({
      'devart.dev/task-id': taskId,
      'devart.dev/sandbox-id': sandbox.external_id,
    });
    expect(pod.spec).toMatchObject({ automountServiceAccountToken: false, activeDeadlineSeconds: 120 });
    expect(pod.spec.containers[0]?.image).toBe('busybox:1.36');
    expect(pod.spec.containers[0]?.resources?.limits).toEqual({ cpu: '250m', memory: '128Mi' });
    const policy = fake.networkPolicies.get(sandbox.external_id)!;
    expect(policy.spec?.egress).toEqual([
      { to: [{ ipBlock: { cidr: '203.0.113.0/24' } }], ports: [{ protocol: 'TCP', port: 443 }] },
    ]);
    const createdFirst = fake.requests.find((r) => r.method === 'POST');
    expect(createdFirst?.path).toContain('/networkpolicies');

    // The fake runs exec argv on this host in place of the container runtime.
    const exec = await call('POST', `/api/sandboxes/${sandbox.sandbox_id}/exec`, agent.key, {
      command: ['sh', '-c', 'echo "in $0"; exit 4', 'pod'],
    });
    expect(await exec.json()).toMatchObject({ exit_code: 4, stdout: 'in pod\n' });

    expect((await call('POST', `/api/tasks/${taskId}/complete`, agent.key, {})).status).toBe(200);
    expect(await service.sweep()).toBe(1);
    expect(fake.pods.has(sandbox.external_id)).toBe(false);
    expect(fake.networkPolicies.has(sandbox.external_id)).toBe(false);
    // Every call the API made was allowed by the Role (the fake answers 403 otherwise).
    expect(fake.requests.filter((r) => r.status === 403)).toEqual([]);
  });

  it('removes Pods the table does not know at start-up (left by a crash), keeping live ones', async () => {
    const kept = (await (
      await call('POST', `/api/agents/${agent.id}/request-sandbox`, agent.key, { task_id: await heldTask() })
    ).json()) as { external_id: string };
    // Another process's provider, as after a restart.
    const provider = await kubernetesProvider();
    const orphan = await provider.provision({
      taskId: '00000000-0000-4000-8000-000000000000',
      cpu: 100,
      memory: 64,
      ttlSeconds: 60,
      egress: 'none',
    });
    expect(fake.pods.has(orphan.id)).toBe(true);

    const report = await createSandboxService({ db: database.db, logger, backend: { provider } }).reconcile();
    expect(report.removed).toEqual([orphan.id]);
    expect(fake.pods.has(orphan.id)).toBe(false);
    expect(fake.networkPolicies.has(orphan.id)).toBe(false);
    expect(fake.pods.has(kept.external_id)).toBe(true);
  });
});
