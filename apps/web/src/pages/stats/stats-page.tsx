import type { StatsBucket, Workflow, WorkflowStats } from '@devart/contracts';
import { useMemo } from 'react';
import { Link, Navigate, useNavigate, useParams, useSearchParams } from 'react-router';
import { BarChart, type BarDatum, LineChart, type Series } from '../../components/charts';
import { DataState } from '../../components/data-state';
import { PageHeader } from '../../components/layout';
import { Pagination, useCursorPages } from '../../components/pagination';
import { Cost, Duration } from '../../components/time';
import { formatDuration } from '../../lib/format';
import { readDefinition } from '../workflows/definition';
import { useWorkflows } from '../workflows/hooks';
import { LastRun } from '../workflows/workflow-list';
import { useWorkflowStats } from './hooks';
import {
  bucketCount,
  defaultRange,
  formatBucket,
  hasPoints,
  isStatsRange,
  type StatsRange,
  sinceOf,
  statsRanges,
  statsSeries,
} from './series';

const percent = (rate: number | null) => (rate === null ? '—' : `${Math.round(rate * 1000) / 10} %`);

/** An axis label for a cost drawn as a float: two decimals, or two significant digits below a cent. */
function formatCostAxis(value: number): string {
  if (value === 0) return '0';
  return value >= 0.01 ? value.toFixed(2) : value.toPrecision(2);
}

/** A window whose completed runs all fall in one bucket: the values in words, not a one-dot chart. */
function OnePoint({
  bucket,
  series,
  format,
}: {
  bucket: StatsBucket;
  series: readonly Series[];
  format: (value: number) => string;
}) {
  const first = series.find((s) => s.points.length > 0)?.points[0];
  return (
    <div className="one-point">
      <p className="stats">
        {series.map((s) => (
          <span key={s.name} className="stat">
            <span className="stat-value">{s.points[0] ? format(s.points[0].y) : '—'}</span>
            <span className="stat-label">{s.name}</span>
          </span>
        ))}
      </p>
      <p className="muted small">
        All in one {bucket}
        {first ? ` (${formatBucket(bucket, first.x)})` : ''}: a narrower window shows how it moves.
      </p>
    </div>
  );
}

/**
 * Each step's failure rate as a labelled horizontal bar: every step keeps its name and number on
 * screen, which a column chart's two end labels would not.
 */
function RateBars({ rates }: { rates: readonly BarDatum[] }) {
  return (
    <ul
      className="rate-bars"
      aria-label="Failure rate of each step: the share of its finished tasks that quarantined"
    >
      {rates.map((r) => (
        <li key={r.label} data-step-key={r.label}>
          <code>{r.label}</code>
          <span className="rate-track" aria-hidden="true">
            <span className="rate-bar" style={{ width: `${Math.min(100, r.value)}%` }} />
          </span>
          <span className="num">{Math.round(r.value * 10) / 10} %</span>
        </li>
      ))}
    </ul>
  );
}

function Headline({ stats }: { stats: WorkflowStats }) {
  return (
    <div className="stats" data-testid="stats-headline">
      <div className="stat">
        <span className="stat-value">{stats.runs}</span>
        <span className="stat-label">
          Runs ({stats.completed} completed, {stats.failed} failed, {stats.cancelled} cancelled
          {stats.running > 0 ? `, ${stats.running} running` : ''})
        </span>
      </div>
      <div className="stat">
        <span className="stat-value">{percent(stats.success_rate)}</span>
        <span className="stat-label">Success rate</span>
      </div>
      <div className="stat">
        <span className="stat-value" data-testid="stats-p50">
          <Duration ms={stats.duration_ms.p50} />
        </span>
        <span className="stat-label">p50 duration</span>
      </div>
      <div className="stat">
        <span className="stat-value" data-testid="stats-p95">
          <Duration ms={stats.duration_ms.p95} />
        </span>
        <span className="stat-label">p95 duration</span>
      </div>
      <div className="stat">
        <span className="stat-value">
          <Cost value={stats.cost.mean} />
        </span>
        <span className="stat-label">Mean cost (completed)</span>
      </div>
      <div className="stat">
        <span className="stat-value">
          <Cost value={stats.cost.total} />
        </span>
        <span className="stat-label">Total cost</span>
      </div>
    </div>
  );
}

function Charts({ stats, stepOrder }: { stats: WorkflowStats; stepOrder: readonly string[] }) {
  const bucket: StatsBucket = stats.over_time.bucket;
  const series = useMemo(() => statsSeries(stats, stepOrder), [stats, stepOrder]);
  const formatX = (ms: number) => formatBucket(bucket, ms);
  const noCompleted = <p className="empty">No completed run in this window: nothing to measure yet.</p>;
  return (
    <>
      <div className="grid">
        <section className="panel" aria-labelledby="duration-title">
          <h2 id="duration-title">Duration per {bucket}</h2>
          {!hasPoints(series.duration) ? (
            noCompleted
          ) : bucketCount(series.duration) === 1 ? (
            <OnePoint bucket={bucket} series={series.duration} format={formatDuration} />
          ) : (
            <LineChart
              series={series.duration}
              title={`p50 and p95 duration of completed runs per ${bucket}`}
              formatY={formatDuration}
              formatX={formatX}
            />
          )}
        </section>
        <section className="panel" aria-labelledby="cost-title">
          <h2 id="cost-title">Cost per run, per {bucket}</h2>
          {!hasPoints(series.cost) ? (
            noCompleted
          ) : series.cost.every((s) => s.points.every((p) => p.y === 0)) ? (
            <p className="empty">Every completed run in this window cost 0: its steps reported no cost.</p>
          ) : bucketCount(series.cost) === 1 ? (
            <OnePoint bucket={bucket} series={series.cost} format={formatCostAxis} />
          ) : (
            <LineChart
              series={series.cost}
              title={`p50 and p95 cost of completed runs per ${bucket}`}
              formatY={formatCostAxis}
              formatX={formatX}
            />
          )}
        </section>
      </div>
      <div className="grid">
        <section className="panel" aria-labelledby="runs-title">
          <h2 id="runs-title">Runs per {bucket}</h2>
          <BarChart
            data={series.runs.map((r) => ({ label: formatX(Date.parse(r.label)), value: r.value }))}
            title={`Runs started per ${bucket}`}
          />
        </section>
        <section className="panel" aria-labelledby="failures-title">
          <h2 id="failures-title">Step failure rate</h2>
          {series.failureRates.length === 0 ? (
            <p className="empty">No step has finished in this window.</p>
          ) : (
            <RateBars rates={series.failureRates} />
          )}
        </section>
      </div>
      <section className="panel" aria-labelledby="steps-title">
        <h2 id="steps-title">Steps</h2>
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Step</th>
                <th scope="col">p50 duration</th>
                <th scope="col">Failure rate</th>
                <th scope="col">Mean retries</th>
              </tr>
            </thead>
            <tbody>
              {series.steps.map((s) => (
                <tr key={s.key} data-step-key={s.key}>
                  <td>
                    <code>{s.key}</code>
                  </td>
                  <td>
                    <Duration ms={s.p50_duration_ms} />
                  </td>
                  <td className="num">{percent(s.failure_rate)}</td>
                  <td className="num">{s.mean_retries === null ? '—' : s.mean_retries.toFixed(2)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
      <details className="panel stats-data">
        <summary>Data per {bucket}</summary>
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">{bucket}</th>
                <th scope="col">Runs</th>
                <th scope="col">Failed</th>
                <th scope="col">p50</th>
                <th scope="col">p95</th>
                <th scope="col">Cost p50</th>
                <th scope="col">Cost p95</th>
                <th scope="col">Total cost</th>
              </tr>
            </thead>
            <tbody>
              {stats.over_time.points.map((p) => (
                <tr key={p.start}>
                  <td>{formatX(Date.parse(p.start))}</td>
                  <td className="num">{p.runs}</td>
                  <td className="num">{p.failed}</td>
                  <td>
                    <Duration ms={p.duration_ms.p50} />
                  </td>
                  <td>
                    <Duration ms={p.duration_ms.p95} />
                  </td>
                  <td>
                    <Cost value={p.cost.p50} />
                  </td>
                  <td>
                    <Cost value={p.cost.p95} />
                  </td>
                  <td>
                    <Cost value={p.cost.total} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </>
  );
}

function WorkflowStatsView({
  workflows,
  workflowId,
}: {
  workflows: readonly Workflow[];
  workflowId: string;
}) {
  const navigate = useNavigate();
  const [params, setParams] = useSearchParams();
  const rangeParam = params.get('range');
  const range: StatsRange = isStatsRange(rangeParam) ? rangeParam : defaultRange;
  const { bucket } = statsRanges[range];
  // Recomputed each render but on a whole minute, so the query's key changes once a minute at most.
  const since = sinceOf(range, Date.now());
  const stats = useWorkflowStats(workflowId, since, bucket);
  const workflow = workflows.find((w) => w.id === workflowId);
  const stepOrder = useMemo(() => {
    const read = workflow ? readDefinition(workflow) : undefined;
    return read?.ok ? read.definition.steps.map((s) => s.key) : [];
  }, [workflow]);
  return (
    <>
      <div className="filters">
        <div className="field">
          <label htmlFor="stats-workflow">Workflow</label>
          <select
            id="stats-workflow"
            value={workflowId}
            onChange={(e) => navigate({ pathname: `/stats/${e.target.value}`, search: params.toString() })}
          >
            {!workflow && <option value={workflowId}>{workflowId}</option>}
            {workflows.map((w) => (
              <option key={w.id} value={w.id}>
                {w.name}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="stats-range">Window</label>
          <select
            id="stats-range"
            value={range}
            onChange={(e) => setParams({ range: e.target.value }, { replace: true })}
          >
            {Object.entries(statsRanges).map(([value, r]) => (
              <option key={value} value={value}>
                {r.label}
              </option>
            ))}
          </select>
        </div>
        {workflow && (
          <Link to={`/workflows/${workflow.id}`} className="stats-link">
            Open {workflow.name}
          </Link>
        )}
      </div>
      <DataState
        query={stats}
        label="statistics"
        isEmpty={(s) => s.runs === 0}
        empty={
          <>
            No runs {range === 'all' ? 'yet' : 'in this window'}.{' '}
            {range !== 'all' && <Link to={`/stats/${workflowId}?range=all`}>Show all time</Link>}
          </>
        }
      >
        {(s) => (
          <>
            <Headline stats={s} />
            <Charts stats={s} stepOrder={stepOrder} />
          </>
        )}
      </DataState>
    </>
  );
}

/** /stats/:workflowId — a workflow's p50/p95 duration and cost over time, step failure rates. */
export function StatsPage() {
  const { workflowId = '' } = useParams();
  // The picker lists the newest 200 workflows; an older one is still reachable by its URL.
  const workflows = useWorkflows(undefined, 200);
  return (
    <>
      <PageHeader title="Stats" />
      <DataState query={workflows} label="workflows">
        {(page) => <WorkflowStatsView workflows={page.items} workflowId={workflowId} />}
      </DataState>
    </>
  );
}

/** /stats — which workflow's statistics to open; straight to it when there is only one. */
export function StatsIndex() {
  const pages = useCursorPages();
  const workflows = useWorkflows(pages.cursor);
  const [params] = useSearchParams();
  const only = workflows.data?.items.length === 1 && !workflows.data.next_cursor && pages.page === 1;
  if (only) {
    return (
      <Navigate
        to={{ pathname: `/stats/${workflows.data!.items[0]!.id}`, search: params.toString() }}
        replace
      />
    );
  }
  return (
    <>
      <PageHeader title="Stats" />
      <DataState
        query={workflows}
        label="workflows"
        isEmpty={(page) => page.items.length === 0}
        empty="No workflows yet: statistics appear once a workflow has runs."
      >
        {(page) => (
          <div className="table-wrap">
            <table>
              <caption className="visually-hidden">Workflows: open one to see its statistics</caption>
              <thead>
                <tr>
                  <th scope="col">Workflow</th>
                  <th scope="col">Last run</th>
                </tr>
              </thead>
              <tbody>
                {page.items.map((w) => (
                  <tr key={w.id} data-workflow-id={w.id}>
                    <td>
                      <Link to={`/stats/${w.id}`} aria-label={`Stats of ${w.name}`}>
                        {w.name}
                      </Link>
                    </td>
                    <td>
                      <LastRun workflowId={w.id} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </DataState>
      <Pagination pages={pages} nextCursor={workflows.data?.next_cursor} />
    </>
  );
}
