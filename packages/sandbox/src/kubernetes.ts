/**
 * The Kubernetes sandbox provider: one Pod per sandbox, fenced by its own NetworkPolicy, with
 * commands run through the pods/exec subresource.
 *
 * Image requirements: the sandbox image must provide `sleep` (the container's only process, it
 * keeps the pod alive until its deadline), `env` (exec with environment variables) and
 * `timeout` (exec with a wall-clock limit) — coreutils or busybox have all three. It runs as
 * uid/gid 65532 with a read-only root filesystem; only /workspace and /tmp are writable.
 */
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { Readable, Writable } from 'node:stream';
import {
  ApiException,
  CoreV1Api,
  Exec,
  KubeConfig,
  NetworkingV1Api,
  type V1NetworkPolicy,
  type V1NetworkPolicyEgressRule,
  type V1Pod,
  type V1Status,
} from '@kubernetes/client-node';
import {
  type ExecOptions,
  type ExecResult,
  OUTPUT_LIMIT_BYTES,
  type SandboxInfo,
  SandboxNotFoundError,
  type SandboxProvider,
  type SandboxSpec,
  SandboxSpecError,
  type SandboxStatus,
  SandboxUnavailableError,
} from './provider';

/** Label on every object the provider creates; list() and the default-deny policy select on it. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const SANDBOX_ID_LABEL = 'devart.dev/sandbox-id';
export const TASK_ID_LABEL = 'devart.dev/task-id';
/** The sandbox container's name, used by exec. */
export const SANDBOX_CONTAINER = 'sandbox';
/** uid, gid and fsGroup of the sandbox (the distroless "nonroot" user). */
export const SANDBOX_UID = 65532;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const LABEL_VALUE = /^(?=.{0,63}$)(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
/** The exec subprotocol that can close one stream (stdin) and keep the others open. */
const STREAM_CLOSE_PROTOCOL = 'v5.channel.k8s.io';
const SANDBOX_ID = /^sbx-[0-9a-f]{16}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// The reference grammar of distribution/reference: [registry[:port]/]path[:tag][@digest].
const DOMAIN = String.raw`(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?`;
const PATH_COMPONENT = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`;
const IMAGE_REFERENCE = new RegExp(
  String.raw`^(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$`,
);

/** Container waiting reasons that never resolve by themselves: provisioning fails at once. */
const IMAGE_FAILURES = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull']);
const START_FAILURES = new Set(['CreateContainerConfigError', 'CreateContainerError', 'RunContainerError']);

/** A bad or missing environment variable for the Kubernetes provider; `variable` names it. */
export class KubernetesConfigError extends Error {
  override name = 'KubernetesConfigError';
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
  }
}

/** What the provider needs to reach the cluster, read from the environment. */
export interface KubernetesEnvConfig {
  kubeConfig: KubeConfig;
  namespace: string;
  image: string;
}

/**
 * Reads the provider's configuration: `KUBE_CONFIG_DATA` (a base64 kubeconfig) or, inside a
 * cluster (`KUBERNETES_SERVICE_HOST` set), the pod's service account; `K8S_NAMESPACE` (default:
 * the kubeconfig context's namespace, in a cluster the pod's own); `AGENT_CONTAINER_IMAGE`.
 * @throws KubernetesConfigError naming the variable at fault.
 */
export function kubernetesConfigFromEnv(env: Record<string, string | undefined>): KubernetesEnvConfig {
  const kubeConfig = loadKubeConfig(env);
  const namespace =
    env.K8S_NAMESPACE?.trim() || kubeConfig.getContextObject(kubeConfig.currentContext)?.namespace;
  if (!namespace) {
    throw new KubernetesConfigError(
      'K8S_NAMESPACE',
      'K8S_NAMESPACE is required when SANDBOX_PROVIDER=kubernetes and the kubeconfig context names no namespace',
    );
  }
  if (!DNS_LABEL.test(namespace)) {
    throw new KubernetesConfigError(
      'K8S_NAMESPACE',
      `K8S_NAMESPACE must be a DNS-1123 label (lowercase a-z, 0-9, "-", at most 63 characters), got "${namespace}"`,
    );
  }
  const image = env.AGENT_CONTAINER_IMAGE?.trim();
  if (!image) {
    throw new KubernetesConfigError(
      'AGENT_CONTAINER_IMAGE',
      'AGENT_CONTAINER_IMAGE is required when SANDBOX_PROVIDER=kubernetes',
    );
  }
  if (!isImageReference(image)) {
    throw new KubernetesConfigError(
      'AGENT_CONTAINER_IMAGE',
      `AGENT_CONTAINER_IMAGE is not an image reference ([registry/]name[:tag][@digest]): "${image}"`,
    );
  }
  return { kubeConfig, namespace, image };
}

function loadKubeConfig(env: Record<string, string | undefined>): KubeConfig {
  const kubeConfig = new KubeConfig();
  const data = env.KUBE_CONFIG_DATA?.trim();
  if (data) {
    const fail = (why: string) =>
      new KubernetesConfigError(
        'KUBE_CONFIG_DATA',
        `KUBE_CONFIG_DATA is not valid base64 kubeconfig: ${why}`,
      );
    const compact = data.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) throw fail('not base64');
    try {
      kubeConfig.loadFromString(Buffer.from(compact, 'base64').toString('utf8'));
    } catch (error) {
      throw fail((error as Error).message.split('\n')[0] ?? 'unreadable');
    }
    if (!kubeConfig.getCurrentCluster()?.server) throw fail('no current-context with a cluster server');
    return kubeConfig;
  }
  if (env.KUBERNETES_SERVICE_HOST) {
    // Reads KUBERNETES_SERVICE_HOST/PORT from process.env and the mounted service-account token.
    kubeConfig.loadFromCluster();
    return kubeConfig;
  }
  throw new KubernetesConfigError(
    'KUBE_CONFIG_DATA',
    'KUBE_CONFIG_DATA is required when SANDBOX_PROVIDER=kubernetes outside a cluster (KUBERNETES_SERVICE_HOST is unset)',
  );
}

/** True for a plausible container image reference (`busybox`, `ghcr.io/org/img:1.2@sha256:…`). */
export function isImageReference(image: string): boolean {
  return image.length <= 512 && IMAGE_REFERENCE.test(image);
}

/** Names and defaults shared by the object builders. */
export interface SandboxObjectOptions {
  /** The Pod and NetworkPolicy name (`sbx-<16 hex>`). */
  sandboxId: string;
  namespace: string;
  /** Used when the spec names no image. */
  image: string;
  /** Size limit of the /workspace emptyDir, in MiB. Default 1024. */
  workspaceMi?: number;
}

/** The labels every object of one sandbox carries. */
export function sandboxLabels(spec: Pick<SandboxSpec, 'taskId'>, sandboxId: string): Record<string, string> {
  return { [MANAGED_BY_LABEL]: 'devart', [SANDBOX_ID_LABEL]: sandboxId, [TASK_ID_LABEL]: spec.taskId };
}

/**
 * The sandbox Pod: non-root, no privilege escalation, no capabilities, read-only root
 * filesystem, no service-account token, no service links, requests = limits (Guaranteed QoS),
 * and killed by the kubelet after `ttlSeconds` (activeDeadlineSeconds).
 */
export function sandboxPod(spec: SandboxSpec, options: SandboxObjectOptions): V1Pod {
  const resources = { cpu: `${spec.cpu}m`, memory: `${spec.memory}Mi` };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: options.sandboxId,
      namespace: options.namespace,
      labels: sandboxLabels(spec, options.sandboxId),
    },
    spec: {
      restartPolicy: 'Never',
      activeDeadlineSeconds: spec.ttlSeconds,
      // The container's only process is `sleep`; nothing needs time to shut down cleanly.
      terminationGracePeriodSeconds: 1,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: SANDBOX_UID,
        runAsGroup: SANDBOX_UID,
        fsGroup: SANDBOX_UID,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      containers: [
        {
          name: SANDBOX_CONTAINER,
          image: spec.image ?? options.image,
          imagePullPolicy: 'IfNotPresent',
          // Keeps the pod alive for exec; the deadline above removes it even if sleep outlives it.
          command: ['sleep', String(spec.ttlSeconds)],
          workingDir: '/workspace',
          env: [
            // uid 65532 has no home directory, and the root filesystem is read-only.
            { name: 'HOME', value: '/workspace' },
            { name: 'TMPDIR', value: '/tmp' },
          ],
          resources: { requests: resources, limits: { ...resources } },
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
        },
      ],
      volumes: [
        { name: 'workspace', emptyDir: { sizeLimit: `${options.workspaceMi ?? 1024}Mi` } },
        { name: 'tmp', emptyDir: { sizeLimit: '256Mi' } },
      ],
    },
  };
}

/**
 * The sandbox's NetworkPolicy: selects its Pod by sandbox id, allows no ingress, and egress
 * only to the allowlisted CIDRs (TCP; all ports when a rule names none). Policies are IP-based:
 * DNS is not allowed unless the cluster DNS service is itself on the allowlist (and it only
 * gets TCP here), so agents should use addresses or pre-resolved hosts.
 */
export function sandboxNetworkPolicy(spec: SandboxSpec, options: SandboxObjectOptions): V1NetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: options.sandboxId,
      namespace: options.namespace,
      labels: sandboxLabels(spec, options.sandboxId),
    },
    spec: {
      podSelector: { matchLabels: { [SANDBOX_ID_LABEL]: options.sandboxId } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [],
      egress: spec.egress === 'none' ? [] : spec.egress.allow.map(egressRule),
    },
  };
}

function egressRule(rule: { cidr: string; ports?: number[] }): V1NetworkPolicyEgressRule {
  return {
    to: [{ ipBlock: { cidr: rule.cidr } }],
    ...(rule.ports && rule.ports.length > 0
      ? { ports: rule.ports.map((port) => ({ protocol: 'TCP', port })) }
      : {}),
  };
}

/**
 * Checks a spec before anything reaches the cluster, so a bad field is a SandboxSpecError
 * naming it rather than a 422 from the API server.
 */
export function checkKubernetesSpec(spec: SandboxSpec, defaultImage: string): void {
  if (!LABEL_VALUE.test(spec.taskId) || spec.taskId === '') {
    throw new SandboxSpecError('taskId must be a label value (at most 63 of A-Z a-z 0-9 - _ .)', 'taskId');
  }
  for (const field of ['cpu', 'memory', 'ttlSeconds'] as const) {
    if (!Number.isSafeInteger(spec[field]) || spec[field] <= 0) {
      throw new SandboxSpecError(`${field} must be a positive whole number`, field);
    }
  }
  if (!isImageReference(spec.image ?? defaultImage)) {
    throw new SandboxSpecError(`image is not an image reference: "${spec.image}"`, 'image');
  }
  if (spec.egress !== 'none') {
    for (const rule of spec.egress.allow) checkEgressRule(rule);
  }
}

function checkEgressRule(rule: { cidr: string; ports?: number[] }): void {
  const [address = '', bits, ...rest] = rule.cidr.split('/');
  const family = isIP(address);
  const max = family === 6 ? 128 : 32;
  if (family === 0 || rest.length > 0 || !/^\d{1,3}$/.test(bits ?? '') || Number(bits) > max) {
    throw new SandboxSpecError(`egress cidr "${rule.cidr}" is not an address/prefix-length block`, 'egress');
  }
  for (const port of rule.ports ?? []) {
    if (!Number.isInteger(port) || port < 1 || port > 65_535) {
      throw new SandboxSpecError(`egress port ${port} is not from 1 to 65535`, 'egress');
    }
  }
}

/** How exec wraps a command in the container. */
export interface ExecArgvOptions {
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Prefix `timeout -s KILL <s>` so the command dies in the container, not only our stream. Default true. */
  killOnTimeout?: boolean;
}

/**
 * The argv exec sends. pods/exec has no environment parameter, so variables go through
 * `env -- K=V … cmd`. Closing the exec stream does not kill the process in the container (the
 * kubelet leaves it running), so with a timeout the command runs under
 * `timeout -s KILL <ceil(timeoutMs/1000)+1>`: one second later than the client gives up, so the
 * client's own deadline (exit code 124, timedOut) always decides the result, and the process
 * group is still killed inside the pod shortly after.
 */
export function sandboxExecArgv(command: string[], options: ExecArgvOptions = {}): string[] {
  const env = Object.entries(options.env ?? {});
  const withEnv = env.length > 0 ? ['env', '--', ...env.map(([k, v]) => `${k}=${v}`), ...command] : command;
  if (options.timeoutMs === undefined || options.killOnTimeout === false) return withEnv;
  const seconds = Math.ceil(options.timeoutMs / 1000) + 1;
  return ['timeout', '-s', 'KILL', String(seconds), ...withEnv];
}

/** Options of {@link createKubernetesProvider}. */
export interface KubernetesProviderOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** Image for specs that name none. */
  image: string;
  /** Cap on each of stdout and stderr. Default OUTPUT_LIMIT_BYTES. */
  outputLimitBytes?: number;
  /** How long provision waits for the Pod to run before giving up. Default 120 s. */
  podReadyTimeoutMs?: number;
  /** Pause between polls of a pending Pod. Default 500 ms. */
  pollIntervalMs?: number;
  /** /workspace size limit in MiB. Default 1024. */
  workspaceMi?: number;
  /** See {@link ExecArgvOptions.killOnTimeout}. Default true. */
  killOnTimeout?: boolean;
}

/** Everything the provider's functions share. */
interface Context {
  core: CoreV1Api;
  networking: NetworkingV1Api;
  exec: Exec;
  options: KubernetesProviderOptions;
  namespace: string;
}

/**
 * The Kubernetes SandboxProvider. It calls, in its namespace only: pods create/get/list/delete,
 * pods/exec (a WebSocket GET), networkpolicies create/list/delete — exactly what
 * deploy/k8s/role.yaml grants.
 */
export function createKubernetesProvider(options: KubernetesProviderOptions): SandboxProvider {
  const ctx: Context = {
    core: options.kubeConfig.makeApiClient(CoreV1Api),
    networking: options.kubeConfig.makeApiClient(NetworkingV1Api),
    exec: new Exec(options.kubeConfig),
    options,
    namespace: options.namespace,
  };
  return {
    name: 'kubernetes',
    provision: (spec) => provision(ctx, spec),
    get: (id) => getSandbox(ctx, id),
    exec: (id, command, execOptions) => execInSandbox(ctx, id, command, execOptions),
    terminate: (id) => terminate(ctx, id),
    list: () => listSandboxes(ctx),
  };
}

/** NetworkPolicy first, then the Pod: the Pod never runs a moment with open egress. */
async function provision(ctx: Context, spec: SandboxSpec): Promise<SandboxInfo> {
  checkKubernetesSpec(spec, ctx.options.image);
  const names: SandboxObjectOptions = {
    sandboxId: `sbx-${randomBytes(8).toString('hex')}`,
    namespace: ctx.namespace,
    image: ctx.options.image,
    workspaceMi: ctx.options.workspaceMi,
  };
  const id = names.sandboxId;
  await callApi('create the sandbox NetworkPolicy', () =>
    ctx.networking.createNamespacedNetworkPolicy({
      namespace: ctx.namespace,
      body: sandboxNetworkPolicy(spec, names),
    }),
  );
  try {
    await callApi('create the sandbox Pod', () =>
      ctx.core.createNamespacedPod({ namespace: ctx.namespace, body: sandboxPod(spec, names) }),
    );
    return await waitUntilRunning(ctx, id);
  } catch (error) {
    // Best effort: the original error matters more than a failed clean-up.
    await terminate(ctx, id).catch(() => {});
    throw error;
  }
}

async function waitUntilRunning(ctx: Context, id: string): Promise<SandboxInfo> {
  const deadline = Date.now() + (ctx.options.podReadyTimeoutMs ?? 120_000);
  for (;;) {
    const pod = await readPod(ctx, id);
    if (!pod) throw new SandboxUnavailableError(`sandbox pod ${id} disappeared while starting`);
    const info = sandboxInfoFromPod(pod);
    if (info.status === 'running') return info;
    if (info.status !== 'pending') {
      throw new SandboxUnavailableError(
        `sandbox pod ${id} ended before it ran: ${info.reason ?? info.status}`,
      );
    }
    checkWaiting(pod);
    if (Date.now() >= deadline) {
      throw new SandboxUnavailableError(
        `sandbox pod ${id} was not running after ${ctx.options.podReadyTimeoutMs ?? 120_000} ms`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, ctx.options.pollIntervalMs ?? 500));
  }
}

/** A container stuck on its image or its start will stay stuck: fail now, not at the timeout. */
function checkWaiting(pod: V1Pod): void {
  const waiting = pod.status?.containerStatuses?.[0]?.state?.waiting;
  const reason = waiting?.reason ?? '';
  const detail = `${reason}${waiting?.message ? `: ${waiting.message}` : ''}`;
  if (IMAGE_FAILURES.has(reason))
    throw new SandboxSpecError(`the sandbox image cannot be pulled (${detail})`, 'image');
  if (START_FAILURES.has(reason))
    throw new SandboxUnavailableError(`the sandbox container cannot start (${detail})`);
}

async function getSandbox(ctx: Context, id: string): Promise<SandboxInfo | undefined> {
  const pod = await readPod(ctx, id);
  return pod ? sandboxInfoFromPod(pod) : undefined;
}

/** The Pod, or undefined when it does not exist or is not one of ours. */
async function readPod(ctx: Context, id: string): Promise<V1Pod | undefined> {
  // Anything that is not our id format is never ours; this also keeps odd strings out of URLs.
  if (!SANDBOX_ID.test(id)) return undefined;
  try {
    const pod = await ctx.core.readNamespacedPod({ name: id, namespace: ctx.namespace });
    return pod.metadata?.labels?.[MANAGED_BY_LABEL] === 'devart' ? pod : undefined;
  } catch (error) {
    if (error instanceof ApiException && error.code === 404) return undefined;
    throw apiFailure(error, `read sandbox pod ${id}`);
  }
}

const PHASES: Record<string, SandboxStatus> = {
  Pending: 'pending',
  Running: 'running',
  Succeeded: 'terminated',
  Failed: 'failed',
};

/** Pod phase → sandbox status; a Pod being deleted is already terminated for our purposes. */
export function sandboxInfoFromPod(pod: V1Pod): SandboxInfo {
  const id = pod.metadata?.name ?? '';
  if (pod.metadata?.deletionTimestamp) return { id, status: 'terminated', reason: 'Deleted' };
  const phase = pod.status?.phase ?? 'Pending';
  const status = PHASES[phase] ?? 'failed';
  const reason = pod.status?.reason ?? (status === 'failed' ? phase : undefined);
  return reason ? { id, status, reason } : { id, status };
}

/** Deletes the Pod (no grace: nothing in it deserves one), then its NetworkPolicy; 404s are fine. */
async function terminate(ctx: Context, id: string): Promise<void> {
  if (!SANDBOX_ID.test(id)) return;
  await ignoreNotFound(`delete sandbox pod ${id}`, () =>
    ctx.core.deleteNamespacedPod({ name: id, namespace: ctx.namespace, gracePeriodSeconds: 0 }),
  );
  await ignoreNotFound(`delete sandbox NetworkPolicy ${id}`, () =>
    ctx.networking.deleteNamespacedNetworkPolicy({ name: id, namespace: ctx.namespace }),
  );
}

/**
 * Pods and NetworkPolicies carrying our label. A policy without a pod is a provision that died
 * between its two creates; listing it lets start-up reconciliation terminate it too.
 */
async function listSandboxes(ctx: Context): Promise<string[]> {
  const labelSelector = `${MANAGED_BY_LABEL}=devart`;
  const [pods, policies] = await Promise.all([
    callApi('list sandbox pods', () =>
      ctx.core.listNamespacedPod({ namespace: ctx.namespace, labelSelector }),
    ),
    callApi('list sandbox NetworkPolicies', () =>
      ctx.networking.listNamespacedNetworkPolicy({ namespace: ctx.namespace, labelSelector }),
    ),
  ]);
  const names = [...pods.items, ...policies.items].map((item) => item.metadata?.name ?? '');
  return [...new Set(names)].filter((name) => SANDBOX_ID.test(name)).sort();
}

async function ignoreNotFound(action: string, call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
  } catch (error) {
    if (error instanceof ApiException && error.code === 404) return;
    throw apiFailure(error, action);
  }
}

async function callApi<T>(action: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw apiFailure(error, action);
  }
}

/** API errors → the provider's errors: a rejected object is the spec's fault, the rest is "unavailable". */
function apiFailure(error: unknown, action: string): Error {
  if (error instanceof ApiException) {
    const message = statusMessage(error.body) ?? error.message;
    if (error.code === 422)
      return new SandboxSpecError(`${action}: the API server rejected it: ${message}`, 'spec');
    return new SandboxUnavailableError(`${action}: HTTP ${error.code}: ${message}`, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new SandboxUnavailableError(`${action}: the Kubernetes API is unreachable: ${message}`, {
    cause: error,
  });
}

/** The `message` of a Status body, which the client hands over as text. */
function statusMessage(body: unknown): string | undefined {
  try {
    const status = (typeof body === 'string' ? JSON.parse(body) : body) as { message?: unknown } | undefined;
    return typeof status?.message === 'string' ? status.message : undefined;
  } catch {
    return typeof body === 'string' && body ? body : undefined;
  }
}

function checkExecRequest(command: string[], options: ExecOptions): void {
  if (command.length === 0) throw new SandboxSpecError('command must not be empty', 'command');
  const names = Object.keys(options.env ?? {});
  for (const name of names) {
    if (!ENV_NAME.test(name)) throw new SandboxSpecError(`env name "${name}" is not a variable name`, 'env');
  }
  // `env` would take a first word with "=" for one more assignment.
  if (names.length > 0 && command[0]!.includes('=')) {
    throw new SandboxSpecError('with env, the command may not start with a word containing "="', 'command');
  }
}

async function execInSandbox(
  ctx: Context,
  id: string,
  command: string[],
  options: ExecOptions = {},
): Promise<ExecResult> {
  if (!SANDBOX_ID.test(id)) throw new SandboxNotFoundError(`sandbox ${id} does not exist`);
  checkExecRequest(command, options);
  const argv = sandboxExecArgv(command, { ...options, killOnTimeout: ctx.options.killOnTimeout });
  return new ExecRun(ctx, id, argv, options).result;
}

/** A Writable that keeps the first `limit` bytes and counts the rest away. */
class CappedSink extends Writable {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;

  constructor(private readonly limit: number) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    const room = this.limit - this.size;
    if (chunk.length > room) this.truncated = true;
    if (room > 0) {
      const kept = chunk.subarray(0, room);
      this.chunks.push(kept);
      this.size += kept.length;
    }
    done();
  }

  /** Adds text after the stream has ended (the client ends it on the status frame). */
  note(text: string): void {
    const separator = this.size > 0 ? '\n' : '';
    this.chunks.push(Buffer.from(`${separator}${text}\n`));
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

/** The socket Exec returns (isomorphic-ws, i.e. `ws` on Node). */
type ExecSocket = Awaited<ReturnType<Exec['exec']>>;

/**
 * One exec over the pods/exec WebSocket: output into capped sinks, the exit code from the
 * status channel, the wall-clock limit enforced here by closing the stream.
 */
class ExecRun {
  readonly result: Promise<ExecResult>;
  private readonly stdout: CappedSink;
  private readonly stderr: CappedSink;
  private readonly stdin: Readable | null;
  private readonly started = performance.now();
  private socket?: ExecSocket;
  private timedOut = false;
  private timer?: NodeJS.Timeout;
  private settle!: (outcome: ExecResult | Error) => void;

  constructor(
    private readonly ctx: Context,
    private readonly id: string,
    argv: string[],
    options: ExecOptions,
  ) {
    const limit = ctx.options.outputLimitBytes ?? OUTPUT_LIMIT_BYTES;
    this.stdout = new CappedSink(limit);
    this.stderr = new CappedSink(limit);
    this.stdin = options.stdin === undefined ? null : stdinStream(options.stdin);
    this.result = new Promise((resolve, reject) => {
      let settled = false;
      this.settle = (outcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(this.timer);
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      };
    });
    if (options.timeoutMs !== undefined) {
      this.timer = setTimeout(() => this.onTimeout(), options.timeoutMs);
    }
    this.start(argv);
  }

  private start(argv: string[]): void {
    this.ctx.exec
      .exec(
        this.ctx.namespace,
        this.id,
        SANDBOX_CONTAINER,
        argv,
        this.stdout,
        this.stderr,
        this.stdin,
        false,
        (s) => this.onStatus(s),
      )
      .then(
        (socket) => this.onOpen(socket),
        (error: unknown) => this.settle(execConnectError(error, this.id)),
      );
  }

  private onOpen(socket: ExecSocket): void {
    this.socket = socket;
    socket.on('close', () =>
      this.settle(
        new SandboxUnavailableError(`exec in ${this.id}: the stream closed before the exit status`),
      ),
    );
    if (this.timedOut) {
      socket.close();
      return;
    }
    if (!this.stdin) return;
    // Only v5.channel.k8s.io can say "stdin is done" without closing the whole stream (and the
    // output with it); on an older API server a command reading stdin would wait forever.
    if (socket.protocol === STREAM_CLOSE_PROTOCOL) {
      this.stdin.push(null);
    } else {
      socket.close();
      this.settle(
        new SandboxUnavailableError(
          `exec with stdin needs the v5.channel.k8s.io protocol (Kubernetes 1.30+); the API server chose "${socket.protocol}"`,
        ),
      );
    }
  }

  private onTimeout(): void {
    this.timedOut = true;
    this.socket?.close();
    this.settle(this.outcome(124));
  }

  private onStatus(status: V1Status): void {
    const { exitCode, error } = exitFromStatus(status);
    if (error) this.stderr.note(error);
    this.settle(this.outcome(exitCode));
  }

  private outcome(exitCode: number): ExecResult {
    return {
      exitCode,
      stdout: this.stdout.text(),
      stderr: this.stderr.text(),
      truncated: this.stdout.truncated || this.stderr.truncated,
      timedOut: this.timedOut,
      durationMs: Math.round(performance.now() - this.started),
    };
  }
}

/** stdin as one pushed chunk; its end is pushed once we know the protocol can carry it. */
function stdinStream(data: string): Readable {
  const stream = new Readable({ read() {} });
  if (data.length > 0) stream.push(Buffer.from(data));
  return stream;
}

/**
 * The kubelet's status frame: Success → 0; NonZeroExitCode → the ExitCode cause; anything else
 * (the runtime could not start the command) → 127 for "not found", else 126, like a shell.
 */
export function exitFromStatus(status: V1Status): { exitCode: number; error?: string } {
  if (status.status === 'Success') return { exitCode: 0 };
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
  if (status.reason === 'NonZeroExitCode' && cause?.message && /^\d+$/.test(cause.message)) {
    return { exitCode: Number(cause.message) };
  }
  const message = status.message ?? 'exec failed';
  return { exitCode: /not found|no such file/i.test(message) ? 127 : 126, error: message };
}

/** A refused upgrade arrives as ws's "Unexpected server response: <code>". */
function execConnectError(error: unknown, id: string): Error {
  const message = (error as { message?: string } | undefined)?.message ?? String(error);
  const code = /Unexpected server response: (\d+)/.exec(message)?.[1];
  if (code === '404') return new SandboxNotFoundError(`sandbox ${id} does not exist`);
  // 400 is the API server's "cannot exec into a container in a completed pod" (or not started).
  if (code === '400') return new SandboxNotFoundError(`sandbox ${id} is not running`);
  return new SandboxUnavailableError(`exec in ${id}: ${message}`, { cause: error });
}
