import {
  type EndedRun,
  errorExcerpt,
  type NewEvent,
  type PlatformEventType,
  type TaskRow,
  type WorkflowRunRow,
} from '@devart/db';

type TaskEventType = Extract<PlatformEventType, `task.${string}`>;

/**
 * A task event with the snapshot a UI row or an alert needs without a second request: the
 * subjects (task, its run, its agent) and status, attempt, retry_count, title, capability,
 * step_key, cost, duration_ms, an error excerpt and next_attempt_at where they apply.
 *
 * @example
 * appendEvents(tx, done.map((task) => taskEvent('task.done', task)));
 */
export function taskEvent(type: TaskEventType, task: TaskRow, extra: Record<string, unknown> = {}): NewEvent {
  const durationMs =
    task.started_at && task.completed_at
      ? task.completed_at.getTime() - task.started_at.getTime()
      : undefined;
  return {
    type,
    task_id: task.id,
    workflow_run_id: task.workflow_run_id,
    agent_id: task.agent_id,
    data: {
      status: task.status,
      attempt: task.attempt,
      retry_count: task.retry_count,
      title: task.title,
      capability: task.capability,
      ...(task.step_key === null ? {} : { step_key: task.step_key }),
      ...(task.cost === null ? {} : { cost: task.cost }),
      ...(durationMs === undefined ? {} : { duration_ms: durationMs }),
      ...(task.last_error === null ? {} : { error: errorExcerpt(task.last_error) }),
      ...(task.next_attempt_at === null ? {} : { next_attempt_at: task.next_attempt_at.toISOString() }),
      ...extra,
    },
  };
}

type RunEventType = Extract<PlatformEventType, `workflow_run.${string}`>;

/** A workflow run event: the run (and its workflow) with its status and whatever the change adds. */
export function runEvent(
  type: RunEventType,
  run: { id: string; workflow_id: string; status: string },
  extra: Record<string, unknown> = {},
): NewEvent {
  return {
    type,
    workflow_run_id: run.id,
    data: { status: run.status, workflow_id: run.workflow_id, ...extra },
  };
}

/** duration_ms and total_cost of a run that ended. */
export function runTotals(run: WorkflowRunRow): Record<string, unknown> {
  return {
    total_cost: run.total_cost,
    ...(run.end_time ? { duration_ms: run.end_time.getTime() - run.start_time.getTime() } : {}),
  };
}

/**
 * What ending a run records: `task.cancelled` for each step it cancelled (with the agent that
 * held it), then `workflow_run.failed` or `workflow_run.cancelled`. Nothing if the run had ended already.
 */
export function runEndEvents(ended: EndedRun, extra: Record<string, unknown> = {}): NewEvent[] {
  if (ended.outcome !== 'ended') return [];
  const type = ended.run.status === 'FAILED' ? 'workflow_run.failed' : 'workflow_run.cancelled';
  return [
    ...ended.cancelled.map((step) => ({
      ...taskEvent('task.cancelled', step, { reason: `run ${ended.run.status}` }),
      agent_id: step.previous_agent_id,
    })),
    runEvent(type, ended.run, { ...runTotals(ended.run), cancelled_steps: ended.cancelled.length, ...extra }),
  ];
}
