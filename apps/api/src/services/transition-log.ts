import type { PlatformEvent } from '@devart/contracts';
import type { Logger } from 'pino';
import type { EventHub } from './event-hub';

/** What a transition's log line says: a sentence for people, the ids and numbers as fields. */
export interface TransitionLine {
  msg: string;
  fields: Record<string, unknown>;
}

const taskVerbs: Partial<Record<PlatformEvent['type'], string>> = {
  'task.created': 'created',
  'task.started': 'started',
  'task.done': 'done',
  'task.failed': 'failed',
  'task.retry_scheduled': 'retry scheduled',
  'task.quarantined': 'quarantined',
  'task.requeued': 'requeued',
  'task.cancelled': 'cancelled',
  'task.lease_expired': 'lease expired',
};
const runVerbs: Partial<Record<PlatformEvent['type'], string>> = {
  'workflow_run.started': 'started',
  'workflow_run.completed': 'completed',
  'workflow_run.failed': 'failed',
  'workflow_run.cancelled': 'cancelled',
};

/**
 * The log line of a task or run transition, or undefined for events that are not one (agents,
 * sandboxes, marketplace, a step released: they have lines of their own or need none).
 * @example
 * transitionLine({ type: 'task.done', task_id: 't1', data: { title: 'lint', attempt: 1, duration_ms: 812 }, … });
 * // { msg: 'task done: "lint" attempt 1 in 812ms', fields: { event: 'task.done', task_id: 't1', … } }
 */
export function transitionLine(event: PlatformEvent): TransitionLine | undefined {
  const data = event.data as Record<string, unknown>;
  const ids = {
    event: event.type,
    event_id: event.id,
    ...(event.task_id ? { task_id: event.task_id } : {}),
    ...(event.workflow_run_id ? { workflow_run_id: event.workflow_run_id } : {}),
    ...(event.agent_id ? { agent_id: event.agent_id } : {}),
  };
  const duration = typeof data.duration_ms === 'number' ? ` in ${data.duration_ms}ms` : '';
  const taskVerb = taskVerbs[event.type];
  if (taskVerb) {
    const error = typeof data.error === 'string' ? data.error.split('\n')[0]!.slice(0, 200) : undefined;
    const fields = {
      ...ids,
      status: data.status,
      title: data.title,
      capability: data.capability ?? null,
      step_key: data.step_key,
      attempt: data.attempt,
      retry_count: data.retry_count,
      duration_ms: data.duration_ms,
      next_attempt_at: data.next_attempt_at,
      outcome: data.outcome,
      reason: data.reason,
      error,
    };
    const what = `"${data.title ?? event.task_id}"${data.capability ? ` (${data.capability})` : ''}`;
    const attempt = event.type === 'task.created' ? '' : ` attempt ${data.attempt ?? '?'}`;
    const more =
      event.type === 'task.retry_scheduled' && data.next_attempt_at
        ? `, due ${data.next_attempt_at}`
        : error
          ? `: ${error}`
          : '';
    return { msg: `task ${taskVerb}: ${what}${attempt}${duration}${more}`, fields: defined(fields) };
  }
  const runVerb = runVerbs[event.type];
  if (runVerb) {
    const fields = {
      ...ids,
      status: data.status,
      workflow_id: data.workflow_id,
      steps: data.steps,
      duration_ms: data.duration_ms,
      total_cost: data.total_cost,
      cancelled_steps: data.cancelled_steps,
    };
    return { msg: `workflow run ${runVerb}${duration}`, fields: defined(fields) };
  }
  return undefined;
}

const defined = (fields: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));

/**
 * Logs one `info` line per task and run transition, read from the committed events (the event
 * hub) rather than from the code paths that make them: no log call in the hot paths, and a line
 * only for what really committed. Each API replica reads every event, so each logs every
 * transition, its neighbours' included. Returns the unsubscribe.
 * @example
 * cleanup.push(logTransitions({ events: wired.events, logger }));
 */
export function logTransitions({ events, logger }: { events: EventHub; logger: Logger }): () => void {
  const log = logger.child({ component: 'transitions' });
  const { ready, unsubscribe } = events.subscribe((page) => {
    for (const event of page) {
      const line = transitionLine(event);
      if (line) log.info(line.fields, line.msg);
    }
  });
  ready.catch((error: unknown) =>
    logger.warn(
      { err: error },
      'transition log: cannot follow the events; task and run lines are not logged',
    ),
  );
  return unsubscribe;
}
