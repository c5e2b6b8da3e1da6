import type { Workflow } from '@devart/contracts';
import { Link } from 'react-router';
import { DataState } from '../../components/data-state';
import { PageHeader } from '../../components/layout';
import { Pagination, useCursorPages } from '../../components/pagination';
import { StatusBadge } from '../../components/status-badge';
import { RelativeTime } from '../../components/time';
import { useMarketplaceItem } from '../marketplace/hooks';
import { readDefinition } from './definition';
import { useLastRun, useWorkflows } from './hooks';

/**
 * A workflow's version: workflows defined here have none (a new definition is a new workflow);
 * one installed from the marketplace has its item's name@version.
 */
function Version({ workflow }: { workflow: Workflow }) {
  const item = useMarketplaceItem(workflow.marketplace_item_id);
  if (!workflow.marketplace_item_id) return <span className="muted">local</span>;
  if (!item.data) return <span className="muted">…</span>;
  return (
    <>
      <Link to={`/marketplace/${item.data.id}`} aria-label={`${item.data.name} ${item.data.version}`}>
        {item.data.version}
      </Link>
      <div className="muted small">{item.data.name}</div>
    </>
  );
}

/** A workflow's newest run: its status and when, linking to it; "never run" before the first. */
export function LastRun({ workflowId }: { workflowId: string }) {
  const last = useLastRun(workflowId);
  if (last.isPending) return <span className="muted">…</span>;
  if (last.isError) return <span className="muted">unknown</span>;
  if (!last.data) return <span className="muted">never run</span>;
  return (
    <Link to={`/workflows/runs/${last.data.id}`} className="last-run">
      <StatusBadge status={last.data.status} /> <RelativeTime iso={last.data.start_time} />
    </Link>
  );
}

function WorkflowTable({ workflows }: { workflows: readonly Workflow[] }) {
  return (
    <div className="table-wrap">
      <table>
        <caption className="visually-hidden">Workflows, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Version</th>
            <th scope="col">Steps</th>
            <th scope="col">Last run</th>
            <th scope="col" className="hide-narrow">
              Created
            </th>
          </tr>
        </thead>
        <tbody>
          {workflows.map((w) => {
            const read = readDefinition(w);
            return (
              <tr key={w.id} data-workflow-id={w.id} data-workflow-name={w.name}>
                <td className="wrap">
                  <Link to={`/workflows/${w.id}`}>{w.name}</Link>
                  {w.description && <div className="muted small">{w.description}</div>}
                </td>
                <td>
                  <Version workflow={w} />
                </td>
                <td className="num">{read.ok ? read.definition.steps.length : '?'}</td>
                <td>
                  <LastRun workflowId={w.id} />
                </td>
                <td className="hide-narrow">
                  <RelativeTime iso={w.created_at} />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** /workflows — every workflow with its version, step count and last run. */
export function WorkflowList() {
  const pages = useCursorPages();
  const workflows = useWorkflows(pages.cursor);
  return (
    <>
      <PageHeader title="Workflows" />
      <DataState
        query={workflows}
        label="workflows"
        isEmpty={(page) => page.items.length === 0}
        empty={
          <>
            No workflows yet. Define one with <code>POST /api/workflows</code> or install one from the{' '}
            <Link to="/marketplace?type=workflow">Marketplace</Link>.
          </>
        }
      >
        {(page) => <WorkflowTable workflows={page.items} />}
      </DataState>
      <Pagination pages={pages} nextCursor={workflows.data?.next_cursor} />
    </>
  );
}
