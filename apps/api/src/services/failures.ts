import { type BackoffPolicy, backoffPolicyOf, capErrorMessage, decideRetry } from '@devart/core';
import {
  appendEvents,
  applyFailures,
  type Db,
  type FailureToApply,
  getTask,
  type LockedTask,
  listTaskAttempts,
  lockExpiredLeases,
  lockTask,
  type NewEvent,
  quarantineDeadLettered,
  requeueTask,
  type TaskAttemptRow,
  type TaskRow,
} from '@devart/db';
import { ConflictError, NotFoundError } from './domain-errors';
import { taskEvent } from './lifecycle-events';
import { failRunsOf } from './workflow-runs';

/**
 * What a failure announces. A retry: `task.failed` (a reported failure) or `task.lease_expired`
 * (a lapsed lease), then `task.retry_scheduled` with next_attempt_at. The end: `task.quarantined`
 * (after `task.lease_expired` for a lapsed lease; a reported failure that quarantines is only
 * `task.quarantined`, as before the event log). The agent is the one that held the attempt.
 */
function failureEvents(task: TaskRow, failure: FailureToApply): NewEvent[] {
  const held = {
    ...taskEvent('task.failed', task, { attempt: failure.attempt }),
    agent_id: failure.agent_id,
  };
  const events: NewEvent[] = [];
  if (failure.outcome === 'LEASE_EXPIRED') events.push({ ...held, type: 'task.lease_expired' });
  if (task.status === 'QUARANTINED') events.push({ ...held, type: 'task.quarantined' });
  else {
    if (failure.outcome === 'FAILED') events.push(held);
    events.push({ ...taskEvent('task.retry_scheduled', task), agent_id: null });
  }
  return events;
}

const eventsOfFailures = (failed: TaskRow[], applied: FailureToApply[]) => {
  const byTask = new Map(applied.map((f) => [f.task_id, f]));
  return failed.flatMap((task) => failureEvents(task, byTask.get(task.id)!));
};

export interface FailureSettings {
  /** Backoff for tasks without their own retry_backoff. */
  backoff: BackoffPolicy;
  random?: () => number;
}

function decide(
  task: LockedTask,
  failure: {
    error: string;
    retryable: boolean;
    outcome: FailureToApply['outcome'];
    details?: Record<string, unknown>;
  },
  settings: FailureSettings,
): FailureToApply {
  const decision = decideRetry(
    task,
    failure,
    backoffPolicyOf(task.retry_backoff, settings.backoff),
    settings.random,
  );
  return {
    task_id: task.id,
    attempt: task.attempt,
    agent_id: task.agent_id,
    retry_count: decision.retryCount,
    status: decision.outcome === 'retry' ? 'TODO' : 'QUARANTINED',
    // A lapsed lease has already waited out the lease and says the agent went away, not that the
    // task failed: backing off on top only delayed the retry (measured up to 1 s at base 1000 ms,
    // doubling with every lapse), so it is republished at once. retry_count still grows, so a
    // task that keeps killing its agents is quarantined all the same.
    delay_ms: decision.outcome === 'retry' && failure.outcome !== 'LEASE_EXPIRED' ? decision.delayMs : 0,
    error: capErrorMessage(failure.error),
    outcome: failure.outcome,
    details: failure.details ?? null,
  };
}

export interface FailureReport {
  taskId: string;
  agentId: string;
  attempt?: number;
  error: string;
  retryable: boolean;
  details?: Record<string, unknown>;
}

/**
 * An agent reports that its attempt failed (the seed's report-failure), in one transaction:
 * ownership checked on the locked row, retry_count + 1, last_error, the attempt closed, the agent
 * IDLE, and the task either back to TODO (republished when its backoff is due) or QUARANTINED (to
 * the dead-letter queue). Concurrent reports queue on the row lock: exactly one counts.
 */
export async function reportFailure(
  db: Db,
  settings: FailureSettings,
  report: FailureReport,
): Promise<TaskRow> {
  return db.transaction(async (tx) => {
    const task = await lockTask(tx, report.taskId);
    if (!task) throw new NotFoundError(`No task ${report.taskId}.`);
    if (task.status !== 'IN_PROGRESS') {
      throw new ConflictError(`Task ${report.taskId} is ${task.status}, not IN_PROGRESS: nothing to report.`);
    }
    // A conflict, as for complete and heartbeat (it used to be a permission refusal): the task
    // moved on to another agent, a state the reporting agent cannot change, not a right it lacks.
    if (task.agent_id !== report.agentId) {
      throw new ConflictError(`Task ${report.taskId} is held by another agent.`);
    }
    if (report.attempt !== undefined && report.attempt !== task.attempt) {
      throw new ConflictError(
        `Task ${report.taskId} is at attempt ${task.attempt}; the report is for attempt ${report.attempt}.`,
      );
    }
    const failure = decide(task, { ...report, outcome: 'FAILED' }, settings);
    const [failed] = await applyFailures(tx, [failure]);
    appendEvents(tx, failureEvents(failed!, failure));
    await failRunsOf(tx, [failed!]);
    return failed!;
  });
}

/**
 * Sends IN_PROGRESS tasks whose lease lapsed (agent crashed, network gone) through the same
 * failure path with last_error 'lease expired', so a task that keeps killing its agents ends
 * QUARANTINED. SKIP LOCKED lets several API replicas reap at once. `graceSeconds`: see lockExpiredLeases.
 */
export async function reapExpiredLeases(
  db: Db,
  settings: FailureSettings,
  // limit 500: not measured; it bounds one transaction, and a larger burst is reaped on the next ticks.
  { limit = 500, graceSeconds = 0 }: { limit?: number; graceSeconds?: number } = {},
): Promise<TaskRow[]> {
  return db.transaction(async (tx) => {
    const expired = await lockExpiredLeases(tx, limit, { graceSeconds });
    const failures = expired.map((task) =>
      decide(task, { error: 'lease expired', retryable: true, outcome: 'LEASE_EXPIRED' }, settings),
    );
    const failed = await applyFailures(tx, failures);
    appendEvents(tx, eventsOfFailures(failed, failures));
    await failRunsOf(tx, failed);
    return failed;
  });
}

/** A message the broker dead-lettered after its delivery limit quarantines its task (if it still waits). */
export async function quarantinePoisonMessage(
  db: Db,
  message: { taskId: string; attempt: number; deliveries: number | undefined },
): Promise<TaskRow | undefined> {
  const error =
    `the message was dead-lettered by the broker after ${message.deliveries ?? 'too many'} deliveries ` +
    '(delivery limit): agents kept dying or giving it back before starting it';
  return db.transaction(async (tx) => {
    const task = await quarantineDeadLettered(tx, {
      taskId: message.taskId,
      attempt: message.attempt,
      error: capErrorMessage(error),
    });
    if (task) {
      appendEvents(tx, [taskEvent('task.quarantined', task, { outcome: 'DEAD_LETTERED' })]);
      await failRunsOf(tx, [task]);
    }
    return task;
  });
}

export async function requeueQuarantined(
  db: Db,
  taskId: string,
  payload?: Record<string, unknown>,
): Promise<TaskRow> {
  const task = await db.transaction(async (tx) => {
    const requeued = await requeueTask(tx, taskId, payload);
    if (requeued) appendEvents(tx, [taskEvent('task.requeued', requeued)]);
    return requeued;
  });
  if (task) return task;
  const current = await getTask(db, taskId);
  if (!current) throw new NotFoundError(`No task ${taskId}.`);
  throw new ConflictError(`Task ${taskId} is ${current.status}; only QUARANTINED tasks can be requeued.`);
}

export async function taskAttempts(db: Db, taskId: string): Promise<TaskAttemptRow[]> {
  const attempts = await listTaskAttempts(db, taskId);
  if (attempts.length === 0) {
    if (!(await getTask(db, taskId))) throw new NotFoundError(`No task ${taskId}.`);
  }
  return attempts;
}
