import type { BrokerLogger } from '@devart/queue';
import { type ApiClient, type ApiResult, expectOk } from './client';
import { ApiError, NonRetryableError, SandboxUnavailableError } from './errors';

/** Network a sandbox may reach: `'none'` (the default) or an allowlist (the Kubernetes provider only). */
export type SandboxEgress = 'none' | { allow: { cidr: string; ports?: number[] }[] };

/** What `task.sandbox()` asks the API for; every field has a server default. */
export interface SandboxOptions {
  /** `cpu` in millicores (default 1000 = one core), `memory` in MiB (default 512). */
  resources?: { cpu?: number; memory?: number };
  /** Hard lifetime in seconds (default 900); the platform terminates the sandbox when it passes. */
  ttlSeconds?: number;
  /** Default `'none'`: no network at all. The local (bubblewrap) provider refuses an allowlist. */
  egress?: SandboxEgress;
}

/** Options of one command run in a sandbox. */
export interface SandboxExecOptions {
  /** Wall clock in ms (server default 60 000); the whole process tree is killed when it passes. */
  timeoutMs?: number;
  /** Written to the command's standard input. */
  stdin?: string;
  /** Extra environment variables of the command. */
  env?: Record<string, string>;
}

/** How a command in a sandbox ended. */
export interface SandboxExecResult {
  /** 124 after the timeout, 128+N after signal N. */
  exitCode: number;
  stdout: string;
  stderr: string;
  /** stdout or stderr was cut at the server's output cap. */
  truncated: boolean;
  timedOut: boolean;
  durationMs: number;
}

/** A running sandbox of the current task; the SDK terminates it when the callback ends. */
export interface SandboxHandle {
  /** The platform's sandbox id (`GET /api/sandboxes/{id}`). */
  readonly id: string;
  /**
   * Runs `command` (argv; no shell unless you run one) in the sandbox, in /workspace, and waits
   * for it. A nonzero exit is a result, not an error.
   * @example
   * const { exitCode, stdout } = await box.exec(['sh', '-c', 'make test'], { timeoutMs: 120_000 });
   */
  exec(command: string[], options?: SandboxExecOptions): Promise<SandboxExecResult>;
  /** Kills everything running in it and removes its workspace. Idempotent. */
  terminate(): Promise<void>;
}

interface SandboxView {
  sandbox_id: string;
}

interface ExecView {
  error?: { type: string; detail: string };
  exit_code: number;
  stdout: string;
  stderr: string;
  truncated: boolean;
  timed_out: boolean;
  duration_ms: number;
}

function problemDetail(body: unknown): string | undefined {
  const problem = body as { detail?: string; title?: string } | undefined;
  return problem?.detail ?? problem?.title;
}

/**
 * The sandboxes of one task callback: opened on demand, all terminated by `closeAll` when the
 * callback ends, whatever happened in it.
 */
export function createTaskSandboxes({
  api,
  taskId,
  agentId,
  signal,
  logger,
}: {
  api: ApiClient;
  taskId: string;
  /** The calling agent's id (the SDK learns it once from GET /api/agents/me). */
  agentId: () => Promise<string>;
  /** The task's signal: pending calls are abandoned when the task is lost. */
  signal: AbortSignal;
  logger: BrokerLogger;
}) {
  const handles: SandboxHandle[] = [];
  const pending = new Set<Promise<unknown>>();
  let closed = false;

  function handleFor(id: string): SandboxHandle {
    let terminated: Promise<void> | undefined;
    let ended = false;
    return {
      id,
      async exec(command, options = {}) {
        if (ended) throw new Error(`sandbox ${id} was terminated`);
        const body = {
          command,
          timeout_ms: options.timeoutMs,
          stdin: options.stdin,
          env: options.env,
        };
        let res: ApiResult<ExecView>;
        try {
          // Running a command twice is not harmless, so a failed call is not repeated.
          res = await api.call<ExecView>('POST', `/api/sandboxes/${id}/exec`, body, { retries: 1, signal });
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          const detail = problemDetail(error.problem) ?? '';
          throw new ApiError(
            error.status,
            error.problem,
            `exec in sandbox ${id} answered ${error.status}: ${detail}`,
          );
        }
        // 400: a bad spec; 403 naming a body field: outside the operator's sandbox policy. Neither changes on a retry.
        if (res.status === 400 || (res.status === 403 && /^body\./.test(problemDetail(res.body) ?? ''))) {
          throw new NonRetryableError(
            `exec in sandbox ${id} refused: ${problemDetail(res.body) ?? 'bad request'}`,
          );
        }
        const out = expectOk(res, `exec in sandbox ${id}`);
        // A long command is answered 200 before it ends; a sandbox failure after that comes in the body.
        if (out.error) throw new Error(`exec in sandbox ${id} failed: ${out.error.detail}`);
        return {
          exitCode: out.exit_code,
          stdout: out.stdout,
          stderr: out.stderr,
          truncated: out.truncated,
          timedOut: out.timed_out,
          durationMs: out.duration_ms,
        };
      },
      terminate() {
        terminated ??= (async () => {
          const res = await api.call('DELETE', `/api/sandboxes/${id}`);
          if (res.status !== 404) expectOk(res, `terminate sandbox ${id}`);
          ended = true;
        })().catch((error) => {
          terminated = undefined;
          throw error;
        });
        return terminated;
      },
    };
  }

  async function request(options: SandboxOptions): Promise<SandboxHandle> {
    const id = await agentId();
    const body = {
      task_id: taskId,
      resources: options.resources,
      ttl_seconds: options.ttlSeconds,
      egress: options.egress,
    };
    let res: ApiResult<SandboxView>;
    try {
      // Not idempotent (each call provisions one): one attempt. A 503 without Retry-After says
      // the server has no provider (the task cannot succeed there); with it, the provider is
      // briefly unreachable and the task's own retry may do better.
      res = await api.call<SandboxView>('POST', `/api/agents/${id}/request-sandbox`, body, {
        retries: 1,
        signal,
      });
    } catch (error) {
      if (error instanceof ApiError && error.status === 503) {
        const detail = problemDetail(error.problem) ?? 'the server answered 503';
        if (error.retryAfter) throw new Error(`the sandbox provider is unavailable for now: ${detail}`);
        throw new SandboxUnavailableError(detail);
      }
      throw error;
    }
    // 400: a bad spec; 403 naming a body field: outside the operator's sandbox policy.
    if (res.status === 400 || (res.status === 403 && /^body\./.test(problemDetail(res.body) ?? ''))) {
      throw new NonRetryableError(`sandbox request refused: ${problemDetail(res.body) ?? 'bad request'}`);
    }
    return handleFor(expectOk(res, 'request-sandbox').sandbox_id);
  }

  return {
    /** Provisions a sandbox for the task; closeAll terminates it. */
    async open(options: SandboxOptions = {}): Promise<SandboxHandle> {
      if (closed) throw new Error(`task ${taskId} has ended: it cannot open sandboxes any more`);
      const opening = request(options).then((handle) => {
        handles.push(handle);
        return handle;
      });
      pending.add(opening);
      try {
        return await opening;
      } finally {
        pending.delete(opening);
      }
    },
    /** Terminates every sandbox opened (waiting for requests in flight); failures are logged, not thrown. */
    async closeAll(): Promise<void> {
      closed = true;
      await Promise.allSettled(pending);
      await Promise.all(
        handles.map((handle) =>
          handle
            .terminate()
            .catch((error) =>
              logger.error(
                { task_id: taskId, sandbox_id: handle.id, err: error },
                'terminating the task’s sandbox failed; the platform ends it when the task leaves IN_PROGRESS',
              ),
            ),
        ),
      );
    },
  };
}
