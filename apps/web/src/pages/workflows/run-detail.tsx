import type { WorkflowRunDetail } from '@devart/contracts';
import { useMemo, useState } from 'react';
import { Link, useParams } from 'react-router';
import { DataState, ErrorMessage } from '../../components/data-state';
import { Confirm } from '../../components/dialog';
import { PageHeader } from '../../components/layout';
import { StatusBadge } from '../../components/status-badge';
import { Cost, DateTime, Duration } from '../../components/time';
import { useCan } from '../../lib/auth';
import { formatJson, shortId } from '../../lib/format';
import { readDefinition } from './definition';
import { useCancelRun, useWorkflow, useWorkflowRun } from './hooks';
import { RunTimeline } from './run-timeline';
import { WorkflowDag } from './workflow-dag';

function CancelRun({ run }: { run: WorkflowRunDetail }) {
  const canCancel = useCan('workflows.cancel');
  const cancel = useCancelRun();
  const [confirming, setConfirming] = useState(false);
  if (!canCancel || run.status !== 'RUNNING') return null;
  return (
    <>
      <button type="button" className="button button-danger" onClick={() => setConfirming(true)}>
        Cancel run
      </button>
      <Confirm
        open={confirming}
        title="Cancel this run?"
        confirmLabel="Cancel run"
        danger
        busy={cancel.isPending}
        onClose={() => setConfirming(false)}
        onConfirm={() => cancel.mutate(run.id, { onSuccess: () => setConfirming(false) })}
      >
        <p>
          The run becomes CANCELLED and its steps that have not finished are cancelled; an agent working on
          one is told at its next heartbeat. This cannot be undone.
        </p>
        {cancel.isError && <ErrorMessage error={cancel.error} title="Not cancelled" />}
      </Confirm>
    </>
  );
}

/** The run's steps on the workflow's DAG, when the workflow still has exactly these steps. */
function RunDag({ run }: { run: WorkflowRunDetail }) {
  const workflow = useWorkflow(run.workflow_id);
  const read = workflow.data ? readDefinition(workflow.data) : undefined;
  const statusByKey = useMemo(
    () => Object.fromEntries(run.steps.map((s) => [s.step_key, s.status])),
    [run.steps],
  );
  if (!read?.ok) return null;
  const keys = read.definition.steps.map((s) => s.key).sort();
  const runKeys = run.steps.map((s) => s.step_key).sort();
  // The workflow may have changed since this run started (a run keeps its own definition).
  if (keys.join() !== runKeys.join()) return null;
  return (
    <section className="panel" aria-labelledby="run-dag-title">
      <h2 id="run-dag-title">Steps</h2>
      <WorkflowDag
        steps={read.definition.steps}
        statusByKey={statusByKey}
        label="The run's steps as a graph"
      />
    </section>
  );
}

function RunView({ run }: { run: WorkflowRunDetail }) {
  const workflow = useWorkflow(run.workflow_id);
  const name = workflow.data?.name ?? shortId(run.workflow_id);
  const done = run.steps.filter((s) => s.status === 'DONE').length;
  return (
    <>
      <nav aria-label="Breadcrumb" className="muted">
        <Link to="/workflows">Workflows</Link> / <Link to={`/workflows/${run.workflow_id}`}>{name}</Link> /
        run {shortId(run.id)}
      </nav>
      <PageHeader title={`${name} · run ${shortId(run.id)}`}>
        <span data-testid="run-status" data-status={run.status}>
          <StatusBadge status={run.status} />
        </span>
        <CancelRun run={run} />
      </PageHeader>
      <div className="stats">
        <div className="stat">
          <span className="stat-value" data-testid="run-duration">
            {run.end_time ? <Duration ms={run.duration_ms} /> : <Duration from={run.start_time} />}
          </span>
          <span className="stat-label">{run.end_time ? 'Duration' : 'Running for'}</span>
        </div>
        <div className="stat">
          <span className="stat-value" data-testid="run-cost">
            <Cost value={run.total_cost} />
          </span>
          <span className="stat-label">Total cost</span>
        </div>
        <div className="stat">
          <span className="stat-value num">
            {done}/{run.steps.length}
          </span>
          <span className="stat-label">Steps done</span>
        </div>
        <div className="stat">
          <span className="stat-value stat-value-small">
            <DateTime iso={run.start_time} />
          </span>
          <span className="stat-label">Started</span>
        </div>
      </div>
      <section className="panel" aria-labelledby="timeline-title">
        <h2 id="timeline-title">Timeline</h2>
        {run.steps.length === 0 ? <p className="empty">This run has no steps.</p> : <RunTimeline run={run} />}
      </section>
      <div className="grid run-extra">
        <RunDag run={run} />
        <section className="panel" aria-labelledby="variables-title">
          <h2 id="variables-title">Variables</h2>
          <pre>{formatJson(run.trigger_context)}</pre>
        </section>
      </div>
    </>
  );
}

/** /workflows/runs/:runId — a run's header, its steps on a Gantt timeline that fills in live, Cancel. */
export function RunDetail() {
  const { runId = '' } = useParams();
  const run = useWorkflowRun(runId);
  return (
    <DataState query={run} label="the run">
      {(r) => <RunView run={r} />}
    </DataState>
  );
}
