import type { WorkflowRunDetail } from '@devart/contracts';
import { useEffect, useState } from 'react';
import { Link } from 'react-router';
import { StatusBadge } from '../../components/status-badge';
import { Cost } from '../../components/time';
import { formatDuration } from '../../lib/format';
import { type GanttRow, ganttLayout } from './gantt';

/** The clock, ticking every `ms` only while `active` (a running run's bars grow with it). */
export function useClock(active: boolean, ms = 250): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    setNow(Date.now());
    if (!active) return;
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [active, ms]);
  return now;
}

function barLabel(row: GanttRow): string {
  const { step_key } = row.step;
  if (row.startMs === null) {
    return row.state === 'waiting' ? `${step_key}: waiting for its dependencies` : `${step_key}: did not run`;
  }
  const took = row.state === 'running' ? 'running for' : 'took';
  return `${step_key}: started at +${formatDuration(row.startMs)}, ${took} ${formatDuration((row.endMs ?? row.startMs) - row.startMs)}`;
}

/**
 * A run's steps as a Gantt chart: one row per step, a bar from its start to its end on the run's
 * time axis, coloured (and named) by status. Each row links to the step's task.
 */
export function RunTimeline({ run }: { run: WorkflowRunDetail }) {
  const now = useClock(run.status === 'RUNNING');
  const { rows, ticks } = ganttLayout(run, now);
  return (
    <div className="gantt">
      <div className="gantt-axis" aria-hidden="true">
        <span className="gantt-label-col" />
        <span className="gantt-track">
          {ticks.map((t) => (
            <span key={t.ms} className="gantt-tick" style={{ left: `${t.at}%` }}>
              {t.ms === 0 ? '0' : `+${formatDuration(t.ms)}`}
            </span>
          ))}
        </span>
        <span className="gantt-meta-col" />
      </div>
      <ol className="gantt-rows" aria-label="Steps on the run's timeline">
        {rows.map((row) => (
          <li
            key={row.step.step_key}
            className="gantt-row"
            data-step-key={row.step.step_key}
            data-status={row.step.status}
          >
            <span className="gantt-label-col">
              <Link to={`/tasks/${row.step.task_id}`} title={row.step.title}>
                {row.step.step_key}
              </Link>{' '}
              <StatusBadge status={row.step.status} />
            </span>
            <span className="gantt-track" role="img" aria-label={barLabel(row)}>
              {ticks.map((t) => (
                <span key={t.ms} className="gantt-grid" style={{ left: `${t.at}%` }} />
              ))}
              {row.left !== null && row.width !== null ? (
                <span
                  className={`gantt-bar gantt-bar-${row.state}`}
                  style={{ left: `${row.left}%`, width: `${row.width}%` }}
                />
              ) : (
                <span className={`gantt-placeholder gantt-bar-${row.state}`}>
                  {row.state === 'waiting' ? 'waiting' : 'not run'}
                </span>
              )}
            </span>
            <span className="gantt-meta-col muted">
              <span className="num">
                {row.startMs === null ? '—' : formatDuration((row.endMs ?? row.startMs) - row.startMs)}
              </span>
              {' · '}
              <Cost value={row.step.cost} />
              {row.step.attempts > 1 && <> · {row.step.attempts} attempts</>}
            </span>
            {row.step.last_error && row.step.status !== 'DONE' && (
              <details className="gantt-error">
                <summary>Last error</summary>
                <pre className="error-text">{row.step.last_error}</pre>
              </details>
            )}
          </li>
        ))}
      </ol>
    </div>
  );
}
