import type { WorkflowRun } from '@devart/contracts';
import { Link } from 'react-router';
import { StatusBadge } from '../../components/status-badge';
import { Cost, Duration, RelativeTime } from '../../components/time';
import { shortId } from '../../lib/format';

/** A workflow's runs: status, start, duration (ticking while running), cost, variables. */
export function RunTable({ runs }: { runs: readonly WorkflowRun[] }) {
  return (
    <div className="table-wrap">
      <table>
        <caption className="visually-hidden">Runs, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Run</th>
            <th scope="col">Status</th>
            <th scope="col">Started</th>
            <th scope="col">Duration</th>
            <th scope="col">Cost</th>
            <th scope="col" className="hide-narrow">
              Variables
            </th>
          </tr>
        </thead>
        <tbody>
          {runs.map((run) => (
            <tr key={run.id} data-run-id={run.id}>
              <td>
                <Link to={`/workflows/runs/${run.id}`} aria-label={`Run ${shortId(run.id)}`}>
                  <code>{shortId(run.id)}</code>
                </Link>
              </td>
              <td>
                <StatusBadge status={run.status} />
              </td>
              <td>
                <RelativeTime iso={run.start_time} />
              </td>
              <td>{run.end_time ? <Duration ms={run.duration_ms} /> : <Duration from={run.start_time} />}</td>
              <td>
                <Cost value={run.total_cost} />
              </td>
              <td className="hide-narrow wrap">
                <code className="muted">{summarize(run.trigger_context)}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** `{ branch: 'main', n: 2 }` → `branch=main n=2`, cut to 80 characters. */
export function summarize(context: unknown): string {
  if (!context || typeof context !== 'object') return '—';
  const text = Object.entries(context as Record<string, unknown>)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return text.length > 80 ? `${text.slice(0, 79)}…` : text || '—';
}
