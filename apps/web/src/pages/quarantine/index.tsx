import type { Task } from '@devart/contracts';
import { useState } from 'react';
import { Link } from 'react-router';
import { DataState } from '../../components/data-state';
import { PageHeader } from '../../components/layout';
import { Pagination, useCursorPages } from '../../components/pagination';
import { RelativeTime } from '../../components/time';
import { useCan } from '../../lib/auth';
import { shortId } from '../../lib/format';
import { useTaskAttempts, useTaskList } from '../tasks/hooks';
import { AttemptTimeline } from '../tasks/task-detail';
import { RequeueDialog } from './requeue-dialog';

function Attempts({ taskId }: { taskId: string }) {
  const attempts = useTaskAttempts(taskId);
  return (
    <DataState
      query={attempts}
      label="attempts"
      isEmpty={(d) => d.items.length === 0}
      empty="No attempt ran."
    >
      {(d) => <AttemptTimeline attempts={d.items} />}
    </DataState>
  );
}

function QuarantinedTask({ task, onRequeue }: { task: Task; onRequeue?: () => void }) {
  const [open, setOpen] = useState(false);
  return (
    <article className="panel" aria-labelledby={`q-${task.id}`} data-task-id={task.id}>
      <div className="page-header" style={{ marginBottom: '0.5rem' }}>
        <h2 id={`q-${task.id}`}>
          <Link to={`/tasks/${task.id}`}>{task.title}</Link>
        </h2>
        {onRequeue && (
          <button
            type="button"
            className="button button-primary"
            onClick={onRequeue}
            aria-label={`Requeue ${task.title}`}
          >
            Requeue
          </button>
        )}
      </div>
      <p className="muted">
        <code title={task.id}>{shortId(task.id)}</code> · {task.capability ?? 'any capability'} ·{' '}
        {task.attempt} attempt{task.attempt === 1 ? '' : 's'} · quarantined{' '}
        <RelativeTime iso={task.updated_at} />
      </p>
      <strong>Last error</strong>
      <pre className="error-text">{task.last_error ?? '—'}</pre>
      <button
        type="button"
        className="button button-small"
        aria-expanded={open}
        onClick={() => setOpen((o) => !o)}
        style={{ marginTop: '0.5rem' }}
      >
        {open ? 'Hide attempts' : 'Show attempts'}
      </button>
      {open && (
        <div style={{ marginTop: '0.5rem' }}>
          <Attempts taskId={task.id} />
        </div>
      )}
    </article>
  );
}

export default function QuarantinePage() {
  const pages = useCursorPages();
  const query = useTaskList({ status: 'QUARANTINED', cursor: pages.cursor, limit: 20 });
  const canRequeue = useCan('tasks.requeue');
  const [requeueing, setRequeueing] = useState<Task>();
  return (
    <>
      <PageHeader title="Quarantine" />
      <p className="muted">
        Tasks whose retries ran out, whose error was not retryable, or whose message was dead-lettered.
        {canRequeue ? ' Requeue one to give it a fresh set of retries.' : ''}
      </p>
      <DataState
        query={query}
        label="quarantined tasks"
        isEmpty={(page) => page.items.length === 0}
        empty="Nothing is quarantined."
      >
        {(page) => (
          <div className="stack">
            {page.items.map((task) => (
              <QuarantinedTask
                key={task.id}
                task={task}
                onRequeue={canRequeue ? () => setRequeueing(task) : undefined}
              />
            ))}
          </div>
        )}
      </DataState>
      <Pagination pages={pages} nextCursor={query.data?.next_cursor} />
      {requeueing && <RequeueDialog task={requeueing} onClose={() => setRequeueing(undefined)} />}
    </>
  );
}
