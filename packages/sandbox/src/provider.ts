/**
 * The one interface every sandbox backend implements. The API's sandbox service talks to
 * this only; it never knows whether a sandbox is a bubblewrap workspace or a Kubernetes Pod.
 */

/** Egress policy: no network at all, or a list of allowed destinations. */
export type Egress = 'none' | { allow: EgressRule[] };

/** One allowed destination: a CIDR block (`10.0.0.0/8`, `203.0.113.7/32`) and optional ports. */
export interface EgressRule {
  cidr: string;
  ports?: number[];
}

export interface SandboxSpec {
  /** The task this sandbox works for; recorded as a label / in the workspace name. */
  taskId: string;
  /** Container image (Kubernetes only; the local provider uses the host's system). */
  image?: string;
  /** CPU in millicores (1000 = one core). */
  cpu: number;
  /** Memory in MiB. */
  memory: number;
  /** Hard lifetime; the sandbox is gone after this even if nobody terminates it. */
  ttlSeconds: number;
  egress: Egress;
}

export type SandboxStatus = 'pending' | 'running' | 'terminated' | 'failed';

export interface SandboxInfo {
  /** The provider's own id (a Pod name, a workspace directory name). */
  id: string;
  status: SandboxStatus;
  /** Why it is failed/terminated, when the provider knows. */
  reason?: string;
}

export interface ExecOptions {
  /** Wall-clock limit; the whole process tree is killed when it passes. */
  timeoutMs?: number;
  stdin?: string;
  env?: Record<string, string>;
}

export interface ExecResult {
  /** Process exit code; 124 after a timeout, 128+N after signal N. */
  exitCode: number;
  stdout: string;
  stderr: string;
  /** True when stdout or stderr was cut at the output cap. */
  truncated: boolean;
  /** True when the wall-clock timeout killed the command. */
  timedOut: boolean;
  durationMs: number;
}

export interface SandboxProvider {
  /** `local` or `kubernetes`; stored in the sandboxes table. */
  readonly name: string;
  provision(spec: SandboxSpec): Promise<SandboxInfo>;
  /** `undefined` when the sandbox does not exist (never created, or already removed). */
  get(id: string): Promise<SandboxInfo | undefined>;
  exec(id: string, command: string[], options?: ExecOptions): Promise<ExecResult>;
  /** Idempotent: terminating a sandbox that is already gone succeeds. */
  terminate(id: string): Promise<void>;
  /** Ids of every sandbox this provider has running, for orphan reconciliation at start-up. */
  list(): Promise<string[]>;
}

/** Default cap on each of stdout and stderr, in bytes. */
export const OUTPUT_LIMIT_BYTES = 1024 * 1024;

/** The provider cannot serve requests at all (bwrap missing, cluster unreachable). */
export class SandboxUnavailableError extends Error {
  override name = 'SandboxUnavailableError';
}

/** The sandbox id is unknown or already terminated. */
export class SandboxNotFoundError extends Error {
  override name = 'SandboxNotFoundError';
}

/** The spec asks for something this provider cannot do (e.g. an egress allowlist locally). */
export class SandboxSpecError extends Error {
  override name = 'SandboxSpecError';
  constructor(
    message: string,
    /** The spec field at fault, for the API's problem+json. */
    readonly field: string,
  ) {
    super(message);
  }
}
