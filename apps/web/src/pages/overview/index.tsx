import { type Overview, type TaskStatus, taskStatusValues } from '@devart/contracts';
import { Link } from 'react-router';
import { BarChart } from '../../components/charts';
import { DataState } from '../../components/data-state';
import { EventList } from '../../components/event-list';
import { PageHeader } from '../../components/layout';
import { StatusBadge } from '../../components/status-badge';
import { formatCount, formatDuration } from '../../lib/format';
import { useActivity, useOverview } from './hooks';

function StatusCounts({ counts }: { counts: Overview['tasks_by_status'] }) {
  return (
    <section aria-labelledby="by-status" className="stats">
      <h2 id="by-status" className="visually-hidden">
        Tasks by status
      </h2>
      {taskStatusValues.map((status: TaskStatus) => (
        <Link key={status} to={`/tasks?status=${status}`} className="stat" data-status-count={status}>
          <span className="stat-value">{formatCount(counts[status] ?? 0)}</span>
          <span className="stat-label">
            <StatusBadge status={status} /> tasks
          </span>
        </Link>
      ))}
    </section>
  );
}

function minuteLabel(iso: string): string {
  return new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function Throughput({ overview }: { overview: Overview }) {
  const done = overview.throughput.reduce((n, m) => n + m.done, 0);
  const failed = overview.throughput.reduce((n, m) => n + m.failed, 0);
  const created = overview.throughput.reduce((n, m) => n + m.created, 0);
  return (
    <section className="panel" aria-labelledby="throughput-title">
      <h2 id="throughput-title">Throughput, last 15 minutes</h2>
      <BarChart
        title="Tasks done per minute, last 15 minutes"
        data={overview.throughput.map((m) => ({ label: minuteLabel(m.minute), value: m.done }))}
      />
      <p className="muted">
        <span className="num">{formatCount(done)}</span> done ·{' '}
        <span className="num">{formatCount(failed)}</span> failed attempts ·{' '}
        <span className="num">{formatCount(created)}</span> created
      </p>
    </section>
  );
}

function Platform({ overview }: { overview: Overview }) {
  const { outbox, agents } = overview;
  return (
    <section className="panel" aria-labelledby="platform-title">
      <h2 id="platform-title">Agents and dispatch</h2>
      <dl className="facts">
        <dt>Agents online</dt>
        <dd className="num" data-testid="agents-online">
          <Link to="/agents">{agents.online}</Link> ({agents.busy} busy, {agents.offline} offline)
        </dd>
        <dt>Outbox backlog</dt>
        <dd className="num" data-testid="outbox-pending">
          {formatCount(outbox.pending)} unsent
          {outbox.pending > 0 && <> · oldest due {formatDuration(outbox.oldest_age_seconds * 1000)} ago</>}
        </dd>
      </dl>
      {outbox.oldest_age_seconds > 30 && (
        <p className="notice notice-warn">
          Messages wait longer than 30 s to be published: is the broker reachable?
        </p>
      )}
    </section>
  );
}

function RecentFailures({ overview }: { overview: Overview }) {
  return (
    <section className="panel" aria-labelledby="failures-title">
      <h2 id="failures-title">Recent failures</h2>
      {overview.recent_failures.length === 0 ? (
        <p className="empty">No recent failures.</p>
      ) : (
        <EventList events={overview.recent_failures} label="Recent failures" />
      )}
    </section>
  );
}

function Activity({ overview }: { overview: Overview }) {
  const events = useActivity(overview);
  return (
    <section className="panel" aria-labelledby="activity-title" data-testid="activity-feed">
      <h2 id="activity-title">Activity</h2>
      {events.length === 0 ? (
        <p className="empty">Nothing has happened yet.</p>
      ) : (
        <EventList events={events} label="Activity" />
      )}
    </section>
  );
}

export default function OverviewPage() {
  const overview = useOverview();
  return (
    <>
      <PageHeader title="Overview" />
      <DataState query={overview} label="the overview">
        {(o) => (
          <>
            <StatusCounts counts={o.tasks_by_status} />
            <div className="grid">
              <Throughput overview={o} />
              <Platform overview={o} />
            </div>
            <div className="grid">
              <RecentFailures overview={o} />
              <Activity overview={o} />
            </div>
          </>
        )}
      </DataState>
    </>
  );
}
