import type { Workflow } from '@devart/contracts';
import { Link, useNavigate, useParams } from 'react-router';
import { DataState } from '../../components/data-state';
import { PageHeader } from '../../components/layout';
import { Pagination, useCursorPages } from '../../components/pagination';
import { DateTime } from '../../components/time';
import { useCan } from '../../lib/auth';
import { formatJson } from '../../lib/format';
import { useMarketplaceItem } from '../marketplace/hooks';
import { readDefinition, type WorkflowDefinition } from './definition';
import { useWorkflow, useWorkflowRuns } from './hooks';
import { RunTable } from './run-table';
import { TriggerForm } from './trigger-form';
import { WorkflowDag } from './workflow-dag';

function StepTable({ definition }: { definition: WorkflowDefinition }) {
  return (
    <div className="table-wrap">
      <table>
        <caption className="visually-hidden">Steps in definition order</caption>
        <thead>
          <tr>
            <th scope="col">Step</th>
            <th scope="col">Title</th>
            <th scope="col">Capability</th>
            <th scope="col">After</th>
          </tr>
        </thead>
        <tbody>
          {definition.steps.map((s) => (
            <tr key={s.key} data-step-key={s.key}>
              <td>
                <code>{s.key}</code>
              </td>
              <td className="wrap">{s.title}</td>
              <td>{s.capability ?? 'any'}</td>
              <td>{s.depends_on.length > 0 ? s.depends_on.join(', ') : <span className="muted">—</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Runs({ workflowId }: { workflowId: string }) {
  const pages = useCursorPages();
  const runs = useWorkflowRuns(workflowId, pages.cursor);
  return (
    <section aria-labelledby="runs-title" className="section">
      <h2 id="runs-title">Runs</h2>
      <DataState query={runs} label="runs" isEmpty={(page) => page.items.length === 0} empty="No runs yet.">
        {(page) => <RunTable runs={page.items} />}
      </DataState>
      <Pagination pages={pages} nextCursor={runs.data?.next_cursor} />
    </section>
  );
}

function Origin({ workflow }: { workflow: Workflow }) {
  const item = useMarketplaceItem(workflow.marketplace_item_id);
  if (!workflow.marketplace_item_id) return <>defined here</>;
  return item.data ? (
    <>
      installed from{' '}
      <Link to={`/marketplace/${item.data.id}`}>{`${item.data.name}@${item.data.version}`}</Link>
    </>
  ) : (
    <>installed from the marketplace</>
  );
}

function WorkflowView({ workflow }: { workflow: Workflow }) {
  const canTrigger = useCan('workflows.trigger');
  const navigate = useNavigate();
  const read = readDefinition(workflow);
  return (
    <>
      <nav aria-label="Breadcrumb" className="muted">
        <Link to="/workflows">Workflows</Link> / {workflow.name}
      </nav>
      <PageHeader title={workflow.name}>
        <Link className="button" to={`/stats/${workflow.id}`}>
          Stats
        </Link>
      </PageHeader>
      {workflow.description && <p>{workflow.description}</p>}
      <p className="muted small">
        <Origin workflow={workflow} /> · created <DateTime iso={workflow.created_at} />
      </p>
      {!read.ok ? (
        <div className="notice notice-error" role="alert">
          <strong>This definition cannot be drawn</strong>
          <p>{read.error}</p>
          <pre>{formatJson(workflow.definition)}</pre>
        </div>
      ) : (
        <div className="workflow-layout">
          <section className="panel" aria-labelledby="dag-title">
            <h2 id="dag-title">Definition</h2>
            <WorkflowDag steps={read.definition.steps} label={`Steps of ${workflow.name} as a graph`} />
            <details className="step-details">
              <summary>Steps as a table</summary>
              <StepTable definition={read.definition} />
            </details>
          </section>
          {canTrigger && (
            <section className="panel" aria-labelledby="trigger-title">
              <h2 id="trigger-title">Trigger a run</h2>
              <TriggerForm
                workflowId={workflow.id}
                variables={read.definition.variables}
                onTriggered={(runId) => navigate(`/workflows/runs/${runId}`)}
              />
            </section>
          )}
        </div>
      )}
      <Runs workflowId={workflow.id} />
    </>
  );
}

/** /workflows/:workflowId — the definition as a DAG, the trigger form (supervisors+), the runs. */
export function WorkflowDetail() {
  const { workflowId = '' } = useParams();
  const workflow = useWorkflow(workflowId);
  return (
    <DataState query={workflow} label="the workflow">
      {(w) => <WorkflowView workflow={w} />}
    </DataState>
  );
}
