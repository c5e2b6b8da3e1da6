import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Deployment } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { LimitRange, Namespace, ResourceQuota, Service, ServiceAccount } from 'kubernetes-models/v1';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { createKubernetesProvider, isImageReference, sandboxPod } from '../index';
import { type FakeKubernetes, type PolicyRule, type RecordedRequest, startFakeKubernetes } from '../testing';

const K8S_DIR = fileURLToPath(new URL('../../../../deploy/k8s/', import.meta.url));

// biome-ignore lint/suspicious/noExplicitAny: manifests are arbitrary YAML, checked by the schema below.
type Manifest = Record<string, any>;

/** The kubernetes-models class for each kind the manifests may hold; any other kind fails the test. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'v1/ResourceQuota': ResourceQuota,
  'v1/LimitRange': LimitRange,
};

function loadManifests(): { file: string; doc: Manifest }[] {
  const files = readdirSync(K8S_DIR).filter((f) => /\.ya?ml$/.test(f));
  return files.flatMap((file) =>
    parseAllDocuments(readFileSync(`${K8S_DIR}${file}`, 'utf8'))
      .map((document) => {
        if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0]?.message}`);
        return document.toJSON() as Manifest | null;
      })
      .filter((doc): doc is Manifest => doc !== null)
      .map((doc) => ({ file, doc })),
  );
}

const manifests = loadManifests();
const one = (kind: string, name?: string): Manifest => {
  const found = manifests.filter(
    (m) => m.doc.kind === kind && (name === undefined || m.doc.metadata.name === name),
  );
  if (found.length !== 1)
    throw new Error(`expected one ${kind} ${name ?? ''} in deploy/k8s, found ${found.length}`);
  return found[0]!.doc;
};

/** Whether a label selector (matchLabels and matchExpressions) selects a Pod with `labels`. */
function selects(selector: Manifest, labels: Record<string, string>): boolean {
  const expressions = (selector.matchExpressions ?? []) as Manifest[];
  return (
    Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
    expressions.every((e) => {
      if (e.operator === 'Exists') return e.key in labels;
      if (e.operator === 'DoesNotExist') return !(e.key in labels);
      if (e.operator === 'In') return e.values.includes(labels[e.key]);
      if (e.operator === 'NotIn') return !e.values.includes(labels[e.key]);
      throw new Error(`unknown operator ${e.operator}`);
    })
  );
}

/** A CPU quantity in millicores ("250m", "8"). */
const cpuOf = (value: string | number) =>
  String(value).endsWith('m') ? Number(String(value).slice(0, -1)) : Number(value) * 1000;

/** A memory quantity in MiB (the Mi and Gi these manifests use). */
function quantity(value: string | number): number {
  const match = /^(\d+)(Mi|Gi)$/.exec(String(value));
  if (!match) throw new Error(`unexpected memory quantity ${value}`);
  return Number(match[1]) * (match[2] === 'Gi' ? 1024 : 1);
}

/** A sandbox Pod as the provider builds it. */
const sandbox = sandboxPod(
  { taskId: 't', cpu: 8000, memory: 16384, ttlSeconds: 60, egress: 'none' },
  { sandboxId: 'sbx-0123456789abcdef', namespace: 'devart', image: 'busybox' },
);

/**
 * What RBAC checks for a request, derived here independently of the fake: POST → create, GET
 * on an item → get, on a collection → list (watch with ?watch), DELETE → delete. Exec is a
 * WebSocket GET: `get` on pods/exec, plus `create` since Kubernetes 1.35.
 */
function permissionsOf(request: RecordedRequest): string[] {
  const match =
    /^\/(?:api\/v1|apis\/([^/]+)\/v1)\/namespaces\/[^/]+\/([^/]+)(?:\/([^/]+)(?:\/([^/]+))?)?$/.exec(
      request.path,
    );
  if (!match) throw new Error(`unexpected request path ${request.path}`);
  const [, group = '', resource, name, subresource] = match;
  const target = `${group}|${subresource ? `${resource}/${subresource}` : resource}`;
  if (request.upgrade) return [`${target}|get`, `${target}|create`];
  const verbs: Record<string, string> = { POST: 'create', DELETE: 'delete', PUT: 'update', PATCH: 'patch' };
  const verb = verbs[request.method] ?? (name ? 'get' : request.query.watch === 'true' ? 'watch' : 'list');
  return [`${target}|${verb}`];
}

function granted(rules: PolicyRule[]): string[] {
  return rules.flatMap((rule) =>
    (rule.apiGroups ?? []).flatMap((group) =>
      (rule.resources ?? []).flatMap((resource) => rule.verbs.map((verb) => `${group}|${resource}|${verb}`)),
    ),
  );
}

describe('deploy/k8s manifests', () => {
  it('every document is a known kind that passes the Kubernetes schema', () => {
    expect(manifests.length).toBeGreaterThanOrEqual(11);
    for (const { file, doc } of manifests) {
      const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
      expect(Model, `${file}: no model for ${doc.apiVersion} ${doc.kind}`).toBeDefined();
      expect(() => new Model!(doc as never).validate(), file).not.toThrow();
    }
  });

  it('puts every namespaced object in the devart namespace', () => {
    for (const { file, doc } of manifests) {
      if (doc.kind === 'Namespace') expect(doc.metadata.name).toBe('devart');
      else expect(doc.metadata.namespace, file).toBe('devart');
    }
  });

  it('binds the Role to the ServiceAccount the Deployment runs as', () => {
    const account = one('ServiceAccount');
    const role = one('Role');
    const binding = one('RoleBinding');
    const pod = one('Deployment').spec.template.spec;

    expect(account.automountServiceAccountToken).toBe(true);
    expect(pod.serviceAccountName).toBe(account.metadata.name);
    expect(pod.automountServiceAccountToken).not.toBe(false);
    expect(binding.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: role.metadata.name,
    });
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: account.metadata.name, namespace: 'devart' },
    ]);
    expect(manifests.some((m) => /^Cluster/.test(m.doc.kind))).toBe(false);
  });

  it('runs the API non-root with a read-only root filesystem, probes and the sandbox settings', () => {
    const deployment = one('Deployment');
    const pod = deployment.spec.template.spec;
    const [api] = pod.containers;
    const env = Object.fromEntries(pod.containers[0].env.map((e: Manifest) => [e.name, e]));

    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(api.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(api.livenessProbe.httpGet.path).toBe('/health');
    expect(api.readinessProbe.httpGet.path).toBe('/ready');
    expect(api.resources.requests).toBeDefined();
    expect(api.resources.limits.memory).toBeDefined();
    expect(api.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
    for (const secret of ['DATABASE_URL', 'JWT_SECRET', 'AMQP_URL']) {
      expect(env[secret]?.valueFrom?.secretKeyRef?.key, secret).toBe(secret);
    }
    expect(env.SANDBOX_PROVIDER.value).toBe('kubernetes');
    expect(env.K8S_NAMESPACE.valueFrom.fieldRef.fieldPath).toBe('metadata.namespace');
    expect(isImageReference(env.AGENT_CONTAINER_IMAGE.value)).toBe(true);
    expect(deployment.spec.selector.matchLabels).toEqual(
      expect.objectContaining(one('Service').spec.selector),
    );
  });

  it('default-denies sandbox Pods and leaves the API Pod alone', () => {
    const policy = one('NetworkPolicy', 'devart-sandboxes-default-deny');
    expect(selects(policy.spec.podSelector, sandbox.metadata!.labels!)).toBe(true);
    expect(selects(policy.spec.podSelector, one('Deployment').spec.template.metadata.labels)).toBe(false);
    expect(policy.spec).toMatchObject({ policyTypes: ['Ingress', 'Egress'], ingress: [], egress: [] });
  });

  it('admits to the API only its port, never from a sandbox, and lets it reach only DNS, PostgreSQL, RabbitMQ and the Kubernetes API', () => {
    const policy = one('NetworkPolicy', 'devart-api');
    const apiLabels = one('Deployment').spec.template.metadata.labels;
    expect(selects(policy.spec.podSelector, apiLabels)).toBe(true);
    expect(selects(policy.spec.podSelector, sandbox.metadata!.labels!)).toBe(false);
    expect(policy.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    // Ingress: the container's named port only, from peers none of which is a sandbox Pod.
    const [container] = one('Deployment').spec.template.spec.containers;
    expect(container.ports).toEqual([{ name: 'http', containerPort: 8787, protocol: 'TCP' }]);
    for (const rule of policy.spec.ingress as Manifest[]) {
      expect(rule.ports).toEqual([{ protocol: 'TCP', port: 'http' }]);
      expect(rule.from.length).toBeGreaterThan(0);
      for (const peer of rule.from as Manifest[]) {
        expect(peer.ipBlock).toBeUndefined();
        // A peer in this namespace (podSelector alone) must not select a sandbox, even one labelled as a client.
        if (peer.podSelector && !peer.namespaceSelector)
          expect(
            selects(peer.podSelector, { ...sandbox.metadata!.labels!, 'devart.dev/api-client': 'true' }),
          ).toBe(false);
        else expect(peer.podSelector ?? peer.namespaceSelector).toBeDefined();
      }
    }
    // Egress: every rule names its peers and ports; together exactly these ports.
    const ports = (policy.spec.egress as Manifest[]).flatMap((rule) => {
      expect(rule.to?.length, JSON.stringify(rule)).toBeGreaterThan(0);
      expect(rule.ports?.length, JSON.stringify(rule)).toBeGreaterThan(0);
      for (const peer of rule.to as Manifest[])
        if (peer.ipBlock) expect(Number(peer.ipBlock.cidr.split('/')[1])).toBe(32);
      return (rule.ports as Manifest[]).map((p) => `${p.protocol}/${p.port}`);
    });
    expect(ports.sort()).toEqual(
      [
        'UDP/53',
        'TCP/53',
        'TCP/5432',
        'TCP/5672',
        'TCP/5671',
        'TCP/15672',
        'TCP/15671',
        'TCP/443',
        'TCP/6443',
      ].sort(),
    );
  });

  it('caps what sandboxes take together (ResourceQuota on Terminating Pods: sandboxes, not the API)', () => {
    const quota = one('ResourceQuota', 'devart-sandboxes');
    // The Terminating scope counts Pods with activeDeadlineSeconds: every sandbox has it, the API has not.
    expect(quota.spec.scopes).toEqual(['Terminating']);
    expect(sandbox.spec!.activeDeadlineSeconds).toBeGreaterThan(0);
    expect(one('Deployment').spec.template.spec.activeDeadlineSeconds).toBeUndefined();
    const hard = quota.spec.hard as Record<string, string>;
    expect(Object.keys(hard).sort()).toEqual(
      ['pods', 'requests.cpu', 'requests.memory', 'limits.cpu', 'limits.memory'].sort(),
    );
    // At least one sandbox of the largest size the request schema allows fits.
    expect(cpuOf(hard['limits.cpu']!)).toBeGreaterThanOrEqual(8000);
    expect(quantity(hard['limits.memory']!)).toBeGreaterThanOrEqual(16384);
    const objects = one('ResourceQuota', 'devart-objects').spec.hard as Record<string, string>;
    // Each sandbox has a NetworkPolicy: room for all of them and devart's own two.
    expect(Number(objects['count/networkpolicies.networking.k8s.io'])).toBeGreaterThanOrEqual(
      Number(hard.pods) + 2,
    );
    expect(objects.services).toBeDefined();
  });

  it('bounds every container (LimitRange) around both the API and the largest sandbox the schema allows', () => {
    const [limits] = one('LimitRange').spec.limits as Manifest[];
    expect(limits!.type).toBe('Container');
    for (const resource of ['cpu', 'memory']) {
      for (const key of ['min', 'max', 'default', 'defaultRequest'])
        expect(limits![key][resource], key).toBeDefined();
    }
    const within = (resources: Manifest | undefined) => {
      for (const [resource, value] of Object.entries({ ...resources?.requests, ...resources?.limits })) {
        const of = resource === 'cpu' ? cpuOf : quantity;
        expect(of(value as string), resource).toBeGreaterThanOrEqual(of(limits!.min[resource]));
        expect(of(value as string), resource).toBeLessThanOrEqual(of(limits!.max[resource]));
      }
    };
    within(sandbox.spec!.containers[0]!.resources as Manifest);
    within(one('Deployment').spec.template.spec.containers[0].resources);
    // The API sets no CPU limit: the default gives it one above its request.
    expect(cpuOf(limits!.default.cpu)).toBeGreaterThanOrEqual(
      cpuOf(one('Deployment').spec.template.spec.containers[0].resources.requests.cpu),
    );
  });

  it('enforces Pod Security "restricted" on the namespace', () => {
    expect(one('Namespace').metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });
});

describe('the Role and the provider agree', () => {
  let fake: FakeKubernetes;
  const role = one('Role');

  beforeAll(async () => {
    // RBAC enforced with the Role's own rules: a missing verb fails the cycle with a 403.
    fake = await startFakeKubernetes({ rules: role.rules });
    const sandboxes = createKubernetesProvider({
      kubeConfig: fake.kubeConfig(),
      namespace: fake.namespace,
      image: 'busybox:1.36',
      pollIntervalMs: 5,
    });
    const spec = { taskId: 'task-1', cpu: 100, memory: 64, ttlSeconds: 60 };
    const closed = await sandboxes.provision({ ...spec, egress: 'none' });
    const open = await sandboxes.provision({
      ...spec,
      egress: { allow: [{ cidr: '10.0.0.0/8', ports: [443] }] },
    });
    await sandboxes.get(closed.id);
    await sandboxes.exec(closed.id, ['cat'], { stdin: 'x', env: { A: '1' }, timeoutMs: 5000 });
    await sandboxes.list();
    await sandboxes.terminate(closed.id);
    await sandboxes.terminate(closed.id);
    await sandboxes.terminate(open.id);
  });

  afterAll(async () => {
    await fake?.close();
  });

  it('a full provision/get/exec/list/terminate cycle passes under the Role', () => {
    expect(fake.requests.filter((r) => r.status === 403)).toEqual([]);
    expect(fake.pods.size + fake.networkPolicies.size).toBe(0);
  });

  it('grants exactly the (resource, verb) pairs the provider used', () => {
    const used = new Set(fake.requests.flatMap(permissionsOf));
    expect([...new Set(granted(role.rules))].sort()).toEqual([...used].sort());
    expect(used.has('|pods|watch')).toBe(false);
  });

  it('the fake derives the same permissions', () => {
    const fromFake = fake.permissionsUsed().map((p) => `${p.apiGroup}|${p.resource}|${p.verb}`);
    expect(fromFake.sort()).toEqual([...new Set(fake.requests.flatMap(permissionsOf))].sort());
  });

  it('grants nothing cluster-wide, no wildcards and no escalation verbs', () => {
    const flat = granted(role.rules);
    expect(flat.some((p) => p.includes('*'))).toBe(false);
    expect(flat.filter((p) => /\|(escalate|bind|impersonate|patch|update)$/.test(p))).toEqual([]);
  });
});

describe('the fake enforces RBAC', () => {
  it('answers 403 for a verb the rules do not grant', async () => {
    const fake = await startFakeKubernetes({
      rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }],
    });
    try {
      const sandboxes = createKubernetesProvider({
        kubeConfig: fake.kubeConfig(),
        namespace: fake.namespace,
        image: 'busybox',
      });
      await expect(sandboxes.list()).rejects.toThrow(/HTTP 403/);
    } finally {
      await fake.close();
    }
  });
});
