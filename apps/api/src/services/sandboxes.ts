import type { RequestSandboxBody, SandboxExecBody } from '@devart/contracts';
import {
  appendEvents,
  claimSandboxTermination,
  type Db,
  getSandbox,
  getSandboxWithTask,
  getTask,
  insertSandboxForTask,
  liveSandboxIds,
  markSandboxesLost,
  markSandboxFailed,
  markSandboxRunning,
  type NewEvent,
  type Queryable,
  type SandboxRow,
  sandboxesToReap,
} from '@devart/db';
import {
  SandboxNotFoundError,
  type SandboxProvider,
  type SandboxSpec,
  SandboxSpecError,
  SandboxUnavailableError,
} from '@devart/sandbox';
import type { Logger } from 'pino';
import {
  ConflictError,
  ForbiddenError,
  NotFoundError,
  TooManyRequestsError,
  UnavailableError,
  ValidationError,
} from './domain-errors';
import { failureStreak } from './failure-streak';
import {
  buildSandboxPolicy,
  checkSandboxRequest,
  DEFAULT_LIMITS,
  type SandboxPolicy,
} from './sandbox-policy';

/** The sandbox backend of this process, or why there is none (bwrap missing…). */
export type SandboxBackend = { provider: SandboxProvider } | { provider?: undefined; unavailable: string };

export interface SandboxServiceOptions {
  db: Db;
  backend: SandboxBackend;
  logger: Logger;
  /**
   * What agents may ask of a sandbox, per capability of the task (default: no egress, no image,
   * the SANDBOX_MAX_* defaults); a request outside it is refused 403 before anything is recorded.
   */
  policy?: SandboxPolicy;
  /**
   * Commands one sandbox may run at once in this process (default 4); one more is refused 429.
   * A local sandbox is served by one process only, so for it this is the sandbox's whole count.
   */
  maxConcurrentExecs?: number;
  /**
   * What the `provider` column records, and which rows this process may act on at the provider.
   * Default the provider's name; a provider local to one host passes `local@<hostname>`, so
   * replicas on other hosts neither reap nor call "lost" the sandboxes they cannot see.
   */
  providerKey?: string;
}

/**
 * Who calls: an agent, which acts on its own sandboxes only, or a user the RBAC matrix let through.
 * The auth middleware's principal fits as it is.
 */
export type SandboxCaller = { kind: 'agent'; agent: { id: string } } | { kind: 'user' };

/**
 * The provider failed now (cluster unreachable, pod not ready in time): a retry after 30 s is
 * worth it, unlike when this server has no provider at all.
 */
function transientlyUnavailable(reason: string): UnavailableError {
  return new UnavailableError(reason, { retryAfterSeconds: 30 });
}

/** A PROVISIONING row younger than this may still be provisioning in another API process. */
const PROVISION_GRACE_SECONDS = 300;

/**
 * A sandbox event: its task and agent, status, provider and size; when it ended, why. The
 * provider's own id stays out (it names a Pod or a workspace, nothing a watcher acts on).
 */
export function sandboxEvent(type: 'sandbox.provisioned' | 'sandbox.terminated', row: SandboxRow): NewEvent {
  return {
    type,
    sandbox_id: row.id,
    task_id: row.task_id,
    agent_id: row.agent_id,
    data: {
      status: row.status,
      provider: row.provider,
      cpu: row.spec.cpu,
      memory: row.spec.memory,
      ...(row.spec.image ? { image: row.spec.image } : {}),
      expires_at: row.expires_at.toISOString(),
      ...(row.termination_reason === null ? {} : { reason: row.termination_reason.slice(0, 500) }),
    },
  };
}

/** Runs a sandbox transition and appends its event in one transaction. */
async function withEvent<T extends SandboxRow | undefined>(
  db: Db,
  type: 'sandbox.provisioned' | 'sandbox.terminated',
  change: (tx: Queryable) => Promise<T>,
): Promise<T> {
  return db.transaction(async (tx) => {
    const row = await change(tx);
    if (row) appendEvents(tx, [sandboxEvent(type, row)]);
    return row;
  });
}

export function sandboxView(row: SandboxRow) {
  const { id, ...rest } = row;
  return { sandbox_id: id, ...rest };
}

/**
 * Sandboxes as use cases: request (for a held task), read, exec, terminate, plus the sweep that
 * ends those whose task finished or whose TTL passed, and start-up reconciliation with the
 * provider. The table is the truth; the provider follows it.
 */
export function createSandboxService({
  db,
  backend,
  logger,
  policy = buildSandboxPolicy({ images: [], egress: [], ...DEFAULT_LIMITS }, []),
  maxConcurrentExecs = 4,
  providerKey = backend.provider?.name ?? 'none',
}: SandboxServiceOptions) {
  /** Commands running now, per sandbox id; an id leaves the map when its last command ends. */
  const execsRunning = new Map<string, number>();

  function providerOrThrow(): SandboxProvider {
    if (backend.provider) return backend.provider;
    throw new UnavailableError(backend.unavailable);
  }

  function ownerCheck(caller: SandboxCaller, sandbox: SandboxRow) {
    if (caller.kind === 'agent' && caller.agent.id !== sandbox.agent_id) {
      throw new ForbiddenError('This sandbox belongs to another agent.');
    }
  }

  async function removeAtProvider(row: SandboxRow) {
    if (!row.external_id || !backend.provider || row.provider !== providerKey) return;
    try {
      await backend.provider.terminate(row.external_id);
    } catch (error) {
      // The row already says TERMINATED; start-up reconciliation removes what is left.
      logger.error({ err: error, sandbox_id: row.id }, 'sandbox termination at the provider failed');
    }
  }

  async function terminateRow(id: string, reason: string): Promise<SandboxRow | undefined> {
    const claimed = await withEvent(db, 'sandbox.terminated', (tx) =>
      claimSandboxTermination(tx, id, reason),
    );
    if (claimed) {
      await removeAtProvider(claimed);
      logger.info({ sandbox_id: id, task_id: claimed.task_id, reason }, 'sandbox terminated');
    }
    return claimed;
  }

  async function request(caller: SandboxCaller, agentId: string, body: RequestSandboxBody) {
    if (caller.kind !== 'agent' || caller.agent.id !== agentId) {
      throw new ForbiddenError('An agent requests sandboxes for itself only.');
    }
    const provider = providerOrThrow();
    // The capability never changes once a task exists, so reading it before the row lock is safe;
    // an unknown task falls through to the insert, which answers 404.
    const task = await getTask(db, body.task_id);
    let maxLivePerTask = policy.default.maxPerTask;
    if (task) {
      const decision = checkSandboxRequest(policy, task.capability, body);
      if (decision.outcome === 'invalid')
        throw new ValidationError(
          [{ location: 'body', field: decision.field, message: decision.detail }],
          `body.${decision.field}: ${decision.detail}`,
        );
      if (decision.outcome === 'refused')
        throw new ForbiddenError(`body.${decision.field}: ${decision.detail}`);
      maxLivePerTask = decision.maxPerTask;
    }
    const spec: SandboxSpec = {
      taskId: body.task_id,
      image: body.image,
      cpu: body.resources?.cpu ?? 1000,
      memory: body.resources?.memory ?? 512,
      ttlSeconds: body.ttl_seconds,
      egress: body.egress,
    };
    const recorded = await db.transaction((tx) =>
      insertSandboxForTask(tx, {
        agentId,
        taskId: body.task_id,
        provider: providerKey,
        // Stored as the API spells it (snake_case); the provider's spec is rebuilt from the request.
        spec: {
          cpu: spec.cpu,
          memory: spec.memory,
          ttl_seconds: spec.ttlSeconds,
          egress: spec.egress,
          ...(spec.image ? { image: spec.image } : {}),
        },
        ttlSeconds: body.ttl_seconds,
        maxLivePerTask,
      }),
    );
    switch (recorded.outcome) {
      case 'no_task':
        throw new NotFoundError(`No task ${body.task_id}.`);
      case 'not_held':
        // A conflict, as for every call of an agent on a task it does not hold (it used to be a permission refusal).
        throw new ConflictError(`Task ${body.task_id} is held by another agent.`);
      case 'not_in_progress':
        throw new ConflictError(`Task ${body.task_id} is not IN_PROGRESS: start it first.`);
      case 'too_many':
        throw new ConflictError(
          `Task ${body.task_id} already has ${maxLivePerTask} live sandboxes, the most the sandbox policy allows ` +
            `(max_sandboxes_per_task): terminate one first.`,
        );
    }
    const row = recorded.sandbox;
    let info: Awaited<ReturnType<SandboxProvider['provision']>>;
    try {
      info = await provider.provision(spec);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      await withEvent(db, 'sandbox.terminated', (tx) => markSandboxFailed(tx, row.id, reason));
      if (error instanceof SandboxSpecError) {
        const field =
          error.field === 'spec' ? 'body' : error.field === 'ttlSeconds' ? 'ttl_seconds' : error.field;
        // The detail names `body.<field>` even for the whole body (`body.body`), as it always has.
        throw new ValidationError(
          [{ location: 'body', field, message: error.message }],
          `body.${field}: ${error.message}`,
        );
      }
      if (error instanceof SandboxUnavailableError) throw transientlyUnavailable(reason);
      throw error;
    }
    const running = await withEvent(db, 'sandbox.provisioned', (tx) =>
      markSandboxRunning(tx, row.id, info.id),
    );
    if (!running) {
      // The task finished (and the sweep ended the row) while the provider worked.
      await provider.terminate(info.id).catch(() => {});
      throw new ConflictError(`Task ${body.task_id} left IN_PROGRESS while its sandbox was provisioned.`);
    }
    return sandboxView(running);
  }

  async function read(caller: SandboxCaller, id: string) {
    const row = await getSandbox(db, id);
    if (!row) throw new NotFoundError(`No sandbox ${id}.`);
    ownerCheck(caller, row);
    return sandboxView(row);
  }

  async function exec(caller: SandboxCaller, id: string, body: SandboxExecBody) {
    const row = await getSandboxWithTask(db, id);
    if (!row) throw new NotFoundError(`No sandbox ${id}.`);
    ownerCheck(caller, row);
    if (row.status !== 'RUNNING' || !row.external_id) {
      throw new ConflictError(`Sandbox ${id} is ${row.status}: nothing runs in it any more.`);
    }
    if (row.provider !== providerKey) {
      throw new ConflictError(
        `Sandbox ${id} lives at provider ${row.provider}; this API process serves ${providerKey}: send the call to that host.`,
      );
    }
    const remainingMs = row.expires_at.getTime() - Date.now();
    if (!row.task_held || remainingMs <= 0) {
      await terminateRow(id, row.task_held ? 'ttl' : 'task_finished');
      throw new ConflictError(
        row.task_held
          ? `Sandbox ${id} outlived its TTL.`
          : `Task ${row.task_id} is no longer in progress for this agent.`,
      );
    }
    const provider = providerOrThrow();
    const inFlight = execsRunning.get(id) ?? 0;
    if (inFlight >= maxConcurrentExecs) {
      throw new TooManyRequestsError(
        `Sandbox ${id} already runs ${inFlight} commands, the limit (SANDBOX_MAX_CONCURRENT_EXECS) is ${maxConcurrentExecs}: wait for one to end.`,
        { retryAfterSeconds: 1 },
      );
    }
    execsRunning.set(id, inFlight + 1);
    try {
      const result = await provider.exec(row.external_id, body.command, {
        timeoutMs: Math.min(body.timeout_ms, remainingMs),
        stdin: body.stdin,
        env: body.env,
      });
      return {
        exit_code: result.exitCode,
        stdout: result.stdout,
        stderr: result.stderr,
        truncated: result.truncated,
        timed_out: result.timedOut,
        duration_ms: result.durationMs,
      };
    } catch (error) {
      if (error instanceof SandboxNotFoundError) {
        await terminateRow(id, 'lost');
        throw new ConflictError(`Sandbox ${id} is gone at the provider.`);
      }
      if (error instanceof SandboxSpecError) {
        throw new ValidationError(
          [{ location: 'body', field: error.field === 'env' ? 'env' : 'command', message: error.message }],
          `body.command: ${error.message}`,
        );
      }
      if (error instanceof SandboxUnavailableError) throw transientlyUnavailable(error.message);
      throw error;
    } finally {
      const left = (execsRunning.get(id) ?? 1) - 1;
      if (left > 0) execsRunning.set(id, left);
      else execsRunning.delete(id);
    }
  }

  async function terminate(caller: SandboxCaller, id: string) {
    const row = await getSandbox(db, id);
    if (!row) throw new NotFoundError(`No sandbox ${id}.`);
    ownerCheck(caller, row);
    if ((row.status === 'PROVISIONING' || row.status === 'RUNNING') && row.provider !== providerKey) {
      throw new ConflictError(
        `Sandbox ${id} lives at provider ${row.provider}; this API process serves ${providerKey}: send the call to that host.`,
      );
    }
    const ended = await terminateRow(id, 'terminated');
    return sandboxView(ended ?? (await getSandbox(db, id))!);
  }

  /** Ends the sandboxes whose task finished or whose TTL passed; returns how many. */
  async function sweep(): Promise<number> {
    const due = await sandboxesToReap(db, providerKey);
    let ended = 0;
    for (const { id, reason } of due) if (await terminateRow(id, reason)) ended++;
    return ended;
  }

  /**
   * At start-up: removes provider sandboxes the table does not know as live (left by a crash),
   * and records as lost the live rows whose provider sandbox is gone.
   */
  async function reconcile(): Promise<{ removed: string[]; lost: number }> {
    const provider = backend.provider;
    if (!provider) return { removed: [], lost: 0 };
    const present = await provider.list();
    const live = await liveSandboxIds(db, providerKey, PROVISION_GRACE_SECONDS);
    const removed: string[] = [];
    if (live.provisioning === 0) {
      for (const externalId of present) {
        if (live.externalIds.has(externalId)) continue;
        await provider.terminate(externalId);
        removed.push(externalId);
      }
    }
    const lost = await db.transaction(async (tx) => {
      const rows = await markSandboxesLost(tx, providerKey, {
        externalIds: present,
        graceSeconds: PROVISION_GRACE_SECONDS,
      });
      appendEvents(
        tx,
        rows.map((row) => sandboxEvent('sandbox.terminated', row)),
      );
      return rows.length;
    });
    if (removed.length > 0 || lost > 0)
      logger.warn({ removed, lost }, 'sandboxes reconciled with the provider');
    return { removed, lost };
  }

  return { providerKey, request, read, exec, terminate, sweep, reconcile };
}

export type SandboxService = ReturnType<typeof createSandboxService>;

export interface SandboxSweeper {
  sweepNow(): Promise<number>;
  stop(): void;
}

/** Runs the sandbox sweep on a timer in every API process. */
export function startSandboxSweeper({
  service,
  logger,
  intervalMs,
}: {
  service: SandboxService;
  logger: Logger;
  intervalMs: number;
}): SandboxSweeper {
  let running = false;
  // A database outage fails every tick until it ends: one line when it starts, one when it ends.
  const streak = failureStreak(logger, 'sandbox sweeper');
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    service
      .sweep()
      .then(streak.succeeded, streak.failed)
      .finally(() => {
        running = false;
      });
  }, intervalMs);
  timer.unref();
  return { sweepNow: () => service.sweep(), stop: () => clearInterval(timer) };
}
