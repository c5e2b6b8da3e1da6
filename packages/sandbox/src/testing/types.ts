/** The fake Kubernetes API's public types: what tests configure, read back and plug in. */
import type { KubeConfig } from '@kubernetes/client-node';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import type { IPod } from 'kubernetes-models/v1';
import type { Permission, PolicyRule } from './rbac';

/** One request the fake received, as the API server saw it. */
export interface RecordedRequest {
  method: string;
  path: string;
  /** Repeated parameters (exec's `command`) become arrays. */
  query: Record<string, string | string[]>;
  /** Parsed JSON body, when there was one. */
  body?: unknown;
  /** True for a WebSocket upgrade (exec). */
  upgrade: boolean;
  /** The HTTP status the fake answered (101 for an accepted upgrade). */
  status: number;
}

/** Metadata as the API server stores it: what it always fills in is never missing. */
export type StoredMeta = NonNullable<IPod['metadata']> & {
  name: string;
  namespace: string;
  uid: string;
  resourceVersion: string;
  creationTimestamp: string;
};

/** A Pod as the fake stores it: the posted object (schema-checked), stamped, with a status. */
export type StoredPod = IPod & {
  metadata: StoredMeta;
  spec: NonNullable<IPod['spec']>;
  status: NonNullable<IPod['status']>;
};

/** A NetworkPolicy as the fake stores it. */
export type StoredNetworkPolicy = INetworkPolicy & { metadata: StoredMeta };

/** A Pod phase, as the kubelet reports it. */
export type PodPhase = NonNullable<NonNullable<IPod['status']>['phase']>;

/** What an exec handler produces; a thrown error becomes the kubelet's InternalError status. */
export interface ExecOutcome {
  stdout?: string | Buffer;
  stderr?: string | Buffer;
  exitCode: number;
}

/**
 * Runs one exec in place of the container runtime. `stdin` is complete (the fake waits for the
 * client's end of stdin) when the client asked for stdin; `signal` aborts when the client hangs up.
 */
export type ExecHandler = (
  pod: StoredPod,
  argv: string[],
  stdin: Buffer,
  signal: AbortSignal,
) => ExecOutcome | Promise<ExecOutcome>;

export interface FakeKubernetesOptions {
  /** The one namespace the fake's service account may use; others answer 403. Default `devart`. */
  namespace?: string;
  /** Bearer token the fake requires. Default `fake-token`. */
  token?: string;
  /** A pod reports Pending to this many single-pod GETs, then Running. Default 1 (0 with runningAfterMs). */
  runningAfterGets?: number;
  /** A pod turns Running this long after creation (fake clock), when set. */
  runningAfterMs?: number;
  /** Runs exec commands; by default argv really runs as a child process on the host. */
  exec?: ExecHandler;
  /** Exec subprotocols the server accepts, best first. Default v5 then v4, like Kubernetes 1.30+. */
  protocols?: string[];
  /** When set, every request must be allowed by these rules (403 otherwise), like RBAC with a Role. */
  rules?: PolicyRule[];
}

export interface FakeKubernetes {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly namespace: string;
  readonly token: string;
  /** Every request, in arrival order. */
  readonly requests: RecordedRequest[];
  readonly pods: Map<string, StoredPod>;
  readonly networkPolicies: Map<string, StoredNetworkPolicy>;
  /** A kubeconfig (token auth, plain http) whose current context points at the fake. */
  kubeConfig(): KubeConfig;
  kubeConfigYaml(): string;
  /** The kubeconfig as KUBE_CONFIG_DATA expects it. */
  kubeConfigBase64(): string;
  /** Test hook: force a pod's phase (and reason), as the kubelet would report it. */
  setPodPhase(name: string, phase: PodPhase, reason?: string, message?: string): void;
  /** Test hook: report the container as waiting (ErrImagePull, CreateContainerConfigError, …). */
  setContainerWaiting(name: string, reason: string, message?: string): void;
  /** Moves the fake's clock forward (activeDeadlineSeconds, runningAfterMs). */
  advanceClock(ms: number): void;
  /** The RBAC attributes of every request so far, deduplicated. */
  permissionsUsed(): Permission[];
  close(): Promise<void>;
}
