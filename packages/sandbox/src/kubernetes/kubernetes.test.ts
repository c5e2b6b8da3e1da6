import { ApiException, CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import type { IPod } from 'kubernetes-models/v1';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createKubernetesProvider,
  KubernetesConfigError,
  type KubernetesProviderOptions,
  kubernetesConfigFromEnv,
  sandboxExecArgv,
} from '../index';
import {
  SandboxNotFoundError,
  type SandboxProvider,
  type SandboxSpec,
  SandboxSpecError,
  SandboxUnavailableError,
} from '../provider';
import {
  type ExecHandler,
  type FakeKubernetes,
  type FakeKubernetesOptions,
  startFakeKubernetes,
} from '../testing';

const TASK = '0b7c3d7e-1d7a-4c55-9a43-0c1c1d1e1f10';
const IMAGE = 'ghcr.io/devart/agent-sandbox:1.0';

const spec = (overrides: Partial<SandboxSpec> = {}): SandboxSpec => ({
  taskId: TASK,
  cpu: 500,
  memory: 256,
  ttlSeconds: 600,
  egress: 'none',
  ...overrides,
});

let fake: FakeKubernetes;

async function useFake(options: FakeKubernetesOptions = {}): Promise<FakeKubernetes> {
  await fake?.close();
  fake = await startFakeKubernetes(options);
  return fake;
}

function provider(overrides: Partial<KubernetesProviderOptions> = {}): SandboxProvider {
  return createKubernetesProvider({
    kubeConfig: fake.kubeConfig(),
    namespace: fake.namespace,
    image: IMAGE,
    pollIntervalMs: 5,
    ...overrides,
  });
}

const posted = (path: string) => fake.requests.filter((r) => r.method === 'POST' && r.path.endsWith(path));
const podBody = () => posted('/pods')[0]?.body as IPod;
const policyBody = () => posted('/networkpolicies')[0]?.body as INetworkPolicy;
const execQuery = () => fake.requests.filter((r) => r.upgrade).at(-1)?.query;

/** Resolves once the fake stores a pod, for hooks that act while provision is waiting. */
async function podCreated(): Promise<string> {
  await vi.waitFor(() => expect(fake.pods.size).toBe(1), { interval: 2 });
  return [...fake.pods.keys()][0]!;
}

beforeEach(async () => {
  await useFake();
});

afterEach(async () => {
  await fake.close();
});

describe('provision', () => {
  it('creates the NetworkPolicy before the Pod and returns once the Pod runs', async () => {
    const info = await provider().provision(spec());

    expect(info).toEqual({ id: expect.stringMatching(/^sbx-[0-9a-f]{16}$/), status: 'running' });
    const creates = fake.requests.filter((r) => r.method === 'POST').map((r) => r.path);
    expect(creates).toEqual([
      '/apis/networking.k8s.io/v1/namespaces/devart/networkpolicies',
      '/api/v1/namespaces/devart/pods',
    ]);
    const reads = fake.requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/pods/${info.id}`));
    expect(reads.length).toBeGreaterThanOrEqual(2); // Pending once, then Running
    expect(fake.pods.get(info.id)?.status.phase).toBe('Running');
  });

  it('sends a locked-down Pod: non-root, no escalation, no capabilities, read-only root, no token', async () => {
    const { id } = await provider().provision(spec({ cpu: 1500, memory: 512, ttlSeconds: 900 }));
    const pod = podBody();

    expect(pod.metadata).toEqual({
      name: id,
      namespace: 'devart',
      labels: {
        'app.kubernetes.io/managed-by': 'devart',
        'devart.dev/sandbox-id': id,
        'devart.dev/task-id': TASK,
      },
    });
    expect(pod.spec).toMatchObject({
      restartPolicy: 'Never',
      activeDeadlineSeconds: 900,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: 1,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 65532,
        runAsGroup: 65532,
        fsGroup: 65532,
        seccompProfile: { type: 'RuntimeDefault' },
      },
    });
    expect(pod.spec?.containers).toHaveLength(1);
    const [container] = pod.spec?.containers ?? [];
    expect(container).toMatchObject({
      name: 'sandbox',
      image: IMAGE,
      command: ['sleep', '900'],
      workingDir: '/workspace',
      resources: {
        requests: { cpu: '1500m', memory: '512Mi' },
        limits: { cpu: '1500m', memory: '512Mi' },
      },
      securityContext: {
        runAsNonRoot: true,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        privileged: false,
        capabilities: { drop: ['ALL'] },
      },
      volumeMounts: [
        { name: 'workspace', mountPath: '/workspace' },
        { name: 'tmp', mountPath: '/tmp' },
      ],
    });
    expect(container?.securityContext?.capabilities?.add).toBeUndefined();
    expect(pod.spec?.volumes).toEqual([
      { name: 'workspace', emptyDir: { sizeLimit: '1024Mi' } },
      { name: 'tmp', emptyDir: { sizeLimit: '256Mi' } },
    ]);
    for (const risky of ['hostNetwork', 'hostPID', 'hostIPC', 'serviceAccountName'] as const) {
      expect(pod.spec?.[risky]).toBeUndefined();
    }
  });

  it('uses the image the spec names over the default', async () => {
    await provider().provision(spec({ image: 'busybox:1.36' }));
    expect(podBody().spec?.containers[0]?.image).toBe('busybox:1.36');
  });

  it('egress none: a policy on the pod with no ingress and no egress rules', async () => {
    const { id } = await provider().provision(spec());
    expect(policyBody()).toEqual({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: {
        name: id,
        namespace: 'devart',
        labels: {
          'app.kubernetes.io/managed-by': 'devart',
          'devart.dev/sandbox-id': id,
          'devart.dev/task-id': TASK,
        },
      },
      spec: {
        podSelector: { matchLabels: { 'devart.dev/sandbox-id': id } },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [],
        egress: [],
      },
    });
  });

  it('egress allowlist: one rule per entry, TCP ports, all ports when none are named', async () => {
    await provider().provision(
      spec({
        egress: {
          allow: [
            { cidr: '203.0.113.7/32', ports: [443, 8443] },
            { cidr: '10.0.0.0/8' },
            { cidr: '2001:db8::/32' },
          ],
        },
      }),
    );
    expect(policyBody().spec?.egress).toEqual([
      {
        to: [{ ipBlock: { cidr: '203.0.113.7/32' } }],
        ports: [
          { protocol: 'TCP', port: 443 },
          { protocol: 'TCP', port: 8443 },
        ],
      },
      { to: [{ ipBlock: { cidr: '10.0.0.0/8' } }] },
      { to: [{ ipBlock: { cidr: '2001:db8::/32' } }] },
    ]);
  });

  it.each([
    ['taskId', { taskId: 'not a label value' }],
    ['cpu', { cpu: 0 }],
    ['memory', { memory: 1.5 }],
    ['ttlSeconds', { ttlSeconds: -1 }],
    ['image', { image: 'Not An Image' }],
    ['egress', { egress: { allow: [{ cidr: '10.0.0.0/33' }] } }],
    ['egress', { egress: { allow: [{ cidr: 'example.com/32' }] } }],
    ['egress', { egress: { allow: [{ cidr: '10.0.0.0/8', ports: [70_000] }] } }],
  ] as const)('rejects a bad %s before calling the cluster', async (field, overrides) => {
    const error = await provider()
      .provision(spec(overrides as Partial<SandboxSpec>))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SandboxSpecError);
    expect((error as SandboxSpecError).field).toBe(field);
    expect(fake.requests).toEqual([]);
  });

  it('fails fast on an image that cannot be pulled, and removes what it created', async () => {
    await useFake({ runningAfterGets: Number.POSITIVE_INFINITY });
    const provisioning = provider()
      .provision(spec())
      .catch((e: unknown) => e);
    fake.setContainerWaiting(await podCreated(), 'ErrImagePull', 'manifest unknown');

    const error = await provisioning;
    expect(error).toBeInstanceOf(SandboxSpecError);
    expect((error as SandboxSpecError).field).toBe('image');
    expect((error as Error).message).toContain('manifest unknown');
    expect(fake.pods.size).toBe(0);
    expect(fake.networkPolicies.size).toBe(0);
  });

  it('gives up after podReadyTimeoutMs, and removes what it created', async () => {
    await useFake({ runningAfterGets: Number.POSITIVE_INFINITY });
    const error = await provider({ podReadyTimeoutMs: 50 })
      .provision(spec())
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SandboxUnavailableError);
    expect((error as Error).message).toMatch(/not running after 50 ms/);
    expect(fake.pods.size).toBe(0);
    expect(fake.networkPolicies.size).toBe(0);
  });

  it('reports a pod that failed before running, and removes it', async () => {
    await useFake({ runningAfterGets: Number.POSITIVE_INFINITY });
    const provisioning = provider()
      .provision(spec())
      .catch((e: unknown) => e);
    fake.setPodPhase(await podCreated(), 'Failed', 'Evicted', 'The node was low on resource: memory.');
    const error = await provisioning;
    expect(error).toBeInstanceOf(SandboxUnavailableError);
    expect((error as Error).message).toContain('Evicted');
    expect(fake.pods.size).toBe(0);
  });

  it('waits for a pod that runs only after a while (fake clock)', async () => {
    await useFake({ runningAfterMs: 60_000 });
    const provisioning = provider().provision(spec());
    await podCreated();
    fake.advanceClock(60_000);
    await expect(provisioning).resolves.toMatchObject({ status: 'running' });
  });
});

describe('get', () => {
  it('maps pod phases, DeadlineExceeded included', async () => {
    const sandboxes = provider();
    const { id } = await sandboxes.provision(spec({ ttlSeconds: 30 }));
    expect(await sandboxes.get(id)).toEqual({ id, status: 'running' });

    fake.setPodPhase(id, 'Pending');
    expect(await sandboxes.get(id)).toEqual({ id, status: 'pending' });

    fake.setPodPhase(id, 'Running');
    fake.advanceClock(30_000);
    expect(await sandboxes.get(id)).toEqual({ id, status: 'failed', reason: 'DeadlineExceeded' });

    fake.setPodPhase(id, 'Succeeded');
    expect(await sandboxes.get(id)).toEqual({ id, status: 'terminated' });
  });

  it('answers undefined for unknown ids, and does not ask about ids it never makes', async () => {
    const sandboxes = provider();
    expect(await sandboxes.get('sbx-0123456789abcdef')).toBeUndefined();
    expect(fake.requests.at(-1)).toMatchObject({ method: 'GET', status: 404 });
    const before = fake.requests.length;
    expect(await sandboxes.get('../../secrets/x')).toBeUndefined();
    expect(fake.requests.length).toBe(before);
  });
});

describe('exec', () => {
  let sandboxes: SandboxProvider;
  let id: string;

  async function ready(options: FakeKubernetesOptions = {}, providerOptions = {}): Promise<void> {
    await useFake(options);
    sandboxes = provider(providerOptions);
    ({ id } = await sandboxes.provision(spec()));
  }

  beforeEach(async () => {
    await ready();
  });

  it('captures stdout, stderr and a non-zero exit code from the status channel', async () => {
    const result = await sandboxes.exec(id, ['sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(result).toMatchObject({
      exitCode: 3,
      stdout: 'out\n',
      stderr: 'err\n',
      truncated: false,
      timedOut: false,
    });
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
    expect(execQuery()).toMatchObject({
      command: ['sh', '-c', 'echo out; echo err >&2; exit 3'],
      container: 'sandbox',
      stdout: 'true',
      stderr: 'true',
      stdin: 'false',
      tty: 'false',
    });
  });

  it('reports exit code 0 on Success', async () => {
    expect(await sandboxes.exec(id, ['true'])).toMatchObject({ exitCode: 0, stdout: '', stderr: '' });
  });

  it('feeds stdin and closes it (v5 close frame), so readers see EOF', async () => {
    const result = await sandboxes.exec(id, ['sh', '-c', 'wc -c; cat'], { stdin: 'hello\n' });
    // wc reads all of stdin, cat then finds it at EOF.
    expect(result).toMatchObject({ exitCode: 0, stdout: expect.stringMatching(/^\s*6\n$/) });
    expect(execQuery()?.stdin).toBe('true');
    expect(await sandboxes.exec(id, ['cat'], { stdin: '' })).toMatchObject({ exitCode: 0, stdout: '' });
  });

  it('passes env through `env -- K=V`', async () => {
    const result = await sandboxes.exec(id, ['sh', '-c', 'echo "$GREETING/$OTHER"'], {
      env: { GREETING: 'hi there', OTHER: 'a=b' },
    });
    expect(result.stdout).toBe('hi there/a=b\n');
    expect(execQuery()?.command).toEqual([
      'env',
      '--',
      'GREETING=hi there',
      'OTHER=a=b',
      'sh',
      '-c',
      'echo "$GREETING/$OTHER"',
    ]);
  });

  it('rejects env names that are not variable names', async () => {
    const error = await sandboxes.exec(id, ['true'], { env: { 'A B': 'x' } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SandboxSpecError);
    expect((error as SandboxSpecError).field).toBe('env');
  });

  it('truncates each stream at the output cap and keeps draining', async () => {
    await ready({}, { outputLimitBytes: 1000 });
    const result = await sandboxes.exec(id, ['sh', '-c', 'head -c 300000 /dev/zero; echo tail >&2']);
    expect(result.stdout).toHaveLength(1000);
    expect(result.stderr).toBe('tail\n');
    expect(result).toMatchObject({ truncated: true, exitCode: 0 });
  });

  it('times out: closes the stream, exit code 124, and kills inside with `timeout -s KILL`', async () => {
    let aborted = false;
    const handler: ExecHandler = (_pod, _argv, _stdin, signal) =>
      new Promise(() => signal.addEventListener('abort', () => (aborted = true)));
    await ready({ exec: handler });
    const result = await sandboxes.exec(id, ['sleep', '60'], { timeoutMs: 200 });
    expect(result).toMatchObject({ exitCode: 124, timedOut: true, stdout: '' });
    expect(result.durationMs).toBeGreaterThanOrEqual(190);
    expect(result.durationMs).toBeLessThan(2000);
    expect(execQuery()?.command).toEqual(['timeout', '-s', 'KILL', '2', 'sleep', '60']);
    await vi.waitFor(() => expect(aborted).toBe(true));
  });

  it('keeps the output of a timed-out command so far', async () => {
    const result = await sandboxes.exec(id, ['sh', '-c', 'echo started; sleep 30'], { timeoutMs: 500 });
    expect(result).toMatchObject({ exitCode: 124, timedOut: true, stdout: 'started\n' });
  });

  it('hands the handler the pod, argv and stdin, and relays its outcome', async () => {
    const seen: { pod?: string; argv?: string[]; stdin?: string } = {};
    await ready({
      exec: (pod, argv, stdin) => {
        Object.assign(seen, { pod: pod.metadata.name, argv, stdin: stdin.toString() });
        return { stdout: 'x'.repeat(100_000), stderr: 'warn', exitCode: 42 };
      },
    });
    const result = await sandboxes.exec(id, ['agent', '--run'], { stdin: 'input' });
    expect(seen).toEqual({ pod: id, argv: ['agent', '--run'], stdin: 'input' });
    expect(result).toMatchObject({ exitCode: 42, stderr: 'warn', truncated: false });
    expect(result.stdout).toHaveLength(100_000);
  });

  it('a command that cannot start reports the runtime error with exit code 127', async () => {
    const result = await sandboxes.exec(id, ['no-such-command-here']);
    expect(result.exitCode).toBe(127);
    expect(result.stderr).toMatch(/executable file not found/);
  });

  it('unknown or finished pods are SandboxNotFoundError', async () => {
    await expect(sandboxes.exec('sbx-0123456789abcdef', ['true'])).rejects.toBeInstanceOf(
      SandboxNotFoundError,
    );
    await expect(sandboxes.exec('nonsense', ['true'])).rejects.toBeInstanceOf(SandboxNotFoundError);
    fake.setPodPhase(id, 'Failed', 'DeadlineExceeded');
    await expect(sandboxes.exec(id, ['true'])).rejects.toBeInstanceOf(SandboxNotFoundError);
  });

  it('on a v4-only API server runs commands, but refuses stdin it could not close', async () => {
    await ready({ protocols: ['v4.channel.k8s.io'] });
    expect(await sandboxes.exec(id, ['echo', 'v4'])).toMatchObject({ exitCode: 0, stdout: 'v4\n' });
    const error = await sandboxes.exec(id, ['cat'], { stdin: 'x' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SandboxUnavailableError);
    expect((error as Error).message).toMatch(/v5\.channel\.k8s\.io/);
  });
});

describe('terminate and list', () => {
  it('deletes the pod (no grace) and the policy, and is idempotent', async () => {
    const sandboxes = provider();
    const { id } = await sandboxes.provision(spec());
    await sandboxes.terminate(id);

    const deletes = fake.requests.filter((r) => r.method === 'DELETE');
    expect(deletes.map((r) => [r.path, r.query.gracePeriodSeconds, r.status])).toEqual([
      [`/api/v1/namespaces/devart/pods/${id}`, '0', 200],
      [`/apis/networking.k8s.io/v1/namespaces/devart/networkpolicies/${id}`, undefined, 200],
    ]);
    expect(fake.pods.size + fake.networkPolicies.size).toBe(0);
    expect(await sandboxes.get(id)).toBeUndefined();

    await expect(sandboxes.terminate(id)).resolves.toBeUndefined();
    expect(fake.requests.filter((r) => r.method === 'DELETE').map((r) => r.status)).toEqual([
      200, 200, 404, 404,
    ]);
    await expect(sandboxes.terminate('not-ours')).resolves.toBeUndefined();
  });

  it('lists ours by label, including a policy left without its pod', async () => {
    const sandboxes = provider();
    const a = await sandboxes.provision(spec());
    const b = await sandboxes.provision(spec());
    const core = fake.kubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespacedPod({ namespace: 'devart', body: foreignPod('someone-else') });
    fake.pods.delete(b.id); // as if provision died between its two creates

    expect(await sandboxes.list()).toEqual([a.id, b.id].sort());
    const lists = fake.requests.filter(
      (r) => r.method === 'GET' && !/\/(pods|networkpolicies)\/[^/]+$/.test(r.path),
    );
    expect(lists.map((r) => r.query.labelSelector)).toEqual([
      'app.kubernetes.io/managed-by=devart',
      'app.kubernetes.io/managed-by=devart',
    ]);
  });
});

describe('errors', () => {
  it('the fake validates objects against the Kubernetes schema: 422 Invalid', async () => {
    const core = fake.kubeConfig().makeApiClient(CoreV1Api);
    const invalid = {
      metadata: { name: 'broken' },
      spec: { activeDeadlineSeconds: 'soon' },
    } as unknown as V1Pod;
    const error = await core
      .createNamespacedPod({ namespace: 'devart', body: invalid })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiException);
    expect((error as ApiException<string>).code).toBe(422);
    const status = JSON.parse((error as ApiException<string>).body);
    expect(status).toMatchObject({ kind: 'Status', reason: 'Invalid', code: 422 });
    expect(status.message).toMatch(/containers/);
    expect(status.message).toMatch(/activeDeadlineSeconds/);
    expect(fake.pods.size).toBe(0);
  });

  it('the fake answers 409 for a duplicate name and 403 outside its namespace', async () => {
    const core = fake.kubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespacedPod({ namespace: 'devart', body: foreignPod('twice') });
    const duplicate = await core
      .createNamespacedPod({ namespace: 'devart', body: foreignPod('twice') })
      .catch((e: unknown) => e);
    expect((duplicate as ApiException<string>).code).toBe(409);
    const elsewhere = await core.listNamespacedPod({ namespace: 'kube-system' }).catch((e: unknown) => e);
    expect((elsewhere as ApiException<string>).code).toBe(403);
  });

  it('an API server rejecting the object is a SandboxSpecError', async () => {
    // The provider checks the spec itself; an operator option it trusts reaches the server.
    const error = await provider({ workspaceMi: -1 })
      .provision(spec())
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SandboxSpecError);
    expect((error as Error).message).toMatch(/sizeLimit/);
    expect(fake.pods.size + fake.networkPolicies.size).toBe(0);
  });

  it('a forbidden namespace is SandboxUnavailableError', async () => {
    const error = await provider({ namespace: 'elsewhere' })
      .provision(spec())
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SandboxUnavailableError);
    expect((error as Error).message).toMatch(/HTTP 403/);
  });

  it('an unreachable cluster is SandboxUnavailableError', async () => {
    const kubeConfig = fake.kubeConfig();
    await fake.close();
    const sandboxes = createKubernetesProvider({ kubeConfig, namespace: 'devart', image: IMAGE });
    await expect(sandboxes.list()).rejects.toBeInstanceOf(SandboxUnavailableError);
    await expect(sandboxes.get('sbx-0123456789abcdef')).rejects.toBeInstanceOf(SandboxUnavailableError);
    await expect(sandboxes.exec('sbx-0123456789abcdef', ['true'])).rejects.toBeInstanceOf(
      SandboxUnavailableError,
    );
    fake = await startFakeKubernetes(); // for afterEach
  });
});

describe('sandboxExecArgv', () => {
  it('wraps env, then timeout, and leaves a bare command alone', () => {
    expect(sandboxExecArgv(['ls'])).toEqual(['ls']);
    expect(sandboxExecArgv(['ls'], { timeoutMs: 2500 })).toEqual(['timeout', '-s', 'KILL', '4', 'ls']);
    expect(sandboxExecArgv(['ls'], { timeoutMs: 2500, killOnTimeout: false })).toEqual(['ls']);
    expect(sandboxExecArgv(['ls'], { env: { A: '1' }, timeoutMs: 1000 })).toEqual([
      'timeout',
      '-s',
      'KILL',
      '2',
      'env',
      '--',
      'A=1',
      'ls',
    ]);
  });
});

describe('kubernetesConfigFromEnv', () => {
  const base = () => ({ KUBE_CONFIG_DATA: fake.kubeConfigBase64(), AGENT_CONTAINER_IMAGE: IMAGE });
  const configError = (env: Record<string, string | undefined>) => {
    try {
      kubernetesConfigFromEnv(env);
    } catch (error) {
      expect(error).toBeInstanceOf(KubernetesConfigError);
      return error as KubernetesConfigError;
    }
    throw new Error('expected a KubernetesConfigError');
  };

  it('reads a base64 kubeconfig, the namespace and the image', () => {
    const config = kubernetesConfigFromEnv({ ...base(), K8S_NAMESPACE: 'sandboxes' });
    expect(config.kubeConfig.getCurrentCluster()?.server).toBe(fake.url);
    expect(config).toMatchObject({ namespace: 'sandboxes', image: IMAGE });
  });

  it("defaults the namespace to the kubeconfig context's", () => {
    expect(kubernetesConfigFromEnv(base()).namespace).toBe('devart');
  });

  it('works end to end with the provider', async () => {
    const config = kubernetesConfigFromEnv(base());
    const sandboxes = createKubernetesProvider({ ...config, pollIntervalMs: 5 });
    const { id } = await sandboxes.provision(spec());
    expect(await sandboxes.list()).toEqual([id]);
  });

  it('in a cluster, uses the service account', () => {
    vi.stubEnv('KUBERNETES_SERVICE_HOST', '10.96.0.1');
    vi.stubEnv('KUBERNETES_SERVICE_PORT', '443');
    try {
      const config = kubernetesConfigFromEnv({
        KUBERNETES_SERVICE_HOST: '10.96.0.1',
        K8S_NAMESPACE: 'devart',
        AGENT_CONTAINER_IMAGE: IMAGE,
      });
      expect(config.kubeConfig.getCurrentCluster()?.server).toBe('https://10.96.0.1:443');
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it.each([
    [
      'missing kubeconfig',
      { KUBE_CONFIG_DATA: undefined },
      'KUBE_CONFIG_DATA',
      /KUBE_CONFIG_DATA is required/,
    ],
    [
      'not base64',
      { KUBE_CONFIG_DATA: 'not base64!' },
      'KUBE_CONFIG_DATA',
      /not valid base64 kubeconfig: not base64/,
    ],
    [
      'not YAML',
      { KUBE_CONFIG_DATA: Buffer.from('a: [').toString('base64') },
      'KUBE_CONFIG_DATA',
      /not valid base64 kubeconfig: .*flow collection/,
    ],
    [
      'not a kubeconfig',
      { KUBE_CONFIG_DATA: Buffer.from('hello').toString('base64') },
      'KUBE_CONFIG_DATA',
      /not valid base64 kubeconfig: no current-context/,
    ],
    [
      'bad namespace',
      { K8S_NAMESPACE: 'Not_A_Label' },
      'K8S_NAMESPACE',
      /K8S_NAMESPACE must be a DNS-1123 label/,
    ],
    [
      'missing image',
      { AGENT_CONTAINER_IMAGE: '' },
      'AGENT_CONTAINER_IMAGE',
      /AGENT_CONTAINER_IMAGE is required when SANDBOX_PROVIDER=kubernetes/,
    ],
    [
      'bad image',
      { AGENT_CONTAINER_IMAGE: 'UPPER/case image' },
      'AGENT_CONTAINER_IMAGE',
      /not an image reference/,
    ],
  ])('%s names the variable', (_case, overrides, variable, message) => {
    const error = configError({ ...base(), ...overrides });
    expect(error.variable).toBe(variable);
    expect(error.message).toMatch(message);
  });

  it('a kubeconfig context without a namespace needs K8S_NAMESPACE', () => {
    const yaml = fake.kubeConfigYaml().replace(/\n\s+namespace: devart/, '');
    const error = configError({ ...base(), KUBE_CONFIG_DATA: Buffer.from(yaml).toString('base64') });
    expect(error.variable).toBe('K8S_NAMESPACE');
  });
});

function foreignPod(name: string): V1Pod {
  return { metadata: { name }, spec: { containers: [{ name: 'main', image: 'busybox' }] } };
}
