import type { PlatformEvent, Task } from '@devart/contracts';
import { useState } from 'react';
import { Link, useParams } from 'react-router';
import { CopyButton } from '../../components/copy-button';
import { DataState, ErrorMessage } from '../../components/data-state';
import { Confirm } from '../../components/dialog';
import { EventList } from '../../components/event-list';
import { PageHeader } from '../../components/layout';
import { StatusBadge } from '../../components/status-badge';
import { Cost, DateTime, Duration, RelativeTime } from '../../components/time';
import { useCan } from '../../lib/auth';
import { durationBetween, formatJson, shortId } from '../../lib/format';
import type { TaskAttempt } from '../../lib/types';
import { RequeueDialog } from '../quarantine/requeue-dialog';
import { useCancelTask, useSandboxes, useTask, useTaskAttempts, useTaskEvents } from './hooks';

const cancellable = new Set(['PENDING', 'TODO', 'IN_PROGRESS']);

function noResult(status: Task['status']): string {
  if (status === 'DONE') return 'The agent returned no result.';
  if (status === 'QUARANTINED' || status === 'CANCELLED') return 'None: the task did not complete.';
  return 'Not finished yet.';
}

function Facts({ task }: { task: Task }) {
  return (
    <dl className="facts">
      <dt>Id</dt>
      <dd>
        <code>{task.id}</code> <CopyButton text={task.id} label="Copy id" />
      </dd>
      <dt>Capability</dt>
      <dd>{task.capability ?? 'any'}</dd>
      <dt>Priority</dt>
      <dd className="num">{task.priority}</dd>
      <dt>Attempt</dt>
      <dd className="num">
        {task.attempt} of at most {task.max_retries + 1} ({task.retry_count} retries so far)
      </dd>
      <dt>Agent</dt>
      <dd>{task.agent_id ? <code title={task.agent_id}>{shortId(task.agent_id)}</code> : '—'}</dd>
      {task.workflow_run_id && (
        <>
          <dt>Workflow run</dt>
          <dd>
            <Link to={`/workflows/runs/${task.workflow_run_id}`}>{shortId(task.workflow_run_id)}</Link>
            {task.step_key && <> · step {task.step_key}</>}
          </dd>
        </>
      )}
      <dt>Created</dt>
      <dd>
        <DateTime iso={task.created_at} />
      </dd>
      <dt>Started</dt>
      <dd>
        <DateTime iso={task.started_at} />
      </dd>
      <dt>Completed</dt>
      <dd>
        <DateTime iso={task.completed_at} />
      </dd>
      <dt>Duration</dt>
      <dd>
        {task.started_at ? (
          <Duration
            from={task.started_at}
            to={task.completed_at ?? (task.status === 'IN_PROGRESS' ? null : task.updated_at)}
          />
        ) : (
          '—'
        )}
      </dd>
      <dt>Cost</dt>
      <dd>
        <Cost value={task.cost} />
      </dd>
      {task.next_attempt_at && task.status === 'TODO' && (
        <>
          <dt>Next attempt</dt>
          <dd>
            <RelativeTime iso={task.next_attempt_at} />
          </dd>
        </>
      )}
      {task.lease_expires_at && task.status === 'IN_PROGRESS' && (
        <>
          <dt>Lease until</dt>
          <dd>
            <RelativeTime iso={task.lease_expires_at} />
          </dd>
        </>
      )}
    </dl>
  );
}

/** Every attempt, oldest first: who ran it, when, how long, how it ended and why. */
export function AttemptTimeline({ attempts }: { attempts: readonly TaskAttempt[] }) {
  return (
    <ol className="timeline" aria-label="Attempts">
      {attempts.map((a) => (
        <li key={a.attempt} data-attempt={a.attempt}>
          <strong>Attempt {a.attempt}</strong> <StatusBadge status={a.outcome ?? 'RUNNING'} />{' '}
          <span className="muted">
            <DateTime iso={a.started_at} /> ·{' '}
            {a.ended_at ? <Duration ms={durationBetween(a.started_at, a.ended_at)} /> : 'running'}
            {a.agent_id && (
              <>
                {' '}
                · agent <code title={a.agent_id}>{shortId(a.agent_id)}</code>
              </>
            )}
          </span>
          {a.error && <pre className="error-text">{a.error}</pre>}
          {hasDetails(a.details) && (
            <details>
              <summary>Details</summary>
              <pre>{formatJson(a.details)}</pre>
            </details>
          )}
        </li>
      ))}
    </ol>
  );
}

function hasDetails(details: unknown): boolean {
  return typeof details === 'object' && details !== null && Object.keys(details).length > 0;
}

function Sandboxes({ events }: { events: readonly PlatformEvent[] }) {
  const ids = [...new Set(events.flatMap((e) => (e.sandbox_id ? [e.sandbox_id] : [])))];
  const sandboxes = useSandboxes(ids);
  if (ids.length === 0) return <p className="muted">This task asked for no sandbox.</p>;
  return (
    <ul className="feed">
      {sandboxes.map((q, i) => (
        <li key={ids[i]}>
          <code title={ids[i]}>{shortId(ids[i])}</code>
          {q.data ? (
            <>
              <StatusBadge status={q.data.status} /> {q.data.provider}
              <span className="muted">
                {' '}
                created <RelativeTime iso={q.data.created_at} />
                {q.data.termination_reason && <> · {q.data.termination_reason}</>}
              </span>
            </>
          ) : q.isError ? (
            <ErrorMessage error={q.error} />
          ) : (
            <span className="muted">loading…</span>
          )}
        </li>
      ))}
    </ul>
  );
}

function TaskActions({ task }: { task: Task }) {
  const canCancel = useCan('tasks.cancel');
  const canRequeue = useCan('tasks.requeue');
  const cancel = useCancelTask();
  const [confirming, setConfirming] = useState(false);
  const [requeueing, setRequeueing] = useState(false);
  return (
    <>
      {canCancel && cancellable.has(task.status) && (
        <button type="button" className="button button-danger" onClick={() => setConfirming(true)}>
          Cancel task
        </button>
      )}
      {canRequeue && task.status === 'QUARANTINED' && (
        <button type="button" className="button button-primary" onClick={() => setRequeueing(true)}>
          Requeue
        </button>
      )}
      <Confirm
        open={confirming}
        title="Cancel this task?"
        confirmLabel="Cancel task"
        danger
        busy={cancel.isPending}
        onClose={() => setConfirming(false)}
        onConfirm={() => cancel.mutate(task.id, { onSuccess: () => setConfirming(false) })}
      >
        <p>
          “{task.title}” becomes CANCELLED. An agent working on it is told at its next heartbeat; this cannot
          be undone.
        </p>
        {cancel.isError && <ErrorMessage error={cancel.error} title="Not cancelled" />}
      </Confirm>
      {requeueing && <RequeueDialog task={task} onClose={() => setRequeueing(false)} />}
    </>
  );
}

export function TaskDetail() {
  const { taskId = '' } = useParams();
  const task = useTask(taskId);
  const attempts = useTaskAttempts(taskId);
  const events = useTaskEvents(taskId);
  return (
    <DataState query={task} label="the task">
      {(t) => (
        <>
          <nav aria-label="Breadcrumb" className="muted">
            <Link to="/tasks">Tasks</Link> / {shortId(t.id)}
          </nav>
          <PageHeader title={t.title}>
            <StatusBadge status={t.status} />
            <TaskActions task={t} />
          </PageHeader>
          {t.description && <p>{t.description}</p>}
          {t.last_error && (
            <div className="notice notice-error">
              <strong>Last error</strong>
              <pre className="error-text">{t.last_error}</pre>
            </div>
          )}
          <div className="grid">
            <section className="panel" aria-labelledby="facts-title">
              <h2 id="facts-title">Details</h2>
              <Facts task={t} />
            </section>
            <section className="panel" aria-labelledby="attempts-title">
              <h2 id="attempts-title">Attempts</h2>
              <DataState
                query={attempts}
                label="attempts"
                isEmpty={(d) => d.items.length === 0}
                empty="No agent has started it yet."
              >
                {(d) => <AttemptTimeline attempts={d.items} />}
              </DataState>
            </section>
          </div>
          <div className="grid">
            <section className="panel" aria-labelledby="payload-title">
              <h2 id="payload-title">Payload</h2>
              <pre>{formatJson(t.payload)}</pre>
            </section>
            <section className="panel" aria-labelledby="result-title">
              <h2 id="result-title">Result</h2>
              {t.result === null || t.result === undefined ? (
                <p className="muted">{noResult(t.status)}</p>
              ) : (
                <pre>{formatJson(t.result)}</pre>
              )}
            </section>
          </div>
          <div className="grid">
            <section className="panel" aria-labelledby="events-title">
              <h2 id="events-title">Events</h2>
              <DataState
                query={events}
                label="events"
                isEmpty={(d) => d.items.length === 0}
                empty="No events."
              >
                {(d) => <EventList events={[...d.items].reverse()} withSubject={false} />}
              </DataState>
            </section>
            <section className="panel" aria-labelledby="sandbox-title">
              <h2 id="sandbox-title">Sandbox</h2>
              <DataState query={events} label="sandboxes">
                {(d) => <Sandboxes events={d.items} />}
              </DataState>
            </section>
          </div>
        </>
      )}
    </DataState>
  );
}
