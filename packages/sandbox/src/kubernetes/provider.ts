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
import {
  ApiException,
  CoreV1Api,
  Exec,
  type KubeConfig,
  NetworkingV1Api,
  type V1Pod,
} from '@kubernetes/client-node';
import {
  OUTPUT_LIMIT_BYTES,
  type SandboxInfo,
  SandboxNotFoundError,
  type SandboxProvider,
  type SandboxSpec,
  SandboxSpecError,
  type SandboxStatus,
  SandboxUnavailableError,
} from '../provider';
import { type ExecTarget, execInPod } from './exec';
import {
  checkKubernetesSpec,
  MANAGED_BY_LABEL,
  type SandboxObjectOptions,
  sandboxNetworkPolicy,
  sandboxPod,
} from './manifests';

const SANDBOX_ID = /^sbx-[0-9a-f]{16}$/;

/** Container waiting reasons that never resolve by themselves: provisioning fails at once. */
const IMAGE_FAILURES = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull']);
const START_FAILURES = new Set(['CreateContainerConfigError', 'CreateContainerError', 'RunContainerError']);

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
  /** See `ExecArgvOptions.killOnTimeout` (./exec). Default true. */
  killOnTimeout?: boolean;
}

/** Everything the provider's functions share. */
interface Context {
  core: CoreV1Api;
  networking: NetworkingV1Api;
  exec: ExecTarget;
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
    exec: {
      exec: new Exec(options.kubeConfig),
      namespace: options.namespace,
      outputLimitBytes: options.outputLimitBytes ?? OUTPUT_LIMIT_BYTES,
      killOnTimeout: options.killOnTimeout,
    },
    options,
    namespace: options.namespace,
  };
  return {
    name: 'kubernetes',
    provision: (spec) => provision(ctx, spec),
    get: (id) => getSandbox(ctx, id),
    exec: async (id, command, execOptions) => {
      if (!SANDBOX_ID.test(id)) throw new SandboxNotFoundError(`sandbox ${id} does not exist`);
      return execInPod(ctx.exec, id, command, execOptions);
    },
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
